"""A broker's connection to one registry: how soon it reconnects after failures."""

from __future__ import annotations

from itertools import pairwise
from typing import cast

import pytest
import trio
import trio.testing

from trinsq.broker.cluster._lookup import MAX_BACKOFF, LookupPeer, LookupService


def _gaps(times: list[float]) -> list[float]:
    return [round(later - earlier, 3) for earlier, later in pairwise(times)]


async def _run_sessions(monkeypatch: pytest.MonkeyPatch, *, registered: bool) -> list[float]:
    """Start times of the first sessions of a peer whose every session fails, after
    registering (the registry dropped it later) or before."""
    starts: list[float] = []
    peer = LookupPeer(cast(LookupService, object()), "127.0.0.1:4160")  # _session is faked

    async def session() -> None:
        starts.append(trio.current_time())
        if len(starts) == 8:
            peer.cancel_scope.cancel()
        if registered:
            peer.info = {"tcp_port": 4160}
        raise OSError("connection reset by peer")

    monkeypatch.setattr(peer, "_session", session)
    await peer.run()
    return starts


async def test_a_registry_that_drops_a_registered_broker_is_retried_after_one_second(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    gaps = _gaps(await _run_sessions(monkeypatch, registered=True))
    assert gaps == [1.0] * 7


async def test_a_registry_that_cannot_be_reached_is_retried_with_growing_waits(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    gaps = _gaps(await _run_sessions(monkeypatch, registered=False))
    assert gaps == [1.0, 2.0, 4.0, 8.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]

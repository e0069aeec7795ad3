"""Helpers of the client tests."""

from __future__ import annotations

from collections.abc import Callable

import trio

from tests.interop.pynsq_harness import BrokerProbe
from trinsq import RunningBroker


async def until(
    broker: RunningBroker,
    predicate: Callable[[], bool],
    *,
    timeout: float = 30.0,
    what: str = "a condition",
) -> None:
    """Return once ``predicate()`` holds, checked after every Trio task step."""
    probe = BrokerProbe(broker)
    trio.lowlevel.add_instrument(probe)
    try:
        await probe.until(predicate, timeout=timeout, what=what)
    finally:
        trio.lowlevel.remove_instrument(probe)

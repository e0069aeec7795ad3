"""The registry's read endpoints on the HTTP fast lane say what quart's handlers say: the
same status, headers (Date aside) and bytes, errors included, without reaching the app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from quart import Response

from trinsq.registry import RunningRegistry, open_registry
from trinsq.registry._db import PeerInfo
from trinsq.registry._http import RegistryHttpApi, create_app

PATHS = [
    "/lookup?topic=t",
    "/lookup?topic=t&topic=other",
    "/nodes",
    "/topics",
    "/channels?topic=t",
    "/channels?topic=%2A",
    "/channels?topic=absent",
    # errors
    "/lookup",
    "/lookup?topic=absent",
    "/lookup?topic=%zz",
    "/topics?%zz",
    "/channels",
]


@pytest.fixture
def app_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The read handlers of the quart app that ran (patched before the registry starts)."""
    calls: list[str] = []
    for name in ("lookup", "nodes", "topics", "channels"):
        handler = getattr(RegistryHttpApi, name)

        async def counted(
            self: RegistryHttpApi, name: str = name, handler: Any = handler
        ) -> Response:
            calls.append(name)
            return await handler(self)  # type: ignore[no-any-return]

        monkeypatch.setattr(RegistryHttpApi, name, counted)
    return calls


@pytest.fixture
async def registry(app_calls: list[str]) -> AsyncIterator[RunningRegistry]:
    async with open_registry() as running:
        db = running.server.db
        for n in (1, 2):
            peer = PeerInfo(f"10.0.0.{n}:1", f"10.0.0.{n}:1", "h<&>", f"nsqd{n}", 4150, 4151, "1")
            db.identify(peer)
            db.register(peer, "t", "c")
            db.register(peer, "u")
        db.tombstone("u", "nsqd2:4151")
        yield running


async def raw_get(registry: RunningRegistry, path: str) -> tuple[bytes, list[bytes], bytes]:
    """GET over a plain socket: the status line, the header lines but Date, the body."""
    http = registry.addresses.http
    assert http is not None
    stream = await trio.open_tcp_stream(*http)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some()
        head, _, body = data.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        length = next(int(line[15:]) for line in lines if line.startswith(b"content-length:"))
        while len(body) < length:
            body += await stream.receive_some()
    return status, sorted(line for line in lines if not line.startswith(b"date:")), body


@pytest.mark.parametrize("path", PATHS)
async def test_fast_answers_are_the_apps(
    registry: RunningRegistry, path: str, app_calls: list[str]
) -> None:
    status, headers, body = await raw_get(registry, path)
    assert app_calls == []  # the lane answered
    reply = await create_app(registry.server).test_client().get(path)
    assert app_calls  # and the app's own answer, to compare with, came from its handler
    assert status.split(b" ")[1] == str(reply.status_code).encode()
    expected = sorted(
        f"{name.lower()}: {value}".encode()
        for name, value in reply.headers.items()
        if name.lower() != "date"
    )
    assert headers == expected
    assert body == await reply.get_data()
    json.loads(body)

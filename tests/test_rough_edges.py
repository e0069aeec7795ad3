"""Small ways trinsq looked unlike nsqd/nsqlookupd: status lines and log lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import hypercorn.protocol
import pytest
import trio
from hypercorn.config import Config
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio import serve
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from trinsq import open_broker
from trinsq._reasonphrase import install, reason_phrase
from trinsq.registry import open_registry

# -- reason phrases on HTTP/1.1 status lines -------------------------------------------------

MALFORMED = b"GET /ping HTTP/1.1\r\nno colon here\r\n\r\n"  # h11 refuses it: hypercorn's own 400


def request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()


async def status_line(address: str, raw_request: bytes) -> bytes:
    """The first line the server answers ``raw_request`` with, read off a raw socket."""
    host, port = address.rsplit(":", 1)
    with trio.fail_after(10):
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            await stream.send_all(raw_request)
            data = b""
            while b"\r\n" not in data:
                chunk = await stream.receive_some(4096)
                assert chunk, f"closed before a status line: {data!r}"
                data += chunk
    return data.partition(b"\r\n")[0]


@pytest.fixture
async def broker_http() -> AsyncIterator[str]:
    async with open_broker() as broker:
        assert broker.http_address is not None
        yield broker.http_address


@pytest.fixture
async def registry_http() -> AsyncIterator[str]:
    async with open_registry() as registry:
        assert registry.http_address is not None
        yield registry.http_address


@pytest.mark.parametrize(
    ("raw_request", "expected"),
    [
        (request("/ping"), b"HTTP/1.1 200 OK"),
        (request("/no/such/path"), b"HTTP/1.1 404 Not Found"),
        (request("/topic/create"), b"HTTP/1.1 405 Method Not Allowed"),
        (request("/stats?topic=%zz"), b"HTTP/1.1 400 Bad Request"),
        (MALFORMED, b"HTTP/1.1 400 Bad Request"),
    ],
)
async def test_broker_status_lines_carry_reason_phrases(
    broker_http: str, raw_request: bytes, expected: bytes
) -> None:
    assert await status_line(broker_http, raw_request) == expected


@pytest.mark.parametrize(
    ("raw_request", "expected"),
    [
        (request("/ping"), b"HTTP/1.1 200 OK"),
        (request("/no/such/path"), b"HTTP/1.1 404 Not Found"),
        (request("/lookup"), b"HTTP/1.1 400 Bad Request"),  # MISSING_ARG_TOPIC
        (MALFORMED, b"HTTP/1.1 400 Bad Request"),
    ],
)
async def test_registry_status_lines_carry_reason_phrases(
    registry_http: str, raw_request: bytes, expected: bytes
) -> None:
    assert await status_line(registry_http, raw_request) == expected


def test_reason_phrases_are_go_texts() -> None:
    assert [reason_phrase(code) for code in (200, 413, 414, 500)] == [
        "OK",
        "Request Entity Too Large",  # Python 3.13 says "Content Too Large"
        "Request URI Too Long",  # Python says "Request-URI Too Long"
        "Internal Server Error",
    ]
    assert reason_phrase(599) == "status code 599"  # what Go writes for a code it lacks


async def _plain_app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """An ASGI app that is not trinsq's: 200, empty body."""
    if scope["type"] == "lifespan":
        await receive()  # startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_other_hypercorn_servers_in_the_process_are_untouched(
    nursery: trio.Nursery, broker_http: str
) -> None:
    installed = vars(hypercorn.protocol)["H11Protocol"]  # the broker's serve_app installed it
    install()
    assert vars(hypercorn.protocol)["H11Protocol"] is installed  # idempotent
    assert installed.__mro__[1] is H11Protocol
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    done = trio.Event()
    binds: list[str] = await nursery.start(
        partial(serve, _plain_app, config, shutdown_trigger=done.wait)
    )
    try:
        assert await status_line(binds[0].partition("://")[2], request("/")) == b"HTTP/1.1 200 "
    finally:
        done.set()

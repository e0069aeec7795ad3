"""Plain HTTP served by the fast lane itself: hypercorn only for what the lane does not take,
keep-alive and shutdown as hypercorn's."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from functools import partial
from typing import Any

import trio

from trinsq.common._fastlane import FastAnswer, FastRoute
from trinsq.common._httplane import LaneServer
from trinsq.common._httpserve import serve_app
from trinsq.common._hypercornserve import HandOff

log = logging.getLogger("tests")


def ping(query: bytes, body: bytes) -> FastAnswer:
    return 200, [(b"content-length", b"2")], b"OK"


ROUTES: dict[tuple[bytes, bytes], FastRoute] = {(b"GET", b"/ping"): ping}


async def plain_app(scope: Any, receive: Any, send: Any) -> None:
    body = b"app " + scope["path"].encode()
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class App:
    """What the factory builds: the plain app, plus the startup LazyApp calls."""

    async def startup(self) -> None:
        pass

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await plain_app(scope, receive, send)


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    return data


async def test_pipelined_lane_and_app_requests_are_answered_in_order(
    nursery: trio.Nursery,
) -> None:
    stop = trio.Event()
    host, port = await nursery.start(
        partial(
            serve_app,
            App,
            "127.0.0.1:0",
            log,
            shutdown_trigger=stop.wait,
            graceful_timeout=1,
            fast_routes=ROUTES,
        )
    )
    stream = await trio.open_tcp_stream(host, port)
    # The lane answers the first, hypercorn the rest from the bytes already received (h11
    # holds what was pipelined after /info, so the app answers that /ping too).
    await stream.send_all(
        get("/ping") + get("/info") + get("/ping") + get("/stats", "Connection: close\r\n")
    )
    with trio.fail_after(10):
        replies = await read_until_closed(stream)
    assert replies.count(b"HTTP/1.1 200 OK\r\n") == 4
    bodies = [part.rpartition(b"\r\n\r\n")[2] for part in replies.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"OK", b"app /info", b"app /ping", b"app /stats"]
    await stream.aclose()
    stop.set()


def no_handoff(app: Any) -> HandOff:
    raise AssertionError("these tests send only the lane's requests")


async def test_a_request_cut_short_by_the_client_is_answered_by_h11(
    nursery: trio.Nursery,
) -> None:
    stop = trio.Event()
    host, port = await nursery.start(
        partial(
            serve_app,
            App,
            "127.0.0.1:0",
            log,
            shutdown_trigger=stop.wait,
            graceful_timeout=1,
            fast_routes=ROUTES,
        )
    )
    stream = await trio.open_tcp_stream(host, port)
    await stream.send_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n")  # no end of head
    await stream.send_eof()
    with trio.fail_after(10):
        replies = await read_until_closed(stream)
    assert replies.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    await stream.aclose()
    stop.set()


async def start_lane(nursery: trio.Nursery, keep_alive: float) -> tuple[int, trio.Event]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = LaneServer(
        App(), ROUTES, no_handoff, graceful_timeout=5, keep_alive_timeout=keep_alive
    )
    stop = trio.Event()
    _, port = await nursery.start(server.serve, sock, stop.wait)
    return port, stop


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(
    nursery: trio.Nursery,
) -> None:
    port, stop = await start_lane(nursery, keep_alive=0.2)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(get("/ping"))
    began = trio.current_time()
    with trio.fail_after(5):
        replies = await read_until_closed(stream)
    assert replies.startswith(b"HTTP/1.1 200 OK\r\n")
    assert replies.endswith(b"\r\n\r\nOK")
    assert 0.15 < trio.current_time() - began < 3
    await stream.aclose()
    stop.set()


async def receive_answer(stream: trio.SocketStream) -> bytes:
    data = b""
    while not data.endswith(b"OK"):
        chunk = await stream.receive_some(65536)
        assert chunk, "the connection closed"
        data += chunk
    return data


async def test_a_connection_in_use_outlives_its_first_keep_alive_deadline(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    """The keep-alive timeout runs from the last answer: a connection asked something every
    0.6 s stays open across several 1 s timeouts, then closes 1 s after its last answer."""
    port, stop = await start_lane(nursery, keep_alive=1.0)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    for _ in range(5):
        await stream.send_all(get("/ping"))
        assert (await receive_answer(stream)).startswith(b"HTTP/1.1 200 OK\r\n")
        mock_clock.jump(0.6)
        await trio.testing.wait_all_tasks_blocked()
    mock_clock.jump(0.5)
    await trio.testing.wait_all_tasks_blocked()
    assert await stream.receive_some(65536) == b""
    await stream.aclose()
    stop.set()


async def test_stopping_closes_idle_connections_at_once(nursery: trio.Nursery) -> None:
    port, stop = await start_lane(nursery, keep_alive=60)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(get("/ping"))
    assert (await stream.receive_some(65536)).endswith(b"OK")
    stop.set()
    with trio.fail_after(2):  # not the keep-alive's 60 s, nor the graceful timeout's 5
        assert await read_until_closed(stream) == b""
    await stream.aclose()


HYPERCORN_AFTER_PING = """
import sys, httpx, trio
from trinsq import open_broker

async def main():
    async with open_broker() as broker:
        async with httpx.AsyncClient() as http:
            base = f"http://{broker.http_address}"
            assert (await http.get(base + "/ping")).text == "OK"
            assert (await http.post(base + "/pub?topic=t", content=b"x")).text == "OK"
            assert (await http.post(base + "/pub", content=b"x")).status_code == 400
            print("after the lane's requests:", "hypercorn" in sys.modules, "cattrs" in sys.modules)
            assert (await http.get(base + "/info")).status_code == 200
            print("after /info:", "hypercorn" in sys.modules)

trio.run(main)
"""


def test_a_broker_imports_hypercorn_only_for_a_request_the_lane_does_not_take() -> None:
    result = subprocess.run(
        [sys.executable, "-c", HYPERCORN_AFTER_PING], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "after the lane's requests: False False",
        "after /info: True",
    ]

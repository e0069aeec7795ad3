"""HTTP/1.1 driven by hand over a real socket, for tests that need exact bytes and timing: what
the server answers, when, and whether it then closes the connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h11
import trio

__all__ = [
    "BAD_REQUEST",
    "MALFORMED_CHUNK_SIZES",
    "TIMEOUT_ANSWER",
    "Answer",
    "RawHttp",
    "answer_then_eof",
    "assert_malformed_chunks_refused",
    "assert_serving",
    "assert_timed_out",
    "chunk",
    "connect_http",
    "raw_http",
    "request_head",
]

# Chunk sizes Go's net/http refuses: more than 16 hex digits (h11 alone takes 20, then waits
# for 2**80 bytes), not hex, signed, empty.
MALFORMED_CHUNK_SIZES = [
    b"ffffffffffffffffffff",
    b"10000000000000000",
    b"zz",
    b"-1",
    b"0x10",
    b"",
]
# What the server answers by itself, as hypercorn does: an empty body, the connection closed.
BAD_REQUEST = (400, b"Bad Request", [(b"content-length", b"0"), (b"connection", b"close")], b"")
TIMEOUT_ANSWER = (
    408,
    b"Request Timeout",
    [(b"content-length", b"0"), (b"connection", b"close")],
    b"",
)

# status, reason, headers without the date, body
Answer = tuple[int, bytes, list[tuple[bytes, bytes]], bytes]


class RawHttp:
    """One HTTP/1.1 connection driven by hand, its answers parsed by an h11 client."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.parser = h11.Connection(h11.CLIENT)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send_until_refused(self, data: bytes) -> bool:
        """Send ``data``; False if the connection was closed first (the server answered
        without reading it all, or the test closed it), True if it all went."""
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def answer(self) -> Answer:
        """The next response: status, reason, headers without the date, body."""
        response: h11.Response | None = None
        body = b""
        while True:
            event = self.parser.next_event()
            if event is h11.NEED_DATA:
                self.parser.receive_data(bytes(await self.stream.receive_some(65536)))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected {event!r}")
        assert response is not None
        # The client side of h11 must see a request go out for each answer; cycle it by hand.
        self.parser = h11.Connection(h11.CLIENT)
        headers = [(n, v) for n, v in response.headers.raw_items() if n.lower() != b"date"]
        return response.status_code, response.reason, headers, body

    async def expect_eof(self) -> None:
        while True:
            if not await self.stream.receive_some(65536):
                return


async def connect_http(address: str | None) -> RawHttp:
    assert address is not None
    host, port = address.rsplit(":", 1)
    return RawHttp(await trio.open_tcp_stream(host, int(port)))


@asynccontextmanager
async def raw_http(address: str | None) -> AsyncIterator[RawHttp]:
    http = await connect_http(address)
    async with http.stream:
        yield http


def request_head(method: bytes, target: bytes, extra: bytes = b"") -> bytes:
    """A request line and headers; ``extra`` are more header lines, each ending in CRLF."""
    return b"%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (method, target, extra)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def answer_then_eof(http: RawHttp, within: float = 5) -> Answer:
    """The next answer, after which the server closes the connection, both within
    ``within`` seconds."""
    with trio.fail_after(within):
        answer = await http.answer()
        await http.expect_eof()
    return answer


async def assert_serving(address: str | None) -> None:
    """Another client is answered, by the fast lane (/ping) and by the app (/info)."""
    async with raw_http(address) as http:
        with trio.fail_after(10):
            await http.send(request_head(b"GET", b"/ping") + request_head(b"GET", b"/info"))
            ping, info = await http.answer(), await http.answer()
    assert (ping[0], ping[3], info[0]) == (200, b"OK", 200)


async def assert_malformed_chunks_refused(address: str | None, target: bytes) -> None:
    """A POST to ``target`` with each malformed chunk size is answered 400 and closed, and
    other clients are answered after each."""
    for size in MALFORMED_CHUNK_SIZES:
        async with raw_http(address) as http:
            head = request_head(b"POST", target, b"Transfer-Encoding: chunked\r\n")
            await http.send(head + size + b"\r\nabc")
            assert await answer_then_eof(http) == BAD_REQUEST, size
        await assert_serving(address)


async def assert_timed_out(http: RawHttp, address: str | None, timeout: float) -> None:
    """The request just sent stalls: other clients are answered meanwhile, and it is answered
    408 and closed once ``timeout`` has passed (real time; generous upper bound)."""
    started = trio.current_time()
    await assert_serving(address)
    answer = await answer_then_eof(http, within=10)
    waited = trio.current_time() - started
    assert answer == TIMEOUT_ANSWER
    assert waited >= timeout - 0.05

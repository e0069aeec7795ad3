"""HTTP/1.1 driven by hand over a real socket, for tests that need exact bytes and timing: what
the server answers, when, and whether it then closes the connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h11
import trio

__all__ = ["Answer", "RawHttp", "connect_http", "raw_http"]

# status, reason, headers without the date, body
Answer = tuple[int, bytes, list[tuple[bytes, bytes]], bytes]


class RawHttp:
    """One HTTP/1.1 connection driven by hand, its answers parsed by an h11 client."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.parser = h11.Connection(h11.CLIENT)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

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

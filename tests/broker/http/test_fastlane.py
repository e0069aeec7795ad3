"""The HTTP fast lane over real sockets: the same answers as the app gives, in order, whatever
the mix of requests and however they arrive."""

from __future__ import annotations

import pytest
import trio
from quart import Response

from tests.rawhttp import raw_http
from trinsq import RunningBroker, open_broker
from trinsq.broker.http._app import BrokerHttpApi


def plain(method: bytes, target: bytes, body: bytes | None = None, *extra: bytes) -> bytes:
    """A request the fast lane takes (a Content-Length body)."""
    head = b"%s %s HTTP/1.1\r\nHost: x\r\n" % (method, target) + b"".join(extra)
    if body is not None:
        head += b"Content-Length: %d\r\n" % len(body)
    return head + b"\r\n" + (body or b"")


def chunked(method: bytes, target: bytes, body: bytes) -> bytes:
    """The same request with a chunked body, which only the app takes."""
    head = b"%s %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % (method, target)
    chunk = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
    return head + chunk + b"0\r\n\r\n"


CASES = [
    (b"POST", b"/pub?topic=lane", b"hello"),
    (b"POST", b"/pub?topic=lane&defer=1000", b"later"),
    (b"POST", b"/pub?topic=lane&defer=-1", b"x"),
    (b"POST", b"/pub?topic=lane&defer=abc", b"x"),
    (b"POST", b"/pub?topic=bad!name", b"x"),
    (b"POST", b"/pub", b"x"),
    (b"POST", b"/pub?topic=%zz", b"x"),
    (b"POST", b"/pub?topic=lane", b""),
    (b"POST", b"/pub?topic=lane", b"y" * 101),  # over --max-msg-size below
    (b"GET", b"/ping", b""),
]


@pytest.mark.parametrize(("method", "target", "body"), CASES)
async def test_the_lane_answers_as_the_app_does(method: bytes, target: bytes, body: bytes) -> None:
    async with open_broker(max_msg_size=100) as broker:
        # Two connections: a body over the limit is answered with the connection closed.
        async with raw_http(broker.http_address) as http:
            await http.send(plain(method, target, body if method == b"POST" else None))
            fast = await http.answer()
        async with raw_http(broker.http_address) as http:
            await http.send(chunked(method, target, body))
            app = await http.answer()
        assert fast == app
        if fast[0] == 200 and method == b"POST":
            assert broker.topics["lane"].message_count == 2


async def test_pipelined_requests_mixing_both_ways_are_answered_in_order() -> None:
    async with open_broker() as broker, raw_http(broker.http_address) as http:
        await http.send(
            plain(b"GET", b"/ping")
            + plain(b"GET", b"/info")
            + plain(b"POST", b"/pub?topic=mix", b"one")
            + chunked(b"POST", b"/pub?topic=mix", b"two")
            + plain(b"POST", b"/pub?topic=mix", b"three")
            + plain(b"GET", b"/ping")
        )
        bodies = [(await http.answer())[3] for _ in range(6)]
        assert bodies[0] == bodies[2] == bodies[3] == bodies[4] == bodies[5] == b"OK"
        assert bodies[1].startswith(b'{"version":')
        assert broker.topics["mix"].message_count == 3


async def test_a_request_trickling_in_byte_by_byte_is_answered() -> None:
    async with open_broker() as broker, raw_http(broker.http_address) as http:
        for byte in plain(b"POST", b"/pub?topic=slow", b"trickle"):
            await http.send(bytes([byte]))
        assert (await http.answer())[:2] == (200, b"OK")
        # And the connection is still good for the next, which comes all at once.
        await http.send(plain(b"GET", b"/ping"))
        assert (await http.answer())[3] == b"OK"
        assert broker.topics["slow"].message_count == 1


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /ping HTTP/1.0\r\n\r\n",
        b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
    ],
)
async def test_a_closing_request_gets_its_answer_then_the_end(request_bytes: bytes) -> None:
    async with open_broker() as broker, raw_http(broker.http_address) as http:
        # A request after it in the same send is not answered, as net/http does not.
        await http.send(request_bytes + plain(b"GET", b"/ping"))
        status, _, headers, body = await http.answer()
        assert (status, body) == (200, b"OK")
        assert (b"Connection", b"close") in headers
        await http.expect_eof()


async def test_a_request_cut_short_by_the_client_is_left_to_h11() -> None:
    async with open_broker() as broker, raw_http(broker.http_address) as http:
        await http.send(b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert isinstance(http.stream, trio.SocketStream)
        await http.stream.send_eof()
        await http.expect_eof()  # h11 ends the exchange; nothing is published
        assert "t" not in broker.topics


async def test_many_clients_on_the_lane_each_get_their_own_answers() -> None:
    async def client(number: int, broker: RunningBroker, seen: list[bytes]) -> None:
        async with raw_http(broker.http_address) as http:
            for round_ in range(20):
                await http.send(plain(b"POST", b"/pub?topic=many", b"%d-%d" % (number, round_)))
                seen.append((await http.answer())[3])

    seen: list[bytes] = []
    async with open_broker() as broker:
        async with trio.open_nursery() as nursery:
            for number in range(10):
                nursery.start_soon(client, number, broker, seen)
        assert seen == [b"OK"] * 200
        assert broker.topics["many"].message_count == 200


async def test_plain_requests_take_the_lane_and_others_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app_calls: list[str] = []
    app_pub = BrokerHttpApi.pub

    async def counted_pub(self: BrokerHttpApi) -> Response:
        app_calls.append("pub")
        return await app_pub(self)

    monkeypatch.setattr(BrokerHttpApi, "pub", counted_pub)
    async with open_broker() as broker, raw_http(broker.http_address) as http:
        await http.send(plain(b"POST", b"/pub?topic=which", b"fast"))
        assert (await http.answer())[3] == b"OK"
        assert app_calls == []
        await http.send(chunked(b"POST", b"/pub?topic=which", b"app"))
        assert (await http.answer())[3] == b"OK"
        assert app_calls == ["pub"]

"""Request bodies over real sockets, through the fast lane and through hypercorn: refused with
nsqd's 413 as soon as the declared or received size passes --max-msg-size (/pub) or
--max-body-size (/mpub), answered 408 when they stall, 400 when their chunking is malformed,
and never at the cost of the other clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from tests.rawhttp import (
    TIMEOUT_ANSWER,
    RawHttp,
    answer_then_eof,
    assert_malformed_chunks_refused,
    assert_serving,
    assert_timed_out,
    chunk,
    connect_http,
    raw_http,
    request_head,
)
from tests.tlsutil import make_certificates
from trinsq import RunningBroker, open_broker
from trinsq.common._bodylimits import BODY_TIMEOUT

# Either way to hypercorn: a head the lane leaves to h11 (as curl sends for a large body).
EXPECT = b"Expect: 100-continue\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


def refusal(message: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
    """nsqd's 413 (RespondV1), and the connection closed after it."""
    body = b'{"message":"%s"}' % message
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"x-nsq-content-type", b"nsq; version=1.0"),
        (b"Connection", b"close"),
    ]
    return 413, b"Request Entity Too Large", headers, body


@pytest.mark.parametrize(
    ("target", "extra", "options", "length", "message"),
    [
        pytest.param(b"/pub?topic=t", b"", {}, 104_857_600, b"MSG_TOO_BIG", id="pub-lane"),
        pytest.param(
            b"/pub?topic=t", b"", {"max_msg_size": 100}, 101, b"MSG_TOO_BIG", id="pub-lane-101"
        ),
        pytest.param(b"/mpub?topic=t", b"", {}, 104_857_600, b"BODY_TOO_BIG", id="mpub-lane"),
        pytest.param(b"/pub?topic=t", EXPECT, {}, 104_857_600, b"MSG_TOO_BIG", id="pub-h11"),
        pytest.param(
            b"/mpub?topic=t&binary=true", EXPECT, {}, 5_242_881, b"BODY_TOO_BIG", id="mpub-h11"
        ),
        pytest.param(b"/p%75b?topic=t", b"", {}, 1_048_577, b"MSG_TOO_BIG", id="pub-escaped"),
    ],
)
async def test_a_declared_length_over_the_limit_is_refused_before_the_body(
    target: bytes, extra: bytes, options: dict[str, Any], length: int, message: bytes
) -> None:
    async with open_broker(**options) as broker, raw_http(broker.http_address) as http:
        # Only the head is sent: the answer cannot wait for the body.
        await http.send(request_head(b"POST", target, b"Content-Length: %d\r\n" % length + extra))
        assert await answer_then_eof(http) == refusal(message)
        await assert_serving(broker.http_address)
        assert "t" not in broker.topics


@pytest.mark.parametrize(
    ("target", "message"),
    [(b"/pub?topic=t", b"MSG_TOO_BIG"), (b"/mpub?topic=t", b"BODY_TOO_BIG")],
)
async def test_a_chunked_body_is_refused_once_past_the_limit_while_it_is_still_sent(
    broker: RunningBroker, target: bytes, message: bytes
) -> None:
    """Sent as the issue sent it, 100 MiB in 64 KiB chunks with no end in sight: the 413
    comes while the client is still sending, and most of the body is never taken."""
    sent = 0

    async def send_body(http: RawHttp) -> None:
        nonlocal sent
        piece = chunk(b"x" * 65536)
        for _ in range(1600):
            if not await http.send_until_refused(piece):
                return
            sent += 65536

    async with raw_http(broker.http_address) as http, trio.open_nursery() as nursery:
        await http.send(request_head(b"POST", target, CHUNKED))
        nursery.start_soon(send_body, http)
        assert await answer_then_eof(http) == refusal(message)
        await assert_serving(broker.http_address)
        await http.stream.aclose()  # the sender stops, if it has not been refused yet
    assert sent < 1600 * 65536
    assert "t" not in broker.topics


@pytest.mark.parametrize(
    ("target", "limit", "message"),
    [(b"/pub?topic=t", 100, b"MSG_TOO_BIG"), (b"/mpub?topic=t", 1000, b"BODY_TOO_BIG")],
)
async def test_a_chunked_body_is_refused_at_the_first_byte_over(
    target: bytes, limit: int, message: bytes
) -> None:
    lines = b"x" * 49 + b"\n"  # /mpub: messages of 49 bytes, one a line
    body = (lines * (limit // len(lines)))[:limit] if b"mpub" in target else b"x" * limit
    async with open_broker(max_msg_size=100, max_body_size=1000) as broker:
        async with raw_http(broker.http_address) as http:
            # The limit, then one byte more; the body is never finished.
            await http.send(request_head(b"POST", target, CHUNKED) + chunk(body) + chunk(b"y"))
            assert await answer_then_eof(http) == refusal(message)
        assert "t" not in broker.topics
        async with raw_http(broker.http_address) as http:  # the limit itself is taken
            await http.send(request_head(b"POST", target, CHUNKED) + chunk(body) + b"0\r\n\r\n")
            assert (await http.answer())[:2] == (200, b"OK")
        assert broker.topics["t"].message_count == (1 if b"/pub" in target else limit // 50)


LENGTH = b"Content-Length: 3000\r\n"
# Before (answered in full), the head, and the body that completes the request.
STALLED = [
    pytest.param([], request_head(b"POST", b"/pub?topic=t", LENGTH), b"x" * 3000, id="lane"),
    pytest.param([], request_head(b"POST", b"/mpub?topic=t", LENGTH), b"x" * 3000, id="mpub-h11"),
    pytest.param(
        [],
        request_head(b"POST", b"/pub?topic=t", CHUNKED),
        chunk(b"x" * 3000) + b"0\r\n\r\n",
        id="chunked-h11",
    ),
    pytest.param(  # hypercorn's connection now, with its own lane in front of h11
        [request_head(b"GET", b"/info")],
        request_head(b"POST", b"/pub?topic=t", LENGTH),
        b"x" * 3000,
        id="lane-after-h11",
    ),
]


@pytest.mark.parametrize(("before", "head", "body"), STALLED)
async def test_a_stalled_body_is_answered_408_after_the_body_timeout(
    before: list[bytes], head: bytes, body: bytes
) -> None:
    timeout = 0.5
    async with open_broker(http_body_timeout=timeout) as broker:
        http = await connect_http(broker.http_address)
        async with http.stream:
            for request in before:
                await http.send(request)
                assert (await http.answer())[0] == 200
            await http.send(head + body[:10])
            await assert_timed_out(http, broker.http_address, timeout)
        assert "t" not in broker.topics


@pytest.mark.parametrize(("before", "head", "body"), STALLED)
async def test_the_body_timeout_is_on_silence_not_on_the_whole_body(
    mock_clock: trio.testing.MockClock, before: list[bytes], head: bytes, body: bytes
) -> None:
    """Pauses just short of the timeout, adding up to several times it, are waited out; the
    first pause as long as it is answered 408 (virtual time, the default timeout)."""
    async with open_broker() as broker:
        http = await connect_http(broker.http_address)
        async with http.stream:
            await http.send(request_head(b"GET", b"/info"))  # hypercorn and the app, ready
            assert (await http.answer())[0] == 200
            for request in before:
                await http.send(request)
                assert (await http.answer())[0] == 200
            await http.send(head)
            for start in range(0, len(body) - 10, 1000):  # all but the last 10 bytes
                await trio.testing.wait_all_tasks_blocked()
                mock_clock.jump(BODY_TIMEOUT - 1)
                await http.send(body[start : min(start + 1000, len(body) - 10)])
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(BODY_TIMEOUT - 1)
            await assert_serving(broker.http_address)
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(2)
            assert await answer_then_eof(http) == TIMEOUT_ANSWER
        assert "t" not in broker.topics


@pytest.mark.parametrize("target", [b"/pub?topic=t", b"/mpub?topic=t", b"/topic/create?topic=t"])
async def test_malformed_chunk_sizes_are_answered_400(broker: RunningBroker, target: bytes) -> None:
    await assert_malformed_chunks_refused(broker.http_address, target)
    # Nothing published (/topic/create, which reads no body, may have run meanwhile).
    assert broker.topics.get("t") is None or broker.topics["t"].message_count == 0


async def test_https_bodies_are_bounded_the_same_way(tmp_path: Path) -> None:
    """HTTPS is hypercorn's from the first byte, its own lane in front of h11."""
    certs = make_certificates(tmp_path)
    options = certs.broker_options(max_msg_size=100, http_body_timeout=0.5)
    async with open_broker(**options) as broker:
        assert broker.addresses.https is not None
        host, port = broker.addresses.https

        async def request(data: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
            tcp = await trio.open_tcp_stream(host, port)
            context = certs.client_context()
            # hypercorn closes HTTPS without close_notify, as HTTPS servers commonly do.
            tls = trio.SSLStream(tcp, context, server_hostname="127.0.0.1", https_compatible=True)
            async with tls:
                http = RawHttp(tls)
                await http.send(data)
                return await answer_then_eof(http)

        pub = request_head(b"POST", b"/pub?topic=t", b"Content-Length: 104857600\r\n")
        assert await request(pub) == refusal(b"MSG_TOO_BIG")
        pub = request_head(b"POST", b"/pub?topic=t", CHUNKED) + chunk(b"x" * 101)
        assert await request(pub) == refusal(b"MSG_TOO_BIG")
        pub = request_head(b"POST", b"/pub?topic=t", b"Content-Length: 100\r\n") + b"abc"
        assert await request(pub) == TIMEOUT_ANSWER
        await assert_serving(broker.http_address)
        assert "t" not in broker.topics

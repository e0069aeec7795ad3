"""The HTTP fast lane's parser and writer, without I/O: what it takes, what it leaves to h11."""

from __future__ import annotations

import h11
import pytest

from trinsq.common._bodylimits import BodyLimit
from trinsq.common._fastlane import (
    MAX_HEAD,
    NEED_DATA,
    NOT_SIMPLE,
    FastAnswer,
    FastRoute,
    LaneTurn,
    SimpleRequest,
    answer_requests,
    encode_response,
    parse_simple_request,
)

PUB = b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"


def parse(data: bytes, max_body: int = 1 << 20) -> SimpleRequest | str:
    return parse_simple_request(data, max_body)


def test_a_plain_post_is_taken_whole() -> None:
    request = parse(PUB)
    assert request == SimpleRequest(
        method=b"POST",
        path=b"/pub",
        query=b"topic=t",
        body=b"abc",
        close=False,
        consumed=len(PUB),
    )


def test_a_get_without_body_and_pipelined_requests_one_at_a_time() -> None:
    ping = b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n"
    request = parse(ping + PUB)
    assert isinstance(request, SimpleRequest)
    assert (request.method, request.path, request.query, request.body) == (
        b"GET",
        b"/ping",
        b"",
        b"",
    )
    assert request.consumed == len(ping)
    assert parse((ping + PUB)[request.consumed :]) == parse(PUB)


@pytest.mark.parametrize("cut", [1, 10, PUB.index(b"\r\n\r\n") + 2, len(PUB) - 1])
def test_a_request_not_all_there_waits_for_more(cut: int) -> None:
    assert parse(PUB[:cut]) == NEED_DATA


@pytest.mark.parametrize(
    ("request_bytes", "close"),
    [
        (b"GET /ping HTTP/1.0\r\n\r\n", True),
        (b"GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),  # as h11 does
        (b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n", True),
        (b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n", True),
        (b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", False),
    ],
)
def test_when_the_answer_closes_the_connection(request_bytes: bytes, close: bool) -> None:
    request = parse(request_bytes)
    assert isinstance(request, SimpleRequest)
    assert request.close is close


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /pub HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST /pub HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        b"GET /ping HTTP/1.1\r\n\r\n",  # HTTP/1.1 needs a Host
        b"GET /ping HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"POST /pub HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"POST /pub HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n",
        b"POST /pub HTTP/1.1\r\nHost: x\r\nContent-Length: 3x\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nBad Name: a\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nNo-Colon\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\n: no name\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nX: a\r\nHost: x\r\nY : b\r\n\r\n",  # space before colon
        b"HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PUT /config/x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /ping HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET  /ping HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET ping HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /p\xffng HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /ping HTTP/1.1\nHost: x\n\n",  # bare line feeds, which h11 takes
        b"GET /ping HTTP/1.1\r\nHost: x\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX: " + b"a" * MAX_HEAD,  # too long to wait for
    ],
)
def test_anything_unusual_is_left_to_h11(request_bytes: bytes) -> None:
    assert parse(request_bytes) == NOT_SIMPLE


def test_a_body_over_the_lanes_limit_is_left_to_h11() -> None:
    assert parse(PUB, max_body=2) == NOT_SIMPLE
    assert isinstance(parse(PUB, max_body=3), SimpleRequest)


def test_responses_are_written_byte_for_byte_as_h11_writes_them() -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"2"),
        (b"x-nsq-content-type", b"nsq; version=1.0"),
        (b"date", b"Wed, 02 Dec 2026 01:05:08 GMT"),
    ]
    for close in (False, True):
        connection = h11.Connection(h11.SERVER)
        request_headers = [("Host", "x")] + ([("Connection", "close")] if close else [])
        connection.receive_data(
            h11.Connection(h11.CLIENT).send(
                h11.Request(method="GET", target="/ping", headers=request_headers)
            )
            or b""
        )
        connection.next_event()
        expected = (
            connection.send(h11.Response(status_code=200, headers=headers, reason=b"OK")) or b""
        )
        expected += connection.send(h11.Data(data=b"OK")) or b""
        assert encode_response(200, b"OK", headers, b"OK", close=close) == expected


def ok(query: bytes, body: bytes) -> FastAnswer:
    return 200, [(b"content-length", b"2")], b"OK"


ROUTES: dict[tuple[bytes, bytes], FastRoute] = {(b"POST", b"/pub"): ok}
TOO_BIG = BodyLimit(2, 413, ((b"content-length", b"3"),), b"big")
REFUSAL = (
    b"HTTP/1.1 413 Request Entity Too Large\r\ncontent-length: 3\r\nConnection: close\r\n\r\nbig"
)


@pytest.mark.parametrize("target", [b"/pub", b"/mpub", b"/p%75b"])  # the lane's route or not
def test_a_declared_length_over_the_routes_limit_is_refused_from_the_head_alone(
    target: bytes,
) -> None:
    limits = {(b"POST", b"/pub"): TOO_BIG, (b"POST", b"/mpub"): TOO_BIG}
    head = PUB[: PUB.index(b"\r\n\r\n") + 4].replace(b"/pub", target)
    turn = answer_requests(head, ROUTES, list, limits)
    assert turn == LaneTurn([REFUSAL], held=b"", rest=b"", close=True)


def test_a_fast_request_is_held_until_its_body_is_in_and_says_when_the_head_is() -> None:
    head_end = PUB.index(b"\r\n\r\n") + 4
    for cut, held_body in [
        (10, False),
        (head_end - 1, False),
        (head_end, True),
        (len(PUB) - 1, True),
    ]:
        turn = answer_requests(PUB[:cut], ROUTES, list)
        assert (turn.answers, turn.held, turn.held_body) == ([], PUB[:cut], held_body)
    assert answer_requests(PUB, ROUTES, list).answers == [
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK"
    ]


def test_header_values_with_tabs_spaces_and_high_bytes_are_the_lanes() -> None:
    request = parse(
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A:\tvalue with\tspaces \r\nX-B: caf\xc3\xa9\r\n"
        b"X-Empty:\r\n\r\n"
    )
    assert isinstance(request, SimpleRequest)
    assert request.path == b"/ping"

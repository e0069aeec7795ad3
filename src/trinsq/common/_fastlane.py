"""The HTTP fast lane's wire format, sans-IO: plain HTTP/1.1 requests in, h11's bytes out.

The busiest nsqd endpoints (``POST /pub``, ``GET /ping``; the registry's ``GET /lookup``) are
answered straight from the connection's receive buffer instead of through a quart request
with its own tasks, which costs several times the work of the answer itself. Only requests
whose meaning is beyond doubt take the lane: a request line and headers that h11 would accept
as they are, a ``Content-Length`` body (or none) no larger than the lane's limit, and nothing
that needs the full machinery (``Transfer-Encoding``, ``Expect``, ``Upgrade``, folded or
odd header lines). Everything else is handed to h11 untouched, which answers as before.
Responses are written exactly as h11 writes them for the same headers. A plain request whose
declared length is over its route's body limit (``_bodylimits``) is refused by the lane
before any of the body is read, whether the route is the lane's or not.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Final, NamedTuple

import attrs

from ._bodylimits import BodyLimits, limit_for

__all__ = [
    "FAST_MAX_BODY",
    "NEED_DATA",
    "NOT_SIMPLE",
    "FastAnswer",
    "FastRoute",
    "LaneTurn",
    "RequestHead",
    "SimpleRequest",
    "answer_requests",
    "date_header",
    "encode_response",
    "parse_head",
    "parse_simple_request",
    "reason_phrase",
]

# A fast route's answer: status, headers (without date), body.
FastAnswer = tuple[int, list[tuple[bytes, bytes]], bytes]
# (query string, body) -> answer. It must not raise, nor block: it runs in the reader.
FastRoute = Callable[[bytes, bytes], FastAnswer]

NEED_DATA: Final = "need data"
NOT_SIMPLE: Final = "not simple"

# The largest body the lane takes; larger ones go through the app, which streams them.
FAST_MAX_BODY: Final = 1 << 20
# The longest request head the lane looks at; h11's own limit is 16 KiB.
MAX_HEAD: Final = 8192

_METHODS: Final = frozenset((b"GET", b"POST"))
_VERSIONS: Final = {b"HTTP/1.1": b"1.1", b"HTTP/1.0": b"1.0"}
_TARGET: Final = re.compile(rb"/[\x21-\x7e]*")
# Header lines as h11 accepts them: a token, a colon, then a value of visible characters,
# spaces and tabs (no controls); all of them checked in one match, not two per line.
_FIELDS: Final = re.compile(rb"(?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[\x20-\x7e\x80-\xff\t]*\r\n)*")
_DIGITS: Final = re.compile(rb"[0-9]{1,18}")
# Headers whose presence means the request is not for the lane.
_NEEDS_H11: Final = frozenset((b"transfer-encoding", b"expect", b"upgrade"))


class RequestHead(NamedTuple):
    """A request line and headers the lane takes as they are (a tuple: made per request)."""

    method: bytes
    path: bytes
    query: bytes
    length: int  # of the body (Content-Length, or 0)
    close: bool  # the answer ends the connection (HTTP/1.0, or Connection: close)
    body_start: int  # where the body starts in the buffer


@attrs.frozen
class SimpleRequest:
    method: bytes
    path: bytes
    query: bytes
    body: bytes
    close: bool  # the answer ends the connection (HTTP/1.0, or Connection: close)
    consumed: int  # bytes of the buffer this request took


def parse_head(data: bytes) -> RequestHead | str:
    """The head of the first request in ``data``, NEED_DATA if it is not all there yet, or
    NOT_SIMPLE if the request is not for the lane (h11 must see it, from its first byte)."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
    if end < 0:
        head = data[: MAX_HEAD + 4]
        # A bare LF (which h11 tolerates) or a head too long: not the lane's to judge.
        if len(data) > MAX_HEAD or head.count(b"\n") != head.count(b"\r\n"):
            return NOT_SIMPLE
        return NEED_DATA
    head = data[:end]
    # A bare LF in a line (h11's to judge). Counted, not tested line by line: ``b"\n" in
    # line`` first tries the bytes as an int, and builds and drops a TypeError each time.
    if head.count(b"\n") != head.count(b"\r\n"):
        return NOT_SIMPLE
    first_end = head.find(b"\r\n")
    if first_end >= 0 and not _FIELDS.fullmatch(data, first_end + 2, end + 2):
        return NOT_SIMPLE  # also a folded line, which starts with a space
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        return NOT_SIMPLE
    method, target, version = parts
    http_version = _VERSIONS.get(version)
    if method not in _METHODS or http_version is None or not _TARGET.fullmatch(target):
        return NOT_SIMPLE
    length = 0
    hosts = lengths = 0
    close = http_version == b"1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        value = value.strip(b" \t")
        name = name.lower()
        if name in _NEEDS_H11:
            return NOT_SIMPLE
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            lengths += 1
            if not _DIGITS.fullmatch(value):
                return NOT_SIMPLE
            length = int(value)
        elif name == b"connection":
            tokens = [token.strip(b" \t").lower() for token in value.split(b",")]
            close = close or b"close" in tokens
    if lengths > 1 or hosts > 1 or (http_version == b"1.1" and hosts != 1):
        return NOT_SIMPLE
    path, _, query = target.partition(b"?")
    return RequestHead(method, path, query, length, close, end + 4)


def parse_simple_request(data: bytes, max_body: int) -> SimpleRequest | str:
    """The first request in ``data``, NEED_DATA if it is not all there yet, or NOT_SIMPLE if it
    is not for the lane (h11 must see it, from its first byte)."""
    head = parse_head(data)
    if isinstance(head, str):
        return head
    if head.length > max_body:
        return NOT_SIMPLE
    end = head.body_start + head.length
    if len(data) < end:
        return NEED_DATA
    return SimpleRequest(
        method=head.method,
        path=head.path,
        query=head.query,
        body=data[head.body_start : end],
        close=head.close,
        consumed=end,
    )


def encode_response(
    status: int, reason: bytes, headers: list[tuple[bytes, bytes]], body: bytes, *, close: bool
) -> bytes:
    """The bytes h11 writes for this response: the headers in the order given, then its
    ``Connection: close`` when the connection ends."""
    out = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    out += [name + b": " + value + b"\r\n" for name, value in headers]
    if close:
        out.append(b"Connection: close\r\n")
    out.append(b"\r\n")
    out.append(body)
    return b"".join(out)


# Where Go's StatusText differs from http.HTTPStatus (in any Python version).
_GO_TEXT: Final = {
    413: "Request Entity Too Large",
    414: "Request URI Too Long",
    416: "Requested Range Not Satisfiable",
    418: "I'm a teapot",
    422: "Unprocessable Entity",
}


def reason_phrase(status: int) -> str:
    """Go's reason phrase for ``status``; for a code it does not know, ``status code N``."""
    text = _GO_TEXT.get(status)
    if text is not None:
        return text
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status code {status}"


_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


_date_cache: tuple[int, bytes] = (-1, b"")


def date_header() -> list[tuple[bytes, bytes]]:
    """The ``date`` header as hypercorn adds it (wsgiref's format_date_time of now), made
    once a second: it is on every answer."""
    global _date_cache
    now = int(time.time())
    second, value = _date_cache
    if second != now:
        year, month, day, hh, mm, ss, wd, _, _ = time.gmtime(now)
        text = (
            f"{_DAYS[wd]}, {day:02d} {_MONTHS[month]:>3} {year:4d} {hh:02d}:{mm:02d}:{ss:02d} GMT"
        )
        value = text.encode("ascii")
        _date_cache = (now, value)
    return [(b"date", value)]


@attrs.frozen
class LaneTurn:
    """What the lane made of a receive buffer (see :func:`answer_requests`)."""

    answers: list[bytes]  # the responses, in order, to send together
    held: bytes  # the start of a fast request, waiting for the rest
    rest: bytes  # from the first request that is not for the lane: h11's, untouched
    close: bool  # the last answer ends the connection (what follows it is dropped)
    held_body: bool = False  # ``held`` has the whole head: the body is being received


def answer_requests(
    buffer: bytes,
    routes: dict[tuple[bytes, bytes], FastRoute],
    extra_headers: Callable[[], list[tuple[bytes, bytes]]],
    limits: BodyLimits | None = None,
) -> LaneTurn:
    """Answer every complete fast request at the front of ``buffer``; refuse, before its body,
    a request whose declared length is over its route's limit.

    Args:
        routes: the fast routes by method and path.
        extra_headers: the server's own headers, after each route's (the date).
        limits: the routes with a body limit, by method and path.
    """
    answers: list[bytes] = []
    while buffer:
        head = parse_head(buffer)
        if head == NEED_DATA:  # bounded: MAX_HEAD
            return LaneTurn(answers, buffer, b"", close=False)
        if isinstance(head, str):  # NOT_SIMPLE: h11's, from its first byte
            break
        limit = limit_for(limits, head.method, head.path) if limits else None
        if limit is not None and head.length > limit.size:
            headers = [*limit.headers, *extra_headers()]
            reason = reason_phrase(limit.status).encode()
            answers.append(encode_response(limit.status, reason, headers, limit.body, close=True))
            return LaneTurn(answers, b"", b"", close=True)
        route = routes.get((head.method, head.path))
        if route is None or head.length > FAST_MAX_BODY:
            break
        end = head.body_start + head.length
        if len(buffer) < end:  # bounded: MAX_HEAD plus FAST_MAX_BODY
            return LaneTurn(answers, buffer, b"", close=False, held_body=True)
        status, headers, body = route(head.query, buffer[head.body_start : end])
        headers += extra_headers()
        answers.append(
            encode_response(status, reason_phrase(status).encode(), headers, body, close=head.close)
        )
        buffer = buffer[end:]
        if head.close:
            return LaneTurn(answers, b"", b"", close=True)
    return LaneTurn(answers, b"", buffer, close=False)

"""How much of a request body the HTTP servers take, and how long they wait for it, sans-IO.

nsqd (http.go) refuses a /pub or /mpub whose declared ``Content-Length`` is over its limit
before reading any of it, and stops reading a body once it is one byte over. Both the fast
lane and hypercorn's connections do the same here, for any route given a :class:`BodyLimit`:
the refusal goes out as soon as the declared or received size passes the limit, the rest of
the body is never read, and the connection is closed (the body cannot be skipped cheaply).

nsqd's ``http.Server`` has no read timeout at all, so a client that stops half way through a
body holds its connection forever. Here a request body that receives nothing for
``BODY_TIMEOUT`` seconds is answered 408 and the connection closed; a request whose head is
not complete yet is closed silently after the keep-alive timeout, as hypercorn does.

Chunk sizes follow Go's net/http, which refuses one of more than 16 hex digits ("http chunk
length too large"); h11 takes up to 20 and would then wait for 2**80 bytes.
"""

from __future__ import annotations

import math
from typing import Final
from urllib.parse import unquote_to_bytes

import attrs

__all__ = [
    "BODY_TIMEOUT",
    "MAX_CHUNK_SIZE_DIGITS",
    "TIMEOUT_STATUS",
    "BodyLimit",
    "BodyLimits",
    "body_wait",
    "error_headers",
    "limit_for",
]

# Seconds a request body may go without a byte before it is answered 408 (0: no limit).
BODY_TIMEOUT: Final = 30.0
TIMEOUT_STATUS: Final = 408
# Go's net/http (parseHexUint): a chunk size of more hex digits is an error.
MAX_CHUNK_SIZE_DIGITS: Final = 16


@attrs.frozen
class BodyLimit:
    """The most a route takes in a request body, and its answer to more (without the date)."""

    size: int
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


# The routes that have a limit, by method and path.
BodyLimits = dict[tuple[bytes, bytes], BodyLimit]


def limit_for(limits: BodyLimits, method: bytes, path: bytes) -> BodyLimit | None:
    """The limit of the route a request path reaches (percent-decoded, as the app's router
    sees it)."""
    if path.find(b"%") >= 0:  # (``b"%" in path`` costs a TypeError made and dropped)
        path = unquote_to_bytes(path)
    return limits.get((method, path))


def body_wait(timeout: float) -> float:
    """How long to wait for a body's next byte: ``timeout``, or for ever if it is 0."""
    return timeout if timeout > 0 else math.inf


def error_headers() -> list[tuple[bytes, bytes]]:
    """The headers of an error the server answers by itself, as hypercorn writes them (an
    empty body, and the connection closed after it); the date follows."""
    return [(b"content-length", b"0"), (b"connection", b"close")]

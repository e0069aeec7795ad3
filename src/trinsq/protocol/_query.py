"""HTTP query strings parsed by Go's rules (net/url ParseQuery), as nsqd and nsqlookupd read
every parameter from the query string only."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["QueryError", "parse_go_query"]

_ESCAPE: Final = re.compile(rb"%([0-9A-Fa-f]{2})")


class QueryError(ValueError):
    """The query string is malformed (bad escape, ';' separator); nsqd answers 400."""


def _unescape(raw: bytes) -> str:
    # find(), not ``in``: ``b"%" in raw`` tries the bytes as an int first, raising and
    # dropping a TypeError each time, on every request's parameters.
    escapes = raw.count(b"%")
    if escapes and len(_ESCAPE.findall(raw)) != escapes:
        raise QueryError(f"invalid URL escape in {raw!r}")
    decoded = raw.replace(b"+", b" ")  # before unescaping: "%2B" stays a "+"
    if escapes:
        decoded = _ESCAPE.sub(lambda match: bytes([int(match.group(1), 16)]), decoded)
    # Go strings are bytes: keep undecodable ones exactly (surrogateescape).
    return decoded.decode("utf-8", "surrogateescape")


def parse_go_query(raw: bytes) -> dict[str, list[str]]:
    """Every value of every key, in order; the first value is the one nsqd uses.

    Raises:
        QueryError: as Go's ParseQuery reports an error (it still parses the rest; nsqd
            rejects the request anyway).
    """
    values: dict[str, list[str]] = {}
    error: QueryError | None = None
    for part in raw.split(b"&"):
        if part.find(b";") >= 0:
            error = error or QueryError("invalid semicolon separator in query")
            continue
        if not part:
            continue
        key, _, value = part.partition(b"=")
        try:
            values.setdefault(_unescape(key), []).append(_unescape(value))
        except QueryError as failure:
            error = error or failure
    if error is not None:
        raise error
    return values

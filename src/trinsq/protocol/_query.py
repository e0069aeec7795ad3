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
    if b"%" in raw and len(_ESCAPE.findall(raw)) != raw.count(b"%"):
        raise QueryError(f"invalid URL escape in {raw!r}")
    decoded = _ESCAPE.sub(lambda match: bytes([int(match.group(1), 16)]), raw.replace(b"+", b" "))
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
        if b";" in part:
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

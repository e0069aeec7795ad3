"""Decoding JSON that comes from outside: clients, auth servers, registries, files on disk.

Python's decoder recurses once per level of nesting and gives up near the interpreter's
recursion limit with a RecursionError, which is no ValueError, so every caller catching
"malformed JSON" would miss it; and where it gives up depends on how deep the caller's own
stack already is. :func:`decode_json` refuses nesting beyond :data:`MAX_JSON_DEPTH` levels before
decoding (a linear scan, so a megabyte of ``[`` costs neither time nor stack), and turns every
decoding failure into one :class:`JsonError`.

Go's decoder stops at 10000 levels ("exceeded max depth"); :data:`MAX_JSON_DEPTH` is lower because
Python's decoder cannot go that deep. No document nsqd, nsqlookupd or an auth server writes
comes near either limit.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any, Final

__all__ = ["MAX_JSON_DEPTH", "JsonError", "decode_json"]

MAX_JSON_DEPTH: Final = 512
_TOO_DEEP: Final = "exceeded max depth"  # Go's words

# Opening brackets step the depth up by one, closing ones down by one (as signed bytes);
# everything else goes.
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS: Final = bytes(set(range(256)) - set(b"[]{}"))
_PAIR: Final = b"\x01\xff"
_PASSES: Final = 8
_SLICE: Final = 1 << 14


class JsonError(ValueError):
    """The text is not JSON, or nests deeper than :data:`MAX_JSON_DEPTH` levels."""


def _outside_strings(text: str) -> str:
    """``text`` without its string literals (exact for valid JSON)."""
    if '"' not in text:
        return text
    if "\\" in text:
        # Inside a string a backslash escapes the next character; outside there is none.
        # Pairs of backslashes go first, so each quote left after a backslash is escaped.
        text = text.replace("\\\\", "").replace('\\"', "")
    return "".join(text.split('"')[0::2])


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether the arrays and objects in ``text`` nest more than ``limit`` levels deep
    (brackets inside strings do not count). Exact for valid JSON; for anything else the
    answer does not matter, as the decoder refuses it either way."""
    if text.count("[") + text.count("{") <= limit:
        return False
    outside = _outside_strings(text).encode("utf-8", "surrogatepass")
    steps = outside.translate(_STEPS, _NOT_BRACKETS)
    # Each pass takes away the innermost level everywhere (in valid JSON every deepest
    # bracket is closed right after it opens): cheap, and typical documents are gone after
    # a few passes.
    for _ in range(_PASSES):
        shorter = steps.replace(_PAIR, b"")
        if len(shorter) == len(steps):
            break
        steps = shorter
        limit -= 1
    signed = memoryview(steps).cast("b")
    depth = 0
    # In slices, so that a document opening a million brackets is refused after the first.
    for start in range(0, len(signed), _SLICE):
        depths = list(accumulate(signed[start : start + _SLICE], initial=depth))
        if max(depths) > limit:
            return True
        depth = depths[-1]
    return False


def decode_json(data: str | bytes | bytearray, **options: Any) -> Any:
    """``json.loads(data, **options)`` for untrusted input.

    Raises:
        JsonError: invalid JSON (or text that is not UTF-8, -16 or -32), nesting deeper than
            :data:`MAX_JSON_DEPTH` levels, or a ValueError from one of the ``options``' hooks.
    """
    try:
        if isinstance(data, str):
            text = data
        else:
            text = bytes(data).decode(json.detect_encoding(data), "surrogatepass")
        if nesting_exceeds(text, MAX_JSON_DEPTH):
            raise JsonError(_TOO_DEEP)
        return json.loads(text, **options)
    except RecursionError:  # only if the caller's stack is already very deep
        raise JsonError(_TOO_DEEP) from None
    except JsonError:
        raise
    except ValueError as error:
        raise JsonError(str(error)) from None

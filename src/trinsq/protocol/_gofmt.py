"""Go formatting and number-parsing rules that show up in nsqd's error texts."""

from __future__ import annotations

from typing import Final

__all__ = ["go_quote", "parse_base10", "to_int64", "wrap_duration_ms"]

_UINT64: Final = 1 << 64
_SIMPLE_ESCAPES: Final = {
    0x07: "\\a",
    0x08: "\\b",
    0x0C: "\\f",
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x0B: "\\v",
    0x22: '\\"',
    0x5C: "\\\\",
}


def parse_base10(raw: bytes) -> int | None:
    """Parse like nsqd's ``protocol.ByteToBase10``: digits only, no sign, wraps at 2**64.

    An empty parameter parses as 0 (a quirk clients may rely on). Returns None on any non-digit.
    """
    if raw and not raw.isdigit():
        return None
    return int(raw) % _UINT64 if raw else 0


def to_int64(value: int) -> int:
    """Reinterpret an unsigned 64-bit value as Go's int64 (two's complement)."""
    value %= _UINT64
    return value - _UINT64 if value >= 1 << 63 else value


def wrap_duration_ms(milliseconds_u64: int) -> int:
    """``time.Duration(ms) * time.Millisecond`` in Go, overflow included; nanoseconds."""
    return to_int64(to_int64(milliseconds_u64) * 1_000_000)


def go_quote(raw: bytes) -> str:
    """Quote bytes as Go's ``%q`` of a string does (strconv.Quote)."""
    out = ['"']
    text = raw.decode("utf-8", "surrogateescape")
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an invalid UTF-8 byte, kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[code])
        elif char.isprintable():
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)

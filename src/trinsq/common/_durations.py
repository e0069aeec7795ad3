"""Go's duration syntax (time.ParseDuration and Duration.String), in seconds.

nsqd's flags and config file take Go durations ("60s", "1m30s", "250ms"), and its --help prints
defaults as Go formats them, so a command line written for nsqd must mean the same thing here.
Go durations are whole nanoseconds in an int64; the arithmetic below keeps that, including the
overflow limits, and only converts to float seconds at the edge.
"""

from __future__ import annotations

__all__ = ["format_go_duration", "parse_go_duration"]

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # U+00B5 MICRO SIGN
    "\u03bcs": 1_000,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_LIMIT = 1 << 63  # Go accumulates in uint64 and refuses anything past this
_DIGITS = "0123456789"  # not str.isdigit(): that accepts non-ASCII digits, Go does not


def _quote(text: str) -> str:
    """Quote like Go's time package does in its errors: non-ASCII and control bytes as \\xNN."""
    out = ['"']
    for char in text:
        if char < " " or char > "\x7f":
            # surrogateescape gives back the raw byte of an undecodable argv byte
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogateescape"))
        else:
            out.append("\\" + char if char in '"\\' else char)
    out.append('"')
    return "".join(out)


def _leading_digits(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    return text[:end], text[end:]


def _leading_fraction(text: str) -> tuple[int, float, str]:
    """Digits after the point as (value, 10**kept, rest); digits past int64 range are dropped."""
    value, scale, end = 0, 1.0, 0
    overflow = False
    while end < len(text) and text[end] in _DIGITS:
        if not overflow:
            if value > (_LIMIT - 1) // 10 or value * 10 + int(text[end]) > _LIMIT:
                overflow = True
            else:
                value = value * 10 + int(text[end])
                scale *= 10
        end += 1
    return value, scale, text[end:]


def _parse_ns(orig: str) -> int:
    invalid = ValueError(f"time: invalid duration {_quote(orig)}")
    text = orig
    negative = False
    if text[:1] in ("-", "+"):
        negative = text[0] == "-"
        text = text[1:]
    if text == "0":  # the one duration allowed without a unit
        return 0
    if not text:
        raise invalid
    total = 0
    while text:
        if text[0] != "." and text[0] not in _DIGITS:
            raise invalid
        whole, text = _leading_digits(text)
        value = int(whole or "0")
        if value > _LIMIT:
            raise invalid
        fraction, scale = 0, 1.0
        if text.startswith("."):
            digits_before = len(text) - 1
            fraction, scale, text = _leading_fraction(text[1:])
            if not whole and len(text) == digits_before:  # ".s", "-.s"
                raise invalid
        end = 0
        while end < len(text) and text[end] != "." and text[end] not in _DIGITS:
            end += 1
        if end == 0:
            raise ValueError(f"time: missing unit in duration {_quote(orig)}")
        unit_name, text = text[:end], text[end:]
        unit = _NS_PER_UNIT.get(unit_name)
        if unit is None:
            raise ValueError(f"time: unknown unit {_quote(unit_name)} in duration {_quote(orig)}")
        if value > _LIMIT // unit:
            raise invalid
        value *= unit
        if fraction:
            # float64 arithmetic, as Go does, so fractional results round identically
            value += int(float(fraction) * (unit / scale))
            if value > _LIMIT:
                raise invalid
        total += value
        if total > _LIMIT:
            raise invalid
    if negative:
        return -total
    if total > _LIMIT - 1:
        raise invalid
    return total


def parse_go_duration(text: str) -> float:
    """Parse a Go duration such as ``"1m30s"`` or ``"250ms"`` into seconds.

    Raises:
        ValueError: with Go's message, e.g. ``time: unknown unit "x" in duration "1x"``.
    """
    return _parse_ns(text) / 1_000_000_000


def _frac(value: int, precision: int) -> tuple[str, int]:
    """The last ``precision`` digits of value as ".ddd" without trailing zeros, and the rest."""
    digits = f"{value % 10**precision:0{precision}d}".rstrip("0")
    return ("." + digits if digits else ""), value // 10**precision


def format_go_duration(seconds: float) -> str:
    """Format seconds as Go's Duration.String(): ``60`` -> ``"1m0s"``, ``0.25`` -> ``"250ms"``."""
    ns = round(seconds * 1_000_000_000)
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000_000:
        # below a second Go switches to the largest unit that keeps an integer part
        unit, precision = ("\u00b5s", 3) if ns < 1_000_000 else ("ms", 6)
        fraction, whole = _frac(ns, precision)
        return f"{sign}{whole}{fraction}{unit}"
    fraction, whole_seconds = _frac(ns, 9)
    minutes, secs = divmod(whole_seconds, 60)
    text = f"{secs}{fraction}s"
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return sign + text

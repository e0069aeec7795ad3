"""Go's ``time.Time.Format``: a reference-time layout ("2006-01-02 15:04:05") rendered for a
datetime.

nsq_to_file turns ``--datetime-format``'s strftime directives into such a layout and formats
with it, so text between the directives is read as a layout too: a literal ``1`` in the format
prints the month, as it does in nsq_to_file. Fractional seconds use the datetime's
microseconds (Go has nanoseconds; the extra digits are zeros).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

__all__ = ["go_time_format"]

_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_Render = Callable[[datetime], str]


def _offset_minutes(moment: datetime) -> int:
    offset = moment.utcoffset()
    return 0 if offset is None else int(offset.total_seconds()) // 60


def _offset_seconds(moment: datetime) -> int:
    offset = moment.utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def _numeric_zone(*, z_for_utc: bool, colons: bool, minutes: bool, seconds: bool) -> _Render:
    def render(moment: datetime) -> str:
        total = _offset_seconds(moment)
        if z_for_utc and total == 0:
            return "Z"
        sign = "-" if total < 0 else "+"
        total = abs(total)
        parts = [f"{total // 3600:02d}"]
        if minutes:
            parts.append(f"{total // 60 % 60:02d}")
        if seconds:
            parts.append(f"{total % 60:02d}")
        return sign + (":" if colons else "").join(parts)

    return render


def _zone_name(moment: datetime) -> str:
    name = moment.tzname()
    if name:
        return name
    total = _offset_minutes(moment)  # Go: -0700 when the zone has no abbreviation
    sign = "-" if total < 0 else "+"
    return f"{sign}{abs(total) // 60:02d}{abs(total) % 60:02d}"


def _hour12(moment: datetime) -> int:
    return moment.hour % 12 or 12


def _year_day(moment: datetime) -> int:
    return moment.timetuple().tm_yday


# Go's std chunks, longest first where one is a prefix of another (nextStdChunk's order).
_CHUNKS: Final[tuple[tuple[str, _Render], ...]] = (
    ("January", lambda m: _MONTHS[m.month - 1]),
    ("Jan", lambda m: _MONTHS[m.month - 1][:3]),
    ("Monday", lambda m: _DAYS[m.weekday()]),
    ("Mon", lambda m: _DAYS[m.weekday()][:3]),
    ("MST", _zone_name),
    ("002", lambda m: f"{_year_day(m):03d}"),
    ("01", lambda m: f"{m.month:02d}"),
    ("02", lambda m: f"{m.day:02d}"),
    ("03", lambda m: f"{_hour12(m):02d}"),
    ("04", lambda m: f"{m.minute:02d}"),
    ("05", lambda m: f"{m.second:02d}"),
    ("06", lambda m: f"{m.year % 100:02d}"),
    ("15", lambda m: f"{m.hour:02d}"),
    ("1", lambda m: str(m.month)),
    ("2006", lambda m: f"{m.year:04d}"),
    ("2", lambda m: str(m.day)),
    ("__2", lambda m: f"{_year_day(m):3d}"),
    ("_2006", lambda m: f"_{m.year:04d}"),  # Go: a literal "_" then the year
    ("_2", lambda m: f"{m.day:2d}"),
    ("3", lambda m: str(_hour12(m))),
    ("4", lambda m: str(m.minute)),
    ("5", lambda m: str(m.second)),
    ("PM", lambda m: "PM" if m.hour >= 12 else "AM"),
    ("pm", lambda m: "pm" if m.hour >= 12 else "am"),
    ("-070000", _numeric_zone(z_for_utc=False, colons=False, minutes=True, seconds=True)),
    ("-07:00:00", _numeric_zone(z_for_utc=False, colons=True, minutes=True, seconds=True)),
    ("-0700", _numeric_zone(z_for_utc=False, colons=False, minutes=True, seconds=False)),
    ("-07:00", _numeric_zone(z_for_utc=False, colons=True, minutes=True, seconds=False)),
    ("-07", _numeric_zone(z_for_utc=False, colons=False, minutes=False, seconds=False)),
    ("Z070000", _numeric_zone(z_for_utc=True, colons=False, minutes=True, seconds=True)),
    ("Z07:00:00", _numeric_zone(z_for_utc=True, colons=True, minutes=True, seconds=True)),
    ("Z0700", _numeric_zone(z_for_utc=True, colons=False, minutes=True, seconds=False)),
    ("Z07:00", _numeric_zone(z_for_utc=True, colons=True, minutes=True, seconds=False)),
    ("Z07", _numeric_zone(z_for_utc=True, colons=False, minutes=False, seconds=False)),
)


def _fraction(layout: str, index: int) -> int:
    """The length of a fractional-seconds chunk (".000", ",999") at ``index``, or 0."""
    if layout[index] not in ".," or index + 1 >= len(layout) or layout[index + 1] not in "09":
        return 0
    digit = layout[index + 1]
    end = index + 1
    while end < len(layout) and layout[end] == digit:
        end += 1
    if end < len(layout) and layout[end].isdigit():
        return 0  # Go: a run followed by another digit is not a fraction
    return end - index


def _render_fraction(chunk: str, moment: datetime) -> str:
    digits = f"{moment.microsecond:06d}000"[: len(chunk) - 1]
    if chunk[1] == "9":
        digits = digits.rstrip("0")
        return chunk[0] + digits if digits else ""
    return chunk[0] + digits


def _inside_word(layout: str, chunk: str, index: int) -> bool:
    """Go reads "Jan" and "Mon" as chunks only when no lower-case letter follows ("Monet")."""
    following = layout[index + len(chunk) : index + len(chunk) + 1]
    return chunk in ("Jan", "Mon") and following.islower()


def go_time_format(layout: str, moment: datetime) -> str:
    """``moment.Format(layout)`` as Go renders it."""
    out: list[str] = []
    index = 0
    while index < len(layout):
        width = _fraction(layout, index)
        if width:
            out.append(_render_fraction(layout[index : index + width], moment))
            index += width
            continue
        for chunk, render in _CHUNKS:
            if layout.startswith(chunk, index) and not _inside_word(layout, chunk, index):
                out.append(render(moment))
                index += len(chunk)
                break
        else:
            out.append(layout[index])
            index += 1
    return "".join(out)

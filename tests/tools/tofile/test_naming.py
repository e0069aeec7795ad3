"""nsq_to_file's file names: the pattern per topic, <DATETIME> through its strftime, <REV>."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from trinsq.tools.tofile import FilenameFormatError, compute_filename_format, go_strftime
from trinsq.tools.tofile._gotime import go_time_format
from trinsq.tools.tofile._naming import DEFAULT_FILENAME_FORMAT, with_datetime, with_rev

MST = timezone(timedelta(hours=-7), "MST")
MOMENT = datetime(2009, 11, 10, 23, 4, 5, 123456, tzinfo=MST)


def _pattern(*, gzip: bool = False, rotation: bool = False, work_dir: bool = False) -> str:
    return compute_filename_format(
        DEFAULT_FILENAME_FORMAT,
        topic="clicks",
        hostname="box.example.com",
        pid=42,
        gzip=gzip,
        rotation=rotation,
        separate_work_dir=work_dir,
    )


def test_default_pattern_drops_rev_when_no_file_can_need_a_second_name() -> None:
    assert _pattern() == "clicks.box.<DATETIME>.log"


@pytest.mark.parametrize("needs_rev", [{"gzip": True}, {"rotation": True}, {"work_dir": True}])
def test_rev_is_kept_where_a_name_may_be_needed_twice(needs_rev: dict[str, bool]) -> None:
    expected = "clicks.box<REV>.<DATETIME>.log" + (".gz" if needs_rev.get("gzip") else "")
    assert _pattern(**needs_rev) == expected


def test_gz_is_not_doubled_and_tokens_are_replaced() -> None:
    pattern = compute_filename_format(
        "<PID>/<TOPIC>-<HOST><REV>-<DATETIME>.gz",
        topic="t",
        hostname="box.example.com",
        pid=42,
        host_identifier="<SHORT_HOST>@<HOSTNAME>",
        gzip=True,
    )
    assert pattern == "42/t-box@box.example.com<REV>-<DATETIME>.gz"


def test_missing_rev_is_refused_in_nsq_to_files_words() -> None:
    with pytest.raises(FilenameFormatError) as raised:
        compute_filename_format("<TOPIC>.log", topic="t", hostname="h", pid=1, rotation=True)
    assert str(raised.value) == (
        "missing <REV> in --filename-format when gzip, rotation, or work dir enabled"
    )


def test_datetime_and_rev() -> None:
    name = with_datetime("t.h<REV>.<DATETIME>.log", "%Y-%m-%d_%H", MOMENT)
    assert name == "t.h<REV>.2009-11-10_23.log"
    assert with_rev(name, 0) == "t.h-000000.2009-11-10_23.log"
    assert with_rev(name, 1234567) == "t.h-1234567.2009-11-10_23.log"


@pytest.mark.parametrize(
    ("format_", "expected"),
    [
        ("%Y-%m-%d_%H", "2009-11-10_23"),
        ("%y%m%d %I:%M:%S %p", "091110 11:04:05 PM"),
        ("%A %a %B %b", "Tuesday Tue November Nov"),
        ("%Z %z %%", "MST -0700 %"),
        ("%j %Q", "%j %Q"),  # directives go-strftime does not know stay as written
        ("v1-%Y", "v11-2009"),  # the literal "1" is Go's month, as in nsq_to_file
        ("%Y%", "2009%"),
    ],
)
def test_strftime_as_nsq_to_file_renders_it(format_: str, expected: str) -> None:
    assert go_strftime(format_, MOMENT) == expected


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("Mon Jan _2 15:04:05 MST 2006", "Tue Nov 10 23:04:05 MST 2009"),
        ("Monet 3:4:5 pm", "Monet 11:4:5 pm"),  # "Mon" before a lower-case letter is text
        (".000 .999 ,9 .0009", ".123 .123 ,1 .0009"),
        ("-07:00 -07 Z0700 002 __2 _2006", "-07:00 -07 -0700 314 314 _2009"),
    ],
)
def test_go_layouts(layout: str, expected: str) -> None:
    assert go_time_format(layout, MOMENT) == expected


def test_utc_zone_forms() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert go_time_format("Z07:00 -0700 MST", moment) == "Z +0000 UTC"

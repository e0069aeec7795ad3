"""Go duration parsing and formatting, checked against values Go's time package produces."""

from __future__ import annotations

import pytest

from trinsq.common._durations import format_go_duration, parse_go_duration

NS = 1e-9


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("-0", 0.0),
        ("+0", 0.0),
        ("0s", 0.0),
        ("60s", 60.0),
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        ("2h45m", 9900.0),
        ("300us", 300e-6),
        ("1µs", 1e-6),  # U+00B5 micro sign
        ("1μs", 1e-6),  # U+03BC Greek mu
        ("1ns", NS),
        ("-1s", -1.0),
        ("+5m", 300.0),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("1.004s", 1.004),
        ("3h1m0.5s", 10860.5),
        ("1h1h", 7200.0),  # units may repeat and come in any order
        ("10ms1h", 3600.01),
        ("0.100000000000000000000h", 360.0),  # fraction digits beyond int64 are dropped
        ("9223372036854775807ns", 9223372036854775807 * NS),
        ("-9223372036854775808ns", -9223372036854775808 * NS),
        ("2562047h47m16.854775807s", 9223372036854775807 * NS),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("1.5", 'time: missing unit in duration "1.5"'),
        ("s", 'time: invalid duration "s"'),
        ("-", 'time: invalid duration "-"'),
        (".", 'time: invalid duration "."'),
        (".s", 'time: invalid duration ".s"'),
        ("-.s", 'time: invalid duration "-.s"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("1S", 'time: unknown unit "S" in duration "1S"'),
        ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
        (" 1s", 'time: invalid duration " 1s"'),
        ("1s ", 'time: unknown unit "s " in duration "1s "'),
        ("1µ", 'time: unknown unit "\\xc2\\xb5" in duration "1\\xc2\\xb5"'),
        ("\u0661s", 'time: invalid duration "\\xd9\\xa1s"'),  # an Arabic-Indic digit is not a digit
        ('1"', 'time: unknown unit "\\"" in duration "1\\""'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("2562048h", 'time: invalid duration "2562048h"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^time: ") as caught:
        parse_go_duration(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (NS, "1ns"),
        (999 * NS, "999ns"),
        (1.5e-6, "1.5µs"),
        (1e-3, "1ms"),
        (0.025, "25ms"),
        (0.25, "250ms"),
        (0.0011, "1.1ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (60, "1m0s"),
        (90, "1m30s"),
        (900, "15m0s"),
        (3600, "1h0m0s"),
        (3661.001, "1h1m1.001s"),
        (-1, "-1s"),
        (-0.25, "-250ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_go_duration(seconds) == text


@pytest.mark.parametrize("text", ["1ns", "1.5µs", "25ms", "1.5s", "1m30s", "1h0m0s", "-2h3m4s"])
def test_format_parse_round_trip(text: str) -> None:
    assert format_go_duration(parse_go_duration(text)) == text

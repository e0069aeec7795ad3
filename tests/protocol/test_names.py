"""Topic/channel names (internal/protocol/names.go) and the Go formatting/number helpers
(strconv.Quote via %q, internal/protocol/byte_base10.go, time.Duration arithmetic)."""

from __future__ import annotations

import pytest

from trinsq.protocol import (
    EPHEMERAL_SUFFIX,
    go_quote,
    is_ephemeral,
    is_valid_channel_name,
    is_valid_name_bytes,
    is_valid_topic_name,
    parse_base10,
)
from trinsq.protocol._gofmt import to_int64, wrap_duration_ms

UINT64 = 1 << 64

# -- names ----------------------------------------------------------------------------------------

VALID_NAMES = [
    "a",
    "Z",
    "0",
    ".",
    "_",
    "-",
    "orders",
    "orders.v2",
    "Orders_2024-01",
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"[:64],
    "x" * 64,
    "t#ephemeral",
    "..#ephemeral",
    "x" * 54 + "#ephemeral",  # the suffix counts toward the 64
]

INVALID_NAMES = [
    "",
    "x" * 65,
    "x" * 55 + "#ephemeral",  # 65 with the suffix
    "#ephemeral",  # the suffix needs a name before it
    "a#ephemeral#ephemeral",
    "a#Ephemeral",
    "a#EPHEMERAL",
    "a#ephemera",
    "a#",
    "a#b",
    "#",
    "a b",
    " a",
    "a!",
    "bad!topic",
    "a:b",
    "a/b",
    "a,b",
    "a*",
    "a\n",  # a trailing newline must not slip through a $-anchored regex
    "\na",
    "a\r",
    "a\t",
    "a\x00",
    "café",
    "\uff21",  # fullwidth A
    "a\u212a",  # Kelvin sign
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_names(name: str) -> None:
    assert is_valid_topic_name(name)
    assert is_valid_channel_name(name)
    assert is_valid_name_bytes(name.encode("ascii"))


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_names(name: str) -> None:
    assert not is_valid_topic_name(name)
    assert not is_valid_channel_name(name)
    assert not is_valid_name_bytes(name.encode("utf-8"))


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b"a\xff", b"\xc3\xa9", b"a\x80b", b"\xed\xa0\x80", b"x" * 63 + b"\xff"],
)
def test_invalid_name_bytes(raw: bytes) -> None:
    assert not is_valid_name_bytes(raw)


@pytest.mark.parametrize("length", [1, 2, 32, 33, 63, 64])
def test_name_length_accepted(length: int) -> None:
    assert is_valid_topic_name("n" * length)


@pytest.mark.parametrize("length", [0, 65, 66, 100, 1000])
def test_name_length_rejected(length: int) -> None:
    assert not is_valid_topic_name("n" * length)
    assert not is_valid_name_bytes(b"n" * length)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("t#ephemeral", True),
        ("ch.1#ephemeral", True),
        ("#ephemeral", True),  # nsqd checks the suffix only (strings.HasSuffix)
        ("t", False),
        ("ephemeral", False),
        ("t#EPHEMERAL", False),
        ("t#ephemeral.", False),
        ("t_ephemeral", False),
    ],
)
def test_is_ephemeral(name: str, expected: bool) -> None:
    assert is_ephemeral(name) is expected


def test_ephemeral_suffix_constant() -> None:
    assert EPHEMERAL_SUFFIX == "#ephemeral"


# -- go_quote (Go's %q of a string) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        (b"", '""'),
        (b"bad!topic", '"bad!topic"'),
        (b"a b", '"a b"'),
        (b'a"b', '"a\\"b"'),
        (b"a\\b", '"a\\\\b"'),
        (b"'", '"\'"'),
        (b"\x07\x08\x0c\n\r\t\x0b", '"\\a\\b\\f\\n\\r\\t\\v"'),
        (b"\x00", '"\\x00"'),
        (b"\x01\x1b\x1f", '"\\x01\\x1b\\x1f"'),
        (b"\x7f", '"\\x7f"'),
        (b"~", '"~"'),
        # invalid UTF-8: each bad byte as \x.. in lowercase hex
        (b"\xff", '"\\xff"'),
        (b"a\xfe\xffb", '"a\\xfe\\xffb"'),
        (b"\xc3", '"\\xc3"'),  # truncated 2-byte sequence
        (b"\xe2\x82", '"\\xe2\\x82"'),  # truncated 3-byte sequence
        (b"\xed\xa0\x80", '"\\xed\\xa0\\x80"'),  # an encoded surrogate is invalid UTF-8
        (b"\xc0\xaf", '"\\xc0\\xaf"'),  # overlong encoding
        # valid UTF-8: printable characters kept as they are
        ("café".encode(), '"café"'),
        ("日本".encode(), '"日本"'),
        ("😀".encode(), '"😀"'),
        ("\ufffd".encode(), '"\ufffd"'),  # a real U+FFFD is printable, not an invalid byte
        # valid UTF-8, not printable: \u.... below U+10000, \U........ above
        ("\u0085".encode(), '"\\u0085"'),
        ("\u00a0".encode(), '"\\u00a0"'),
        ("\u00ad".encode(), '"\\u00ad"'),
        ("\u200b".encode(), '"\\u200b"'),
        ("\u2028".encode(), '"\\u2028"'),
        ("\u3000".encode(), '"\\u3000"'),
        ("\ue000".encode(), '"\\ue000"'),
        ("\ufeff".encode(), '"\\ufeff"'),
        ("\U000e0001".encode(), '"\\U000e0001"'),
        ("\U0010ffff".encode(), '"\\U0010ffff"'),
    ],
)
def test_go_quote(raw: bytes, quoted: str) -> None:
    assert go_quote(raw) == quoted


# -- parse_base10 (protocol.ByteToBase10) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"", 0),  # empty parses as 0 without error
        (b"0", 0),
        (b"7", 7),
        (b"123", 123),
        (b"000123", 123),
        (b"2500", 2500),
        (b"3600000", 3_600_000),
        (b"9223372036854775807", (1 << 63) - 1),
        (b"9223372036854775808", 1 << 63),
        (b"18446744073709551615", UINT64 - 1),
        # accumulation in a uint64 wraps silently
        (b"18446744073709551616", 0),
        (b"18446744073709551617", 1),
        (b"36893488147419103232", 0),
        (b"99999999999999999999", 99999999999999999999 % UINT64),
        (b"1" * 40, int("1" * 40) % UINT64),
    ],
)
def test_parse_base10(raw: bytes, value: int) -> None:
    assert parse_base10(raw) == value


@pytest.mark.parametrize(
    "raw",
    [
        b"-1",
        b"+1",
        b"-0",
        b" 1",
        b"1 ",
        b"1\r",
        b"1a",
        b"a1",
        b"abc",
        b"0x10",
        b"1.5",
        b"1e3",
        b"1_000",
        b"-",
        b"\x00",
        "١٢".encode(),  # Arabic-Indic digits are not ASCII digits
        "\uff11".encode(),  # fullwidth digit
        b"\xb2",  # superscript two in Latin-1
    ],
)
def test_parse_base10_rejects(raw: bytes) -> None:
    assert parse_base10(raw) is None


@pytest.mark.parametrize(
    ("value", "signed"),
    [
        (0, 0),
        (1, 1),
        ((1 << 63) - 1, (1 << 63) - 1),
        (1 << 63, -(1 << 63)),
        (UINT64 - 1, -1),
        (UINT64, 0),
        (UINT64 + 5, 5),
        (-1, -1),
    ],
)
def test_to_int64(value: int, signed: int) -> None:
    assert to_int64(value) == signed


@pytest.mark.parametrize(
    ("milliseconds", "nanoseconds"),
    [
        (0, 0),
        (1, 1_000_000),
        (3_600_000, 3_600_000_000_000),
        (9_223_372_036_854, 9_223_372_036_854_000_000),  # largest that does not overflow
        # time.Duration(ms) * time.Millisecond wraps as int64
        (9_223_372_036_855, 9_223_372_036_855_000_000 - UINT64),
        (UINT64 - 1, -1_000_000),  # uint64 max is int64 -1
        (18_446_744_073_710, 448_384),  # wraps all the way round to a small positive value
        ((1 << 63) - 1, ((((1 << 63) - 1) * 1_000_000 + (1 << 63)) % UINT64) - (1 << 63)),
    ],
)
def test_wrap_duration_ms(milliseconds: int, nanoseconds: int) -> None:
    assert wrap_duration_ms(milliseconds) == nanoseconds

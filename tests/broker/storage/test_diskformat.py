"""go-diskqueue's on-disk format, without files (the sans-IO half of the disk queue)."""

from __future__ import annotations

import struct

import pytest

from trinsq.broker.storage._diskformat import (
    disk_queue_file_name,
    format_metadata,
    impossible_positions,
    metadata_file_name,
    parse_metadata,
    split_records,
)


def frame(record: bytes) -> bytes:
    return struct.pack(">I", len(record)) + record


def test_file_names_are_go_diskqueues() -> None:
    assert disk_queue_file_name("/d", "t:c", 7) == "/d/t:c.diskqueue.000007.dat"
    assert metadata_file_name("/d", "t") == "/d/t.diskqueue.meta.dat"


def test_metadata_round_trips_in_go_diskqueues_text() -> None:
    text = format_metadata(12, (3, 440), (5, 96))
    assert text == "12\n3,440\n5,96\n"
    assert parse_metadata(text) == (12, 3, 440, 5, 96)
    # Go writes the final newline; a file without it still parses, a negative depth too.
    assert parse_metadata("-2\n0,0\n1,34") == (-2, 0, 0, 1, 34)


@pytest.mark.parametrize("text", ["", "1\n2\n3\n", "x\n0,0\n0,0\n", "1\n0;0\n0,0\n"])
def test_unparsable_metadata_is_none(text: str) -> None:
    assert parse_metadata(text) is None


@pytest.mark.parametrize(
    ("recorded", "problem"),
    [
        ((0, 0, 0, 0, 0), None),
        ((3, 1, 440, 1, 440), None),
        ((3, 1, 440, 2, 0), None),
        ((-7, 1, 0, 2, 0), None),  # a stale count, not a position
        ((2**63 - 1, 0, 2**63 - 1, 2**63 - 1, 2**63 - 1), None),
        ((2**63, 0, 0, 0, 0), "a number beyond int64"),
        ((-(2**63) - 1, 0, 0, 0, 0), "a number beyond int64"),
        ((0, 0, 10**22, 0, 0), "a number beyond int64"),
        ((0, -1, -7, -2, -9), "a negative position"),
        ((0, 0, 0, 0, -1), "a negative position"),
        ((0, 1, 0, 0, 68), "the read position is past the write position"),
        ((0, 0, 102, 0, 68), "the read position is past the write position"),
    ],
)
def test_impossible_positions(recorded: tuple[int, int, int, int, int], problem: str) -> None:
    assert impossible_positions(recorded) == problem


def test_split_records_takes_whole_records_up_to_the_limit() -> None:
    data = b"junk" + frame(b"a" * 3) + frame(b"bb") + frame(b"c")
    assert split_records(data, 4, len(data), 2, 1, 10) == ([b"aaa", b"bb"], 4 + 7 + 6)
    assert split_records(data, 4, len(data), 10, 1, 10) == ([b"aaa", b"bb", b"c"], len(data))
    assert split_records(data, 4, len(data), 0, 1, 10) == ([], 4)


def test_split_records_stops_at_a_partial_record_or_the_available_bytes() -> None:
    data = frame(b"aaa") + frame(b"bbbb")[:-1]
    assert split_records(data, 0, len(data), 10, 1, 10) == ([b"aaa"], 7)
    whole = frame(b"aaa") + frame(b"bbbb")
    assert split_records(whole, 0, 7 + 7, 10, 1, 10) == ([b"aaa"], 7)
    assert split_records(whole, 0, 3, 10, 1, 10) == ([], 0)


@pytest.mark.parametrize("length", [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x00\x00\x00\x0b"])
def test_split_records_stops_before_a_length_out_of_range(length: bytes) -> None:
    data = frame(b"ok") + length + b"x" * 11
    assert split_records(data, 0, len(data), 10, 1, 10) == ([b"ok"], 6)

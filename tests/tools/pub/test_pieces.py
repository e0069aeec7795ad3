"""to_nsq's splitting of stdin into messages, without I/O."""

from __future__ import annotations

import pytest

from trinsq.tools.pub._pieces import PieceSplitter


def test_pieces_come_out_whole_across_reads() -> None:
    splitter = PieceSplitter(b"\n")
    assert splitter.feed(b"one\ntw") == [b"one"]
    assert splitter.pending == 2
    assert splitter.feed(b"o") == []
    assert splitter.feed(b"\nthree\nfour") == [b"two", b"three"]
    assert splitter.finish() == b"four"
    assert splitter.finish() is None


def test_empty_pieces_are_skipped_as_to_nsq_does() -> None:
    splitter = PieceSplitter(b",")
    assert splitter.feed(b",,a,,b,") == [b"a", b"b"]
    assert splitter.finish() is None


def test_the_last_piece_without_a_delimiter_is_kept_whole() -> None:
    # to_nsq v1.3.0 would publish b"ab" here (it trims a delimiter that is not there)
    splitter = PieceSplitter(b"\n")
    assert splitter.feed(b"abc") == []
    assert splitter.finish() == b"abc"


def test_other_bytes_including_newlines_stay_in_the_message() -> None:
    splitter = PieceSplitter(b"\x00")
    assert splitter.feed(b"line one\nline two\x00\xff\r\n\x00") == [
        b"line one\nline two",
        b"\xff\r\n",
    ]


@pytest.mark.parametrize("delimiter", [b"", b"ab"])
def test_the_delimiter_is_one_byte(delimiter: bytes) -> None:
    with pytest.raises(ValueError, match="single byte"):
        PieceSplitter(delimiter)

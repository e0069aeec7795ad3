"""nsq_to_file's file handling with a fake clock and a temporary directory: names, rotation by
time, size and name, gzip members, the work directory and <REV> past every taken name."""

from __future__ import annotations

import gzip
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from trinsq.tools.tofile import FileLogger, ToFileOptions

TZ = timezone(timedelta(hours=1), "CET")
START = datetime(2026, 12, 2, 16, 5, 0, tzinfo=TZ)
HOUR = "2026-12-02_16"


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _logger(tmp_path: Path, **options: object) -> FileLogger:
    output = tmp_path / "out"
    settings = ToFileOptions(output_dir=str(output), max_in_flight=1000)
    for name, value in options.items():
        setattr(settings, name, value)
    return FileLogger(settings, "clicks", hostname="box.example.com", pid=42)


def _names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def test_default_names_append_and_follow_the_hour(tmp_path: Path) -> None:
    clock = FakeClock()
    logger = _logger(tmp_path)
    assert logger.handle_message(b"one", clock.now)  # the first file opens: a sync is due
    assert not logger.handle_message(b"two", clock.advance(60))
    assert logger.sync_records() == 2
    path = tmp_path / "out" / f"clicks.box.{HOUR}.log"
    assert path.read_bytes() == b"one\ntwo\n"  # synced: on disk while still open
    assert logger.handle_message(b"three", clock.advance(3600))  # a new hour, a new name
    assert logger.stop() == 1
    assert _names(tmp_path / "out") == [f"clicks.box.{HOUR}.log", "clicks.box.2026-12-02_17.log"]
    # no <REV>, no exclusive open: a later run appends to the same file
    again = _logger(tmp_path)
    again.handle_message(b"four", START)
    again.stop()
    assert path.read_bytes() == b"one\ntwo\nfour\n"


def test_rotate_size_counts_bytes_written_and_bumps_rev(tmp_path: Path) -> None:
    logger = _logger(tmp_path, rotate_size=10)
    for body in (b"aaaa", b"bbbb", b"cccc", b"dd"):  # 5 bytes each with the newline
        logger.handle_message(body, START)
    logger.stop()
    out = tmp_path / "out"
    # rotation is checked before a write: the file passes 10 bytes, then the next one rotates
    assert _names(out) == [f"clicks.box-000000.{HOUR}.log", f"clicks.box-000001.{HOUR}.log"]
    assert (out / f"clicks.box-000000.{HOUR}.log").read_bytes() == b"aaaa\nbbbb\ncccc\n"
    assert (out / f"clicks.box-000001.{HOUR}.log").read_bytes() == b"dd\n"


def test_an_appended_file_already_too_big_is_skipped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / f"clicks.box-000000.{HOUR}.log").write_bytes(b"x" * 11)
    logger = _logger(tmp_path, rotate_size=10)
    logger.handle_message(b"new", START)
    logger.stop()
    assert (out / f"clicks.box-000000.{HOUR}.log").read_bytes() == b"x" * 11
    assert (out / f"clicks.box-000001.{HOUR}.log").read_bytes() == b"new\n"


def test_rotate_interval_opens_exclusively_and_passes_existing_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / f"clicks.box-000000.{HOUR}.log").write_bytes(b"earlier run\n")
    clock = FakeClock()
    logger = _logger(tmp_path, rotate_interval=60.0)
    logger.handle_message(b"a", clock.now)
    logger.handle_message(b"b", clock.advance(60))  # not more than the interval yet
    assert logger.tick(clock.advance(0.5)) == 2  # past it: rotates, then syncs
    logger.handle_message(b"c", clock.advance(1))
    logger.stop()
    assert (out / f"clicks.box-000000.{HOUR}.log").read_bytes() == b"earlier run\n"
    assert (out / f"clicks.box-000001.{HOUR}.log").read_bytes() == b"a\nb\n"
    assert (out / f"clicks.box-000002.{HOUR}.log").read_bytes() == b"c\n"


def test_a_new_name_starts_rev_from_zero(tmp_path: Path) -> None:
    clock = FakeClock()
    logger = _logger(tmp_path, rotate_size=1)
    logger.handle_message(b"a", clock.now)
    logger.handle_message(b"b", clock.now)  # rev 1
    logger.handle_message(b"c", clock.advance(3600))  # next hour: rev 0 again
    logger.stop()
    assert _names(tmp_path / "out") == [
        f"clicks.box-000000.{HOUR}.log",
        "clicks.box-000000.2026-12-02_17.log",
        f"clicks.box-000001.{HOUR}.log",
    ]


def _members(data: bytes) -> list[bytes]:
    """Each gzip member's content, in order."""
    members = []
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        members.append(decompressor.decompress(data))
        assert decompressor.eof
        data = decompressor.unused_data
    return members


def test_gzip_ends_a_member_at_each_sync(tmp_path: Path) -> None:
    logger = _logger(tmp_path, gzip=True, gzip_level=9)
    logger.handle_message(b"one", START)
    logger.handle_message(b"two", START)
    assert logger.sync_records() == 2
    path = tmp_path / "out" / f"clicks.box-000000.{HOUR}.log.gz"
    assert gzip.decompress(path.read_bytes()) == b"one\ntwo\n"  # readable while still open
    logger.handle_message(b"three", START)
    assert logger.filesize == len(b"one\ntwo\nthree\n")  # uncompressed, as nsq_to_file counts
    logger.stop()
    assert _members(path.read_bytes()) == [b"one\ntwo\n", b"three\n", b""]
    assert gzip.decompress(path.read_bytes()) == b"one\ntwo\nthree\n"


def test_work_dir_holds_the_open_file_and_the_move_never_overwrites(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    out.mkdir()
    (out / f"clicks.box-000000.{HOUR}.log").write_bytes(b"taken before the open\n")
    logger = _logger(tmp_path, work_dir=str(work))
    logger.handle_message(b"a", START)
    # the name was looked up in the output directory first: rev 1
    assert logger.path == str(work / f"clicks.box-000001.{HOUR}.log")
    assert _names(work) == [f"clicks.box-000001.{HOUR}.log"]
    # taken while the file was open: the move goes to the next free rev
    (out / f"clicks.box-000001.{HOUR}.log").write_bytes(b"taken while open\n")
    (out / f"clicks.box-000002.{HOUR}.log").write_bytes(b"taken too\n")
    assert logger.stop() == 1
    assert _names(work) == []
    assert (out / f"clicks.box-000000.{HOUR}.log").read_bytes() == b"taken before the open\n"
    assert (out / f"clicks.box-000001.{HOUR}.log").read_bytes() == b"taken while open\n"
    assert (out / f"clicks.box-000002.{HOUR}.log").read_bytes() == b"taken too\n"
    assert (out / f"clicks.box-000003.{HOUR}.log").read_bytes() == b"a\n"
    # after a stop (SIGHUP) the next message opens a new file, not the moved one
    logger.handle_message(b"b", START)
    logger.stop()
    assert (out / f"clicks.box-000004.{HOUR}.log").read_bytes() == b"b\n"


def test_rotation_moves_the_finished_file(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    logger = _logger(tmp_path, work_dir=str(work), rotate_size=1)
    logger.handle_message(b"a", START)
    logger.handle_message(b"b", START)
    assert _names(out) == [f"clicks.box-000000.{HOUR}.log"]
    assert _names(work) == [f"clicks.box-000001.{HOUR}.log"]
    logger.stop()
    assert _names(work) == []
    assert _names(out) == [f"clicks.box-000000.{HOUR}.log", f"clicks.box-000001.{HOUR}.log"]


def test_skip_empty_files_closes_at_the_tick_instead_of_opening(tmp_path: Path) -> None:
    clock = FakeClock()
    logger = _logger(tmp_path, rotate_interval=10.0, skip_empty_files=True)
    logger.handle_message(b"a", clock.now)
    assert logger.tick(clock.advance(11)) == 1
    assert logger.path is None
    assert logger.tick(clock.advance(11)) == 0  # nothing to write: still no file
    assert _names(tmp_path / "out") == [f"clicks.box-000000.{HOUR}.log"]


def test_a_sync_is_due_every_max_in_flight_messages(tmp_path: Path) -> None:
    logger = _logger(tmp_path, max_in_flight=3)
    assert logger.handle_message(b"1", START)  # opened a file
    assert not logger.handle_message(b"2", START)
    assert logger.handle_message(b"3", START)
    assert logger.sync_records() == 3
    assert logger.sync_records() == 0
    logger.stop()


def test_directories_in_the_name_are_made(tmp_path: Path) -> None:
    logger = _logger(tmp_path, filename_format="<TOPIC>/<DATETIME>/<HOST><REV>.log", gzip=False)
    logger.handle_message(b"a", START)
    logger.stop()
    assert (tmp_path / "out" / "clicks" / HOUR / "box.log").read_bytes() == b"a\n"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "--nsqd-tcp-address or --lookupd-http-address required."),
        ({"channel": ""}, "--channel is required"),
        ({"nsqd_tcp_address": ["a:1"], "lookupd_http_address": ["b:2"]},
         "use --nsqd-tcp-address or --lookupd-http-address not both"),
        ({"nsqd_tcp_address": ["a:1"], "gzip_level": 10},
         "invalid --gzip-level value (10), should be 1-9"),
        ({"nsqd_tcp_address": ["a:1"]}, "--topic or --topic-pattern required"),
        ({"nsqd_tcp_address": ["a:1"], "topic_pattern": "x"},
         "--lookupd-http-address must be specified when no --topic specified"),
        ({"nsqd_tcp_address": ["a:1"], "topic": ["t"]}, None),
    ],
)  # fmt: skip
def test_options_refuse_what_nsq_to_file_refuses(
    options: dict[str, object], problem: str | None
) -> None:
    settings = ToFileOptions()
    for name, value in options.items():
        setattr(settings, name, value)
    assert settings.problem() == problem
    assert settings.work_directory == "/tmp"

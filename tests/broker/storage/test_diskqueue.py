"""The disk queue against go-diskqueue v1.1.0's on-disk format and behaviour.

Expected bytes are written by hand from the format (reference/nsqd.md §4): records are
``[int32 BE length][payload]`` back to back, the metadata is
``"<depth>\\n<readFileNum>,<readPos>\\n<writeFileNum>,<writePos>\\n"``.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
import struct
import threading
from collections import deque
from pathlib import Path

import pytest

from trinsq.broker.storage._diskqueue import DiskQueue, DiskQueueError, disk_queue_file_name

NAME = "t:c"


def frame(record: bytes) -> bytes:
    return struct.pack(">I", len(record)) + record


def dat(directory: Path, number: int, name: str = NAME) -> Path:
    return Path(disk_queue_file_name(str(directory), name, number))


def meta(directory: Path, name: str = NAME) -> Path:
    return directory / f"{name}.diskqueue.meta.dat"


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def small(directory: Path, *, sync_every: int = 2500) -> DiskQueue:
    """A queue with 30-byte records framed to 34 bytes: two per 100-byte file."""
    return DiskQueue(
        NAME, str(directory), max_bytes_per_file=100, min_msg_size=1, sync_every=sync_every
    )


def rec(i: int) -> bytes:
    return b"%02d" % i + b"." * 28


def drain(queue: DiskQueue) -> list[bytes]:
    out = []
    while (record := queue.pop()) is not None:
        out.append(record)
    return out


def drain_batched(queue: DiskQueue, batch: int) -> list[bytes]:
    out = []
    while (record := queue.pop()) is not None:
        out.append(record)
        out.extend(queue.pop_buffered(batch))
    return out


# --- the on-disk format ------------------------------------------------------------------


def test_golden_files_after_puts_then_after_a_pop(tmp_path: Path) -> None:
    queue = DiskQueue("topic", str(tmp_path))
    queue.put(b"a" * 26)
    queue.put(b"x" * 30)
    queue.close()
    data = b"\x00\x00\x00\x1a" + b"a" * 26 + b"\x00\x00\x00\x1e" + b"x" * 30
    assert files(tmp_path) == ["topic.diskqueue.000000.dat", "topic.diskqueue.meta.dat"]
    assert (tmp_path / "topic.diskqueue.000000.dat").read_bytes() == data
    assert (tmp_path / "topic.diskqueue.meta.dat").read_bytes() == b"2\n0,0\n0,64\n"

    queue = DiskQueue("topic", str(tmp_path))
    assert queue.depth == 2
    assert queue.pop() == b"a" * 26
    queue.close()
    assert (tmp_path / "topic.diskqueue.000000.dat").read_bytes() == data
    assert (tmp_path / "topic.diskqueue.meta.dat").read_bytes() == b"1\n0,30\n0,64\n"


def test_fresh_queue_closes_to_zero_metadata(tmp_path: Path) -> None:
    DiskQueue("topic", str(tmp_path)).close()
    assert files(tmp_path) == ["topic.diskqueue.meta.dat"]
    assert meta(tmp_path, "topic").read_bytes() == b"0\n0,0\n0,0\n"


def test_reads_a_directory_written_by_go_nsqd(tmp_path: Path) -> None:
    # A message as nsqd v1.3.0 serialises it: ts, attempts, id, body "a" (27 bytes).
    message = bytes.fromhex("18ea056b45df3a9f0000") + b"18a2f26c83669000" + b"a"
    consumed = b"\x00\x00\x00\x1b" + message
    second = bytes.fromhex("18ea056b45df3a9f0001") + b"18a2f26c83669001" + b"bb"
    dat(tmp_path, 3).write_bytes(consumed + b"\x00\x00\x00\x1b" + message)
    dat(tmp_path, 4).write_bytes(b"\x00\x00\x00\x1c" + second)
    meta(tmp_path).write_bytes(b"2\n3,31\n4,32\n")

    queue = DiskQueue(NAME, str(tmp_path))
    assert queue.depth == 2
    assert queue.pop() == message
    assert not dat(tmp_path, 3).exists()
    assert queue.pop() == second
    assert queue.pop() is None
    assert queue.depth == 0
    queue.put(message)
    queue.close()
    assert dat(tmp_path, 4).read_bytes() == b"\x00\x00\x00\x1c" + second + frame(message)
    assert meta(tmp_path).read_bytes() == b"1\n4,32\n4,63\n"
    assert queue.bad_files == 0


def test_rejects_record_sizes_with_go_wording(tmp_path: Path) -> None:
    queue = DiskQueue("topic", str(tmp_path), max_msg_size=40)
    with pytest.raises(DiskQueueError, match=r"^invalid message write size \(25\) "):
        queue.put(b"x" * 25)
    with pytest.raises(DiskQueueError, match=r"minMsgSize=26 maxMsgSize=40$"):
        queue.put(b"x" * 41)
    queue.put(b"x" * 40)
    assert queue.depth == 1
    queue.close()


# --- files --------------------------------------------------------------------------------


def test_rollover_at_max_bytes_per_file(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(5):
        queue.put(rec(i))
    queue.flush()
    assert dat(tmp_path, 0).read_bytes() == frame(rec(0)) + frame(rec(1))
    assert dat(tmp_path, 1).read_bytes() == frame(rec(2)) + frame(rec(3))
    assert dat(tmp_path, 2).read_bytes() == frame(rec(4))
    assert queue.needs_sync()
    queue.close()
    assert meta(tmp_path).read_bytes() == b"5\n0,0\n2,34\n"


def test_write_exactly_at_the_limit_stays_in_the_file(tmp_path: Path) -> None:
    queue = DiskQueue(NAME, str(tmp_path), max_bytes_per_file=102, min_msg_size=1)
    for i in range(4):
        queue.put(rec(i))
    queue.close()
    assert dat(tmp_path, 0).stat().st_size == 102
    assert dat(tmp_path, 1).read_bytes() == frame(rec(3))


def test_record_larger_than_the_limit_gets_its_own_file(tmp_path: Path) -> None:
    queue = small(tmp_path)
    big = b"B" * 250
    queue.put(big)  # at position 0 a file takes any record
    queue.put(rec(1))
    queue.put(big)
    queue.put(rec(2))
    queue.flush()
    assert dat(tmp_path, 0).read_bytes() == frame(big)
    assert dat(tmp_path, 1).read_bytes() == frame(rec(1))
    assert dat(tmp_path, 2).read_bytes() == frame(big)
    assert dat(tmp_path, 3).read_bytes() == frame(rec(2))
    assert drain(queue) == [big, rec(1), big, rec(2)]
    queue.close()


def test_reads_across_files_and_deletes_finished_ones(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(5):
        queue.put(rec(i))
    assert queue.pop() == rec(0)
    assert dat(tmp_path, 0).exists()
    # Leaving a file as soon as its last record is popped keeps Go's reader off its end.
    assert queue.pop() == rec(1)
    assert not dat(tmp_path, 0).exists()
    assert [queue.pop(), queue.pop()] == [rec(2), rec(3)]
    assert not dat(tmp_path, 1).exists()
    assert queue.depth == 1
    queue.close()
    assert meta(tmp_path).read_bytes() == b"1\n2,0\n2,34\n"
    queue = small(tmp_path)
    assert drain(queue) == [rec(4)]
    queue.close()
    assert meta(tmp_path).read_bytes() == b"0\n2,34\n2,34\n"


def test_file_size_limit_may_change_between_runs(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(3):
        queue.put(rec(i))
    queue.close()
    queue = DiskQueue(NAME, str(tmp_path), max_bytes_per_file=1000, min_msg_size=1)
    for i in range(3, 8):
        queue.put(rec(i))
    assert drain(queue) == [rec(i) for i in range(8)]
    queue.close()
    assert queue.bad_files == 0
    assert not list(tmp_path.glob("*.bad"))


def test_reads_in_large_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = DiskQueue(NAME, str(tmp_path))
    for i in range(200):
        queue.put(rec(i))
    queue.flush()
    calls = []
    real_pread = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        calls.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", pread)
    assert drain(queue) == [rec(i) for i in range(200)]
    assert len(calls) == 1
    queue.close()


def test_pop_sees_pending_puts_in_order(tmp_path: Path) -> None:
    queue = small(tmp_path)
    queue.put(rec(0))
    queue.flush()
    queue.put(rec(1))
    queue.put(rec(2))
    assert drain(queue) == [rec(0), rec(1), rec(2)]
    assert queue.depth == 0
    queue.close()


# --- restarts -----------------------------------------------------------------------------


def test_reopen_after_close_resumes_where_the_reader_stopped(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(5):
        queue.put(rec(i))
    assert [queue.pop(), queue.pop(), queue.pop()] == [rec(0), rec(1), rec(2)]
    queue.close()
    queue = small(tmp_path)
    assert queue.depth == 2
    queue.put(rec(5))
    assert drain(queue) == [rec(3), rec(4), rec(5)]
    queue.close()


def test_reopen_without_close_resumes_at_the_last_sync(tmp_path: Path) -> None:
    queue = DiskQueue(NAME, str(tmp_path), min_msg_size=1)
    for i in range(4):
        queue.put(rec(i))
    assert queue.pop() == rec(0)
    queue.prepare_sync().run()
    assert queue.pop() == rec(1)  # after the sync: redelivered after a crash
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path, crashed, ignore=shutil.ignore_patterns("crashed"))
    queue.close()

    queue = DiskQueue(NAME, str(crashed), min_msg_size=1)
    assert queue.depth == 3
    assert drain(queue) == [rec(1), rec(2), rec(3)]
    assert queue.bad_files == 0
    queue.close()


def test_unclean_shutdown_writes_a_new_file_and_salvages_the_old(tmp_path: Path) -> None:
    queue = DiskQueue(NAME, str(tmp_path), min_msg_size=1)
    queue.put(rec(0))
    queue.prepare_sync().run()
    queue.put(rec(1))
    queue.put(rec(2))
    queue.flush()  # written but the metadata still says one record
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path, crashed, ignore=shutil.ignore_patterns("crashed"))
    queue.close()
    assert meta(crashed).read_bytes() == b"1\n0,0\n0,34\n"

    queue = DiskQueue(NAME, str(crashed), min_msg_size=1)
    queue.put(rec(3))
    queue.flush()
    assert dat(crashed, 1).read_bytes() == frame(rec(3))
    assert dat(crashed, 0).stat().st_size == 3 * 34
    assert queue.depth == 2
    assert drain(queue) == [rec(0), rec(1), rec(2), rec(3)]
    assert queue.depth == 0  # the stale count is repaired once the reader catches up
    assert queue.bad_files == 0
    queue.close()
    assert meta(crashed).read_bytes() == b"0\n1,34\n1,34\n"


def test_data_without_metadata_is_salvaged(tmp_path: Path) -> None:
    dat(tmp_path, 0).write_bytes(frame(rec(0)) + frame(rec(1)))
    queue = small(tmp_path)
    queue.put(rec(2))
    assert drain(queue) == [rec(0), rec(1), rec(2)]
    assert queue.depth == 0
    queue.close()


# --- corruption ---------------------------------------------------------------------------


def test_truncated_file_is_set_aside_and_later_data_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = small(tmp_path)
    for i in range(6):
        queue.put(rec(i))
    queue.flush()
    os.truncate(dat(tmp_path, 1), 34 + 10)
    with caplog.at_level(logging.ERROR, logger="trinsq.broker"):
        assert drain(queue) == [rec(0), rec(1), rec(2), rec(4), rec(5)]
    assert queue.bad_files == 1
    assert queue.depth == 0
    assert files(tmp_path) == ["t:c.diskqueue.000001.dat.bad", "t:c.diskqueue.000002.dat"]
    assert "t:c.diskqueue.000001.dat" in caplog.text
    assert "short read" in caplog.text
    queue.close()


@pytest.mark.parametrize("length", [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\x00\x00\x00"])
def test_garbled_length_sets_the_file_aside(tmp_path: Path, length: bytes) -> None:
    queue = small(tmp_path)
    for i in range(4):
        queue.put(rec(i))
    queue.flush()
    with dat(tmp_path, 0).open("r+b") as f:
        f.seek(34)
        f.write(length)
    assert drain(queue) == [rec(0), rec(2), rec(3)]
    assert queue.bad_files == 1
    assert dat(tmp_path, 0).with_name(dat(tmp_path, 0).name + ".bad").exists()
    queue.close()


def test_missing_file_is_skipped(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(6):
        queue.put(rec(i))
    queue.flush()
    dat(tmp_path, 1).unlink()
    assert drain(queue) == [rec(0), rec(1), rec(4), rec(5)]
    assert queue.bad_files == 1
    assert not list(tmp_path.glob("*.bad"))
    queue.close()


def test_corrupt_write_file_moves_the_writer_to_a_new_file(tmp_path: Path) -> None:
    queue = small(tmp_path)
    queue.put(rec(0))
    queue.put(rec(1))
    queue.flush()
    os.truncate(dat(tmp_path, 0), 34 + 2)
    assert queue.pop() == rec(0)
    assert queue.pop() is None
    assert queue.bad_files == 1
    assert queue.depth == 0
    queue.put(rec(2))
    assert drain(queue) == [rec(2)]
    queue.close()
    assert meta(tmp_path).read_bytes() == b"0\n1,34\n1,34\n"
    assert files(tmp_path) == [
        "t:c.diskqueue.000000.dat.bad",
        "t:c.diskqueue.000001.dat",
        "t:c.diskqueue.meta.dat",
    ]


def test_reader_on_the_write_file_survives_the_writer_rolling(tmp_path: Path) -> None:
    # go-diskqueue #42: v1.1.0 renames this perfectly good file .bad.
    queue = small(tmp_path)
    queue.put(rec(0))
    queue.put(rec(1))
    assert drain(queue) == [rec(0), rec(1)]
    queue.put(rec(2))  # rolls to file 1 while the reader sits at the end of file 0
    queue.put(rec(3))
    queue.prepare_sync().run()
    # Not "0,68": go-diskqueue v1.1.0 would take the end of file 0 for corruption.
    assert meta(tmp_path).read_bytes() == b"2\n1,0\n1,68\n"
    assert queue.pop() == rec(2)
    assert not dat(tmp_path, 0).exists()
    queue.put(rec(4))  # rolls to file 2 while the reader is in the middle of file 1
    assert drain(queue) == [rec(3), rec(4)]
    assert not dat(tmp_path, 1).exists()
    assert queue.bad_files == 0
    assert not list(tmp_path.glob("*.bad"))
    assert queue.depth == 0
    queue.close()


def test_go_metadata_at_the_end_of_a_finished_file_is_not_corruption(tmp_path: Path) -> None:
    dat(tmp_path, 0).write_bytes(frame(rec(0)) + frame(rec(1)))
    dat(tmp_path, 1).write_bytes(frame(rec(2)))
    meta(tmp_path).write_bytes(b"1\n0,68\n1,34\n")
    queue = small(tmp_path)
    assert drain(queue) == [rec(2)]
    assert queue.bad_files == 0
    assert files(tmp_path) == ["t:c.diskqueue.000001.dat", "t:c.diskqueue.meta.dat"]
    queue.close()


IMPOSSIBLE = {
    "negative": (b"-3\n-1,-7\n-2,-9\n", "a negative position"),
    "23-digit-read-position": (b"2\n0,12345678901234567890123\n0,68\n", "a number beyond int64"),
    "23-digit-write-position": (b"2\n0,0\n0,99999999999999999999999\n", "a number beyond int64"),
    "23-digit-depth": (b"99999999999999999999999\n0,0\n0,68\n", "a number beyond int64"),
    "read-file-after-write-file": (
        b"2\n1,0\n0,68\n",
        "the read position is past the write position",
    ),
    "read-position-after-write-position": (
        b"0\n0,102\n0,68\n",
        "the read position is past the write position",
    ),
    "read-position-past-the-read-file": (
        b"2\n0,102\n1,0\n",
        "the read position is past the end of {dat0}",
    ),
}


@pytest.mark.parametrize("case", list(IMPOSSIBLE))
def test_impossible_metadata_is_read_like_garbage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    # Every record on disk is served, none set aside; writing goes on in a new file.
    metadata, problem = IMPOSSIBLE[case]
    dat(tmp_path, 0).write_bytes(frame(rec(0)) + frame(rec(1)))
    meta(tmp_path).write_bytes(metadata)
    with caplog.at_level(logging.ERROR, logger="trinsq.broker"):
        queue = small(tmp_path)
    assert caplog.messages == [
        f"DISKQUEUE(t:c) failed to retrieveMetaData - {meta(tmp_path)} is not valid metadata "
        f"({problem.format(dat0=dat(tmp_path, 0))})"
    ]
    assert queue.depth == 2
    queue.put(rec(2))
    assert drain(queue) == [rec(0), rec(1), rec(2)]
    assert (queue.depth, queue.bad_files) == (0, 0)
    queue.close()
    assert meta(tmp_path).read_bytes() == b"0\n1,34\n1,34\n"
    assert files(tmp_path) == ["t:c.diskqueue.000001.dat", "t:c.diskqueue.meta.dat"]


def test_without_readable_metadata_every_data_file_is_read(tmp_path: Path) -> None:
    # Not only file 0: whatever files are there, from the lowest number on, gaps and all.
    for number, records in [(3, [rec(0), rec(1)]), (4, [rec(2)]), (6, [rec(3)])]:
        dat(tmp_path, number).write_bytes(b"".join(frame(r) for r in records))
    dat(tmp_path, 2, name="t:c2").write_bytes(frame(rec(9)))  # another queue's
    meta(tmp_path).write_bytes(b"not\nmetadata\n")
    queue = small(tmp_path)
    assert queue.depth == 4
    queue.put(rec(4))
    assert drain(queue) == [rec(0), rec(1), rec(2), rec(3), rec(4)]
    assert queue.bad_files == 1  # file 5 is missing
    queue.close()
    assert files(tmp_path) == [
        "t:c.diskqueue.000007.dat",
        "t:c.diskqueue.meta.dat",
        "t:c2.diskqueue.000002.dat",
    ]


def test_a_negative_depth_is_counted_again(tmp_path: Path) -> None:
    # Positions are possible: only the count is off (both Go and trinsq save one that went
    # below zero while salvaging), so the records after the read position are counted.
    dat(tmp_path, 0).write_bytes(frame(rec(0)) + frame(rec(1)))
    dat(tmp_path, 1).write_bytes(frame(rec(2)) + frame(rec(3)))
    meta(tmp_path).write_bytes(b"-5\n0,34\n1,34\n")
    queue = small(tmp_path)
    # rec(1), rec(2), and rec(3): written after the last sync, salvaged as ever
    assert queue.depth == 3
    assert drain(queue) == [rec(1), rec(2), rec(3)]
    assert queue.depth == 0
    queue.close()


def test_a_gap_of_missing_files_is_crossed_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dat(tmp_path, 0).write_bytes(frame(rec(0)) + frame(rec(1)))
    meta(tmp_path).write_bytes(b"2\n0,0\n999999999999999999,0\n")
    real_open = os.open
    opened = []

    def counting_open(path: str, flags: int, mode: int = 0o777) -> int:
        opened.append(path)
        assert len(opened) < 100, "a lookup per missing file"
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", counting_open)
    queue = small(tmp_path)
    assert drain(queue) == [rec(0), rec(1)]
    queue.put(rec(2))
    assert drain(queue) == [rec(2)]
    assert queue.bad_files == 1
    queue.empty()
    queue.close()
    assert files(tmp_path) == ["t:c.diskqueue.meta.dat"]


# --- write and read errors ----------------------------------------------------------------


def failing_write(monkeypatch: pytest.MonkeyPatch, *, after: int) -> None:
    """os.write writes ``after`` bytes of the first call, then fails with ENOSPC."""
    real_write = os.write
    written = 0

    def write(fd: int, data: memoryview) -> int:
        nonlocal written
        if written >= after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, data[: after - written])
        written += n
        return n

    monkeypatch.setattr(os, "write", write)


def test_failed_flush_is_taken_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = small(tmp_path)
    queue.put(rec(0))
    queue.flush()
    queue.put(rec(1))
    queue.put(rec(2))  # would roll to file 1
    with monkeypatch.context() as patch:
        failing_write(patch, after=20)
        with pytest.raises(OSError, match="No space") as raised:
            queue.flush()
    assert raised.value.errno == errno.ENOSPC
    assert dat(tmp_path, 0).read_bytes() == frame(rec(0))
    assert queue.depth == 1
    assert files(tmp_path) == ["t:c.diskqueue.000000.dat"]

    queue.put(rec(3))
    queue.flush()
    assert dat(tmp_path, 0).read_bytes() == frame(rec(0)) + frame(rec(3))
    assert drain(queue) == [rec(0), rec(3)]
    assert queue.bad_files == 0
    queue.close()
    assert meta(tmp_path).read_bytes() == b"0\n0,68\n0,68\n"


def test_failed_flush_in_a_new_file_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = small(tmp_path)
    queue.put(rec(0))
    queue.flush()
    queue.put(rec(1))
    queue.put(rec(2))
    queue.put(rec(3))
    with monkeypatch.context() as patch:
        failing_write(patch, after=34 + 5)  # file 0 completes, file 1 fails part way
        with pytest.raises(OSError, match="No space"):
            queue.flush()
    assert files(tmp_path) == ["t:c.diskqueue.000000.dat"]
    assert dat(tmp_path, 0).read_bytes() == frame(rec(0))
    assert queue.depth == 1
    queue.close()
    assert meta(tmp_path).read_bytes() == b"1\n0,0\n0,34\n"
    queue = small(tmp_path)
    assert drain(queue) == [rec(0)]
    queue.close()


def test_transient_open_error_is_raised_without_setting_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = small(tmp_path)
    for i in range(3):
        queue.put(rec(i))
    queue.close()
    queue = small(tmp_path)
    real_open = os.open

    def open_(path: str, flags: int, mode: int = 0o777) -> int:
        if flags == os.O_RDONLY and "diskqueue" in str(path):
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return real_open(path, flags, mode)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", open_)
        with pytest.raises(OSError, match="open files") as raised:
            queue.pop()
    assert raised.value.errno == errno.EMFILE
    assert queue.depth == 3
    assert drain(queue) == [rec(0), rec(1), rec(2)]
    assert queue.bad_files == 0
    assert not list(tmp_path.glob("*.bad"))
    queue.close()


def test_transient_read_error_mid_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = small(tmp_path)
    for i in range(4):
        queue.put(rec(i))
    assert queue.pop() == rec(0)
    assert queue.pop() == rec(1)

    def pread(fd: int, n: int, offset: int) -> bytes:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with monkeypatch.context() as patch:
        patch.setattr(os, "pread", pread)
        with pytest.raises(OSError, match="Input/output"):
            queue.pop()
    assert drain(queue) == [rec(2), rec(3)]
    assert queue.bad_files == 0
    queue.close()


# --- sync, empty, delete, close -----------------------------------------------------------


def test_needs_sync_and_dirty(tmp_path: Path) -> None:
    queue = small(tmp_path, sync_every=3)
    assert not queue.dirty()
    queue.put(rec(0))
    assert queue.dirty()
    assert not queue.needs_sync()
    queue.put(rec(1))
    assert queue.pop() == rec(0)
    assert queue.needs_sync()
    queue.prepare_sync().run()
    assert not queue.dirty()
    assert not queue.needs_sync()
    queue.put(rec(2))
    queue.flush()  # the file switch asks for a sync
    assert queue.needs_sync()
    queue.prepare_sync().run()
    assert queue.pop() == rec(1)  # leaving file 0 asks for one too
    assert queue.needs_sync()
    queue.close()


def test_sync_job_in_a_thread_while_the_queue_is_used(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(3):
        queue.put(rec(i))
    job = queue.prepare_sync()
    thread = threading.Thread(target=job.run)
    thread.start()
    for i in range(3, 20):
        queue.put(rec(i))
        queue.flush()
    popped = [queue.pop() for _ in range(4)]
    thread.join()
    assert meta(tmp_path).read_bytes() == b"3\n0,0\n1,34\n"
    assert popped == [rec(i) for i in range(4)]
    queue.close()
    assert meta(tmp_path).read_bytes() == b"16\n2,0\n9,68\n"
    assert not list(tmp_path.glob("*.tmp"))


def test_older_sync_job_never_overwrites_newer_metadata(tmp_path: Path) -> None:
    queue = small(tmp_path)
    queue.put(rec(0))
    first = queue.prepare_sync()
    queue.put(rec(1))
    second = queue.prepare_sync()
    second.run()
    first.run()
    assert meta(tmp_path).read_bytes() == b"2\n0,0\n0,68\n"
    queue.close()
    assert not list(tmp_path.glob("*.tmp"))


def test_empty_removes_everything(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(5):
        queue.put(rec(i))
    assert queue.pop() == rec(0)
    queue.prepare_sync().run()
    stale = queue.prepare_sync()
    queue.put(rec(9))  # pending: dropped as well
    queue.empty()
    stale.run()  # a sync still running must not bring the metadata back
    assert files(tmp_path) == []
    assert queue.depth == 0
    assert not queue.dirty()
    assert queue.pop() is None
    queue.put(rec(5))
    assert drain(queue) == [rec(5)]
    queue.put(rec(6))
    queue.close()
    assert meta(tmp_path).read_bytes() == b"1\n3,34\n3,68\n"
    queue = small(tmp_path)
    assert drain(queue) == [rec(6)]
    queue.close()


def test_delete_removes_everything_and_closes(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(3):
        queue.put(rec(i))
    queue.prepare_sync().run()
    queue.delete()
    assert files(tmp_path) == []
    with pytest.raises(DiskQueueError, match=r"^exiting$"):
        queue.put(rec(0))
    queue.close()
    assert files(tmp_path) == []


def test_closed_queue_refuses_work(tmp_path: Path) -> None:
    queue = small(tmp_path)
    queue.close()
    queue.close()
    for call in (lambda: queue.put(rec(0)), queue.pop, queue.flush, queue.empty):
        with pytest.raises(DiskQueueError, match=r"^exiting$"):
            call()


@pytest.mark.parametrize("batches", [False, True])
def test_random_operations_match_a_fifo(tmp_path: Path, batches: bool) -> None:
    rng = random.Random(42)
    model: deque[bytes] = deque()

    def new() -> DiskQueue:
        return DiskQueue(NAME, str(tmp_path), max_bytes_per_file=300, min_msg_size=1)

    queue = new()
    for step in range(3000):
        op = rng.random()
        if op < 0.45:
            record = bytes([step % 251]) * rng.choice([1, 30, 120, 400])
            queue.put(record)
            model.append(record)
        elif op < 0.65 or (op < 0.85 and not batches):
            assert queue.pop() == (model.popleft() if model else None)
        elif op < 0.85:
            limit = rng.choice([1, 3, 50])
            batch = queue.pop_buffered(limit)
            assert len(batch) <= limit
            assert batch == [model.popleft() for _ in batch]
        elif op < 0.93:
            queue.flush()
        elif op < 0.97:
            queue.prepare_sync().run()
        else:
            queue.close()
            queue = new()
        assert queue.depth == len(model)
    assert (drain_batched(queue, 5) if batches else drain(queue)) == list(model)
    assert queue.bad_files == 0
    queue.close()
    assert not list(tmp_path.glob("*.bad"))
    assert len(list(tmp_path.glob("*.dat"))) <= 2


# -- batches from the read-ahead ------------------------------------------------------------


def test_pop_buffered_does_no_reading_of_its_own(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(4):
        queue.put(rec(i))
    queue.flush()
    assert queue.pop_buffered(10) == []  # nothing read ahead yet
    assert queue.depth == 4
    assert queue.pop() == rec(0)
    # The rest of file 0 is read ahead; file 1 is not.
    assert queue.pop_buffered(10) == [rec(1)]
    assert queue.pop_buffered(10) == []
    assert queue.pop() == rec(2)
    assert queue.pop_buffered(0) == []
    assert queue.pop_buffered(10) == [rec(3)]
    assert queue.depth == 0
    queue.close()


def test_pop_buffered_leaves_the_same_files_and_metadata_as_pop(tmp_path: Path) -> None:
    one, batched = tmp_path / "one", tmp_path / "batched"
    for directory in (one, batched):
        directory.mkdir()
        queue = DiskQueue(NAME, str(directory), max_bytes_per_file=1000, min_msg_size=1)
        for i in range(100):
            queue.put(rec(i))
        queue.flush()
        popped: list[bytes | None] = []
        while len(popped) < 45:
            popped.append(queue.pop())
            if directory == batched:
                popped.extend(queue.pop_buffered(45 - len(popped)))
        assert popped == [rec(i) for i in range(45)]
        queue.close()
    assert files(one) == files(batched)
    assert meta(one).read_text() == meta(batched).read_text()


@pytest.mark.parametrize("length", [b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\x00\x00\x00"])
def test_pop_buffered_leaves_a_garbled_length_to_pop(tmp_path: Path, length: bytes) -> None:
    queue = DiskQueue(NAME, str(tmp_path), max_bytes_per_file=1000, min_msg_size=1)
    for i in range(40):
        queue.put(rec(i))
    queue.flush()
    with dat(tmp_path, 0).open("r+b") as f:
        f.seek(34 * 5)
        f.write(length)
    # File 0 holds records 0..28; from the garbled 6th record on it is set aside.
    assert drain_batched(queue, 100) == [rec(i) for i in [0, 1, 2, 3, 4, *range(29, 40)]]
    assert queue.bad_files == 1
    assert queue.depth == 0
    queue.close()


def test_pop_buffered_stops_at_a_truncated_record(tmp_path: Path) -> None:
    queue = small(tmp_path)
    for i in range(6):
        queue.put(rec(i))
    queue.flush()
    os.truncate(dat(tmp_path, 1), 34 + 10)
    assert drain_batched(queue, 100) == [rec(0), rec(1), rec(2), rec(4), rec(5)]
    assert queue.bad_files == 1
    queue.close()


# -- pinning (crash-safe mode) ---------------------------------------------------------------


def _meta(path: Path, name: str = "q") -> str:
    return (path / f"{name}.diskqueue.meta.dat").read_text()


def _pop_pinned(queue: DiskQueue) -> tuple[bytes, tuple[int, int]]:
    popped = queue.pop_pinned()
    assert popped is not None
    return popped


def test_pinned_records_hold_the_persisted_read_position(tmp_path: Path) -> None:
    queue = DiskQueue("q", str(tmp_path))
    for index in range(3):
        queue.put(b"r" * 26 + bytes([index]))
    first, second = _pop_pinned(queue), _pop_pinned(queue)
    assert (first[1], second[1]) == ((0, 0), (0, 31))
    assert (queue.depth, queue.pinned) == (1, 2)
    queue.release(second[1])
    queue.prepare_sync().run()
    # Depth counts pinned records; the read position stays at the oldest pinned one.
    assert _meta(tmp_path) == "2\n0,0\n0,93\n"
    queue.release(first[1])
    queue.prepare_sync().run()
    assert _meta(tmp_path) == "1\n0,62\n0,93\n"
    queue.close()


def test_a_crash_replays_pinned_records(tmp_path: Path) -> None:
    queue = DiskQueue("q", str(tmp_path))
    for index in range(3):
        queue.put(b"r" * 26 + bytes([index]))
    in_flight, finished = _pop_pinned(queue), _pop_pinned(queue)
    queue.release(finished[1])
    queue.prepare_sync().run()
    # "kill -9": reopen without closing; the reader restarts at the pinned record.
    again = DiskQueue("q", str(tmp_path))
    replayed = [again.pop(), again.pop(), again.pop(), again.pop()]
    assert replayed == [in_flight[0], finished[0], b"r" * 26 + b"\x02", None]
    again.close()
    queue.close()


def test_a_file_is_kept_while_it_holds_a_pin(tmp_path: Path) -> None:
    queue = DiskQueue("q", str(tmp_path), max_bytes_per_file=70)
    for index in range(4):  # two 31-byte records per file
        queue.put(b"r" * 26 + bytes([index]))
    queue.flush()
    pinned = _pop_pinned(queue)
    for _ in range(3):
        queue.release(_pop_pinned(queue)[1])
    assert (tmp_path / "q.diskqueue.000000.dat").exists()  # it holds the pinned record
    queue.release(pinned[1])
    assert not (tmp_path / "q.diskqueue.000000.dat").exists()
    queue.close()


def test_empty_drops_pins(tmp_path: Path) -> None:
    queue = DiskQueue("q", str(tmp_path))
    queue.put(b"r" * 27)
    _pop_pinned(queue)
    queue.empty()
    assert (queue.pinned, queue.depth) == (0, 0)
    queue.close()


def test_records_past_a_saved_depth_that_was_too_low_are_still_unread(tmp_path: Path) -> None:
    # A depth saved before the last writes were counted (a crash): 1, with 3 records on disk.
    dat(tmp_path, 0).write_bytes(frame(rec(0)) + frame(rec(1)))
    dat(tmp_path, 1).write_bytes(frame(rec(2)))
    meta(tmp_path).write_bytes(b"1\n0,0\n1,34\n")
    queue = small(tmp_path)
    assert queue.pop() == rec(0)
    assert queue.depth <= 0
    assert queue.has_unread
    assert drain(queue) == [rec(1), rec(2)]
    assert not queue.has_unread
    queue.close()

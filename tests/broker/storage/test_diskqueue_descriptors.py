"""The disk queue out of file descriptors (issue 13): each call that needs one fails with the
OSError and leaves the queue as it was, so it can be made again once descriptors are free; a
sync needs none but the one its metadata file takes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.broker.storage.test_diskqueue import dat, drain, meta, rec, small
from tests.support import descriptors_used_up


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_queue_opened_out_of_descriptors_reads_its_metadata_once_it_can(
    tmp_path: Path,
) -> None:
    queue = small(tmp_path)
    for i in range(3):
        queue.put(rec(i))
    queue.close()
    with descriptors_used_up():
        queue = small(tmp_path)
        with pytest.raises(OSError, match="open files") as raised:
            queue.put(rec(3))
        assert raised.value.errno == errno.EMFILE
        with pytest.raises(OSError, match="open files"):
            queue.pop()
        assert not queue.dirty()
    queue.put(rec(3))
    assert queue.depth == 4
    assert drain(queue) == [rec(i) for i in range(4)]
    queue.close()


def test_emptied_before_its_metadata_can_be_read_it_is_emptied_once_it_can(
    tmp_path: Path,
) -> None:
    queue = small(tmp_path)
    for i in range(5):  # three files
        queue.put(rec(i))
    queue.close()
    with descriptors_used_up():
        queue = small(tmp_path)
        queue.empty()
        assert queue.depth == 0
    queue.put(rec(9))
    assert not any(dat(tmp_path, number).exists() for number in range(3))
    assert drain(queue) == [rec(9)]
    queue.close()


def test_a_sync_needs_no_descriptor_but_its_metadata_files(tmp_path: Path) -> None:
    queue = small(tmp_path)
    queue.put(rec(0))
    queue.flush()
    with descriptors_used_up():
        job = queue.prepare_sync()
        with pytest.raises(OSError, match="open files") as raised:
            job.run()  # the fsyncs are done; the temporary metadata file cannot be made
        assert raised.value.errno == errno.EMFILE
    queue.sync_failed()
    assert queue.needs_sync()
    assert not meta(tmp_path).exists()
    queue.prepare_sync().run()
    assert meta(tmp_path).read_bytes() == b"1\n0,0\n0,34\n"
    assert not list(tmp_path.glob("*.tmp"))
    queue.close()


def test_a_sync_job_borrows_descriptors_and_closes_those_let_go_meanwhile(
    tmp_path: Path,
) -> None:
    before = _open_fds()
    queue = small(tmp_path)
    for i in range(5):
        queue.put(rec(i))
    queue.flush()
    held = _open_fds()  # data files 0 to 2
    assert len(held - before) == 3
    job = queue.prepare_sync()
    assert _open_fds() == held  # none duplicated
    queue.delete()
    assert _open_fds() == held  # the job still has them
    job.run()
    assert _open_fds() == before

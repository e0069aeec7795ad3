"""Syncs and nsqd.dat rewrites that fail (issue 13: out of descriptors, or disk full): each
fails alone, is logged once rather than on every retry, and is done again later until it
works; meanwhile /ping answers NOK."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest
import trio

from tests.broker.storage.test_sync_selection import message, storage
from tests.support import descriptors_used_up
from trinsq.broker.storage import _storage
from trinsq.broker.storage._metadata import DataPathLock, TopicMetadata


@pytest.fixture(autouse=True)
def _info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "trinsq")


def _errors(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(1 for r in caplog.records if r.levelno == logging.ERROR and text in r.getMessage())


async def test_a_sync_out_of_descriptors_is_logged_once_and_done_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = storage(tmp_path)
    for number in range(3):
        store.backend(f"t{number}:c").put(message(number))
    assert store.commit(keep_failed=False)  # the write files are open
    with descriptors_used_up():
        await store.sync()
        await store.sync()
    assert _errors(caplog, "failed to sync disk queues - [Errno 24]") == 1
    assert store.health_error is not None
    assert store.health_error.startswith("failed to sync disk queues - [Errno 24]")
    assert store.changed_count == 3
    assert not list(tmp_path.glob("*.meta.dat"))
    await store.sync()
    assert len(list(tmp_path.glob("*.meta.dat"))) == 3
    assert store.changed_count == 0
    assert store.health_error is None
    assert "managed to sync disk queues again" in caplog.text


async def test_the_storage_task_tries_failed_writes_again_on_its_ticks(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The first three temporary files of each kind (nsqd.dat's, the queue metadata's) fail.
    failures = {"nsqd.dat": 0, "meta.dat": 0}
    real_open = os.open

    def open_(path: str, flags: int, mode: int = 0o777) -> int:
        kind = next((k for k in failures if f"{k}." in str(path)), None)
        if kind is not None and str(path).endswith(".tmp") and failures[kind] < 3:
            failures[kind] += 1
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", open_)
    store = storage(tmp_path, sync_timeout=0.05)
    queue_meta, nsqd_dat = tmp_path / "t.diskqueue.meta.dat", tmp_path / "nsqd.dat"
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run, lambda name: TopicMetadata(name, False, ()))
        store.backend("t").put(message(1))
        store.commit(keep_failed=False)
        store.metadata_changed("t")
        with trio.fail_after(30):  # a few ticks
            while not (queue_meta.exists() and nsqd_dat.exists()):
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert failures == {"nsqd.dat": 3, "meta.dat": 3}
    assert b'"name":"t"' in nsqd_dat.read_bytes()
    assert queue_meta.read_text() == "1\n0,0\n0,36\n"
    assert _errors(caplog, "failed to persist metadata") == 1
    assert _errors(caplog, "failed to sync disk queues") == 1
    assert "managed to persist metadata again" in caplog.text
    assert store.health_error is None


def test_shutdown_with_nsqd_dat_unwritable_says_so_and_lets_go_of_the_data_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(data_path: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    store = storage(tmp_path)
    store.open()
    monkeypatch.setattr(_storage, "write_metadata", disk_full)
    store.close(b'{"topics":null,"version":"1.3.0"}')
    assert "failed to persist metadata - [Errno 28]" in caplog.text
    lock = DataPathLock(str(tmp_path))
    lock.acquire()  # released all the same
    lock.release()

"""The thread-side half of the disk queue: fsync files, then write metadata atomically.

A :class:`SyncJob` borrows the queue's file descriptors and holds a text snapshot taken on the
event loop, and touches no other queue state, so it can run in a worker thread while the
queue goes on.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable

__all__ = ["MetaGuard", "SyncJob", "write_all"]


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class MetaGuard:
    """Orders metadata renames done by sync threads.

    A snapshot older than the one already renamed into place, or taken before an
    :meth:`DiskQueue.empty` (which deletes the metadata), must not land on disk.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written = 0
        self.floor = 0


class SyncJob:
    """fsync the queue's files, then persist a metadata snapshot; safe to run in a thread.

    Args:
        fds: descriptors to fsync, borrowed: handed to ``give_back`` once done with.
        give_back: takes the descriptors back (called from the job's thread).
        meta_path: the metadata file to replace.
        text: the metadata to write.
        guard: keeps an older snapshot from replacing a newer one.
        seq: this snapshot's number.
    """

    def __init__(
        self,
        fds: list[int],
        give_back: Callable[[list[int]], None],
        meta_path: str,
        text: str,
        guard: MetaGuard,
        seq: int,
    ) -> None:
        self._fds = fds
        self._give_back = give_back
        self._meta_path = meta_path
        self._text = text
        self._guard = guard
        self._seq = seq

    def run(self) -> None:
        try:
            for fd in self._fds:
                os.fsync(fd)
        finally:
            self._give_back(self._fds)
        # As go-diskqueue's persistMetaData: temporary file, fsync, rename.
        tmp = f"{self._meta_path}.{random.getrandbits(63)}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        renamed = False
        try:
            try:
                write_all(fd, self._text.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            with self._guard.lock:
                if self._seq >= self._guard.floor and self._seq > self._guard.written:
                    os.replace(tmp, self._meta_path)
                    self._guard.written = self._seq
                    renamed = True
        finally:
            if not renamed:
                os.unlink(tmp)

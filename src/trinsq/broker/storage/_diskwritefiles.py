"""The write side of a disk queue's data files: the open write file, and earlier ones.

A flush that rolls over into new files leaves the files it finished open until the next sync
job has fsynced them (:meth:`WriteFiles.take_for_sync`); a flush that fails takes its files
back (:meth:`WriteFiles.take_back`). File numbers and positions are the queue's; this holds
only the descriptors. No trio here.

A sync job borrows the descriptors it fsyncs rather than duplicates of them, so a sync needs
no descriptor of its own (a broker out of descriptors still syncs); one the queue closes
while a job has it is closed when the job gives it back.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable

__all__ = ["WriteFiles"]


class WriteFiles:
    """Args:
    name: the queue's name, for log messages.
    file_name: the path of a data file, by number.
    logger: where to log.
    """

    def __init__(self, name: str, file_name: Callable[[int], str], logger: logging.Logger) -> None:
        self._name = name
        self._file_name = file_name
        self._log = logger
        self._fd: int | None = None  # the write file, once opened
        # Earlier write files still open so that the next sync job can fsync them.
        self._retired: list[int] = []
        # Descriptors lent to sync jobs (how many have each), and those of them to close
        # once given back. Jobs give them back from their threads: hence the lock.
        self._lock = threading.Lock()
        self._lent: dict[int, int] = {}
        self._doomed: set[int] = set()

    def current(self, number: int, position: int) -> int:
        """The write file's descriptor; opened (created if need be) at ``position`` if it is
        not open yet."""
        if self._fd is None:
            path = self._file_name(number)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                os.lseek(fd, position, os.SEEK_SET)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
            self._log.info("DISKQUEUE(%s): opened %s for writing", self._name, path)
        return self._fd

    def open_new(self, number: int) -> int:
        """Open (create) data file ``number`` for a flush; the flush then hands it to
        :meth:`adopt` or :meth:`take_back`."""
        path = self._file_name(number)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._log.info("DISKQUEUE(%s): opened %s for writing", self._name, path)
        return fd

    def adopt(self, opened: list[tuple[int, int]]) -> None:
        """A flush wrote the files it ``opened`` (number, descriptor), oldest first: the last
        becomes the write file, the write file before it and the others wait for a sync."""
        if self._fd is not None:
            self._retired.append(self._fd)
        self._retired.extend(fd for _, fd in opened[:-1])
        self._fd = opened[-1][1]

    def take_back(self, start: int, opened: list[tuple[int, int]]) -> None:
        """A flush failed: remove the files it ``opened`` and cut the write file back to
        ``start``, where it was before."""
        for num, fd in opened:
            self._close(fd)
            try:
                os.unlink(self._file_name(num))
            except OSError as error:
                self._log.error("DISKQUEUE(%s) failed to remove data file - %s", self._name, error)
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, start)
                os.lseek(self._fd, start, os.SEEK_SET)
            except OSError as error:
                # Reopening seeks to the recorded position, so the next flush overwrites.
                self._log.error("DISKQUEUE(%s) failed to truncate - %s", self._name, error)
                self._close(self._fd)
                self._fd = None

    def take_for_sync(self) -> list[int]:
        """Descriptors for a sync job to fsync, lent until it hands them to :meth:`give_back`:
        the files retired since the last job (closed once given back) and the write file."""
        retired, self._retired = self._retired, []
        fds = retired if self._fd is None else [*retired, self._fd]
        with self._lock:
            for fd in fds:
                self._lent[fd] = self._lent.get(fd, 0) + 1
            self._doomed.update(retired)
        return fds

    def give_back(self, fds: Iterable[int]) -> None:
        """A sync job is done with ``fds``; safe to call from its thread."""
        with self._lock:
            for fd in fds:
                left = self._lent.pop(fd) - 1
                if left:
                    self._lent[fd] = left
                elif fd in self._doomed:
                    self._doomed.discard(fd)
                    os.close(fd)

    def close_write_file(self) -> None:
        """Close the write file (nothing more goes into it); retired files stay open."""
        if self._fd is not None:
            self._close(self._fd)
            self._fd = None

    def close(self) -> None:
        for fd in self._retired:
            self._close(fd)
        self._retired = []
        self.close_write_file()

    def _close(self, fd: int) -> None:
        """Close ``fd`` now, or when the last sync job using it gives it back."""
        with self._lock:
            if fd in self._lent:
                self._doomed.add(fd)
                return
        os.close(fd)

"""The write side of a disk queue's data files: the open write file, and earlier ones.

A flush that rolls over into new files leaves the files it finished open until the next sync
job has fsynced them (:meth:`WriteFiles.take_for_sync`); a flush that fails takes its files
back (:meth:`WriteFiles.take_back`). File numbers and positions are the queue's; this holds
only the descriptors. No trio here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

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
            os.close(fd)
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
                os.close(self._fd)
                self._fd = None

    def take_for_sync(self) -> list[int]:
        """Descriptors for a sync job to fsync and close: the files retired since the last
        job, and a duplicate of the write file's."""
        current = [os.dup(self._fd)] if self._fd is not None else []
        fds, self._retired = self._retired + current, []
        return fds

    def close_write_file(self) -> None:
        """Close the write file (nothing more goes into it); retired files stay open."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        for fd in self._retired:
            os.close(fd)
        self._retired = []
        self.close_write_file()

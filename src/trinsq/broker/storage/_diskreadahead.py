"""The read side of one disk-queue data file: an open descriptor and a read-ahead buffer.

One large ``pread`` brings many records, and the queue takes them from memory one at a time
(:meth:`ReadAhead.take`) or in batches (:meth:`ReadAhead.take_buffered`). File positions are
the queue's; this holds only what was read from its read position on.
"""

from __future__ import annotations

import os
from typing import Final

from ._diskformat import LENGTH, split_records

__all__ = ["ReadAhead"]

_READ_CHUNK: Final = 1 << 20


class ReadAhead:
    """Attributes:
    fd: the open data file, or None before the first read of it.
    size: the file's size once it is finished (no more writes to it), else None.
    """

    def __init__(self) -> None:
        self.fd: int | None = None
        self.size: int | None = None
        self._buffer = b""  # bytes of the file from the read position on, starting at _offset
        self._offset = 0

    def fill(self, position: int, need: int, end: int) -> bool:
        """Buffer at least ``need`` bytes from the read ``position``, reading no further than
        ``end``; False if the file does not hold them."""
        assert self.fd is not None
        have = len(self._buffer) - self._offset
        if have >= need:
            return True
        at = position + have
        want = min(max(_READ_CHUNK, need - have), end - at)
        if want < need - have:
            return False
        data = os.pread(self.fd, want, at)
        self._buffer = self._buffer[self._offset :] + data
        self._offset = 0
        return len(self._buffer) >= need

    def length(self) -> int:
        """The record length at the read position (after a :meth:`fill` of 4 bytes)."""
        (size,) = LENGTH.unpack_from(self._buffer, self._offset)
        return int(size)

    def take(self, size: int) -> bytes:
        """Consume the framed record of ``size`` bytes at the read position (after a
        :meth:`fill` of ``4 + size``) and return its payload."""
        start = self._offset + 4
        record = self._buffer[start : start + size]
        self._consumed(start + size)
        return record

    def take_buffered(
        self, available: int, limit: int, smallest: int, largest: int
    ) -> tuple[list[bytes], int]:
        """Up to ``limit`` whole records already buffered, within ``available`` bytes of the
        file, and the bytes consumed; stops before a length outside ``smallest..largest``."""
        start = self._offset
        records, end = split_records(self._buffer, start, available, limit, smallest, largest)
        self._consumed(end)
        return records, end - start

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.size = None
        self._buffer, self._offset = b"", 0

    def _consumed(self, offset: int) -> None:
        if offset == len(self._buffer):
            self._buffer, self._offset = b"", 0
        else:
            self._offset = offset

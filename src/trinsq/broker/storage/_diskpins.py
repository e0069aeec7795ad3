"""Crash-safe pins: records popped but not yet released keep their place and their files.

In crash-safe mode the queue's owner pops with :meth:`DiskQueue.pop_pinned` and releases each
record once it is done with it (finished, or saved elsewhere). Until then the persisted read
position stays at the oldest pinned record, so after a crash it is read again (as Go nsqd would
read it from the same files), and the data files from that record's on are kept although the
reader has left them.

Bookkeeping only: the queue deletes the files this says can go. No I/O, no trio.
"""

from __future__ import annotations

__all__ = ["Pins"]


class Pins:
    """Where the pinned records start, and the first data file still kept behind the reader.

    A cursor is ``(file number, position)`` of a record's frame, as
    :meth:`DiskQueue.pop_pinned` returns it.
    """

    def __init__(self) -> None:
        # Oldest first: records are pinned in read order and a dict keeps insertion order.
        self._cursors: dict[tuple[int, int], None] = {}
        self._kept_from = 0  # first file number the reader has left but not deleted

    def __len__(self) -> int:
        return len(self._cursors)

    def pin(self, cursor: tuple[int, int]) -> None:
        self._cursors[cursor] = None

    def release(self, cursor: tuple[int, int]) -> bool:
        """Unpin ``cursor``; False if it was not pinned (released before, or cleared)."""
        if cursor not in self._cursors:
            return False
        del self._cursors[cursor]
        return True

    def clear(self) -> None:
        self._cursors.clear()

    def read_position(self, reader: tuple[int, int]) -> tuple[int, int]:
        """The read position to persist: the oldest pinned record's, else the ``reader``'s."""
        return next(iter(self._cursors)) if self._cursors else reader

    def restart(self, read_num: int) -> None:
        """The reader starts at file ``read_num`` with no file behind it left to delete (a
        fresh open, or a skip that deleted them), unless pins still keep earlier files."""
        if not self._cursors:
            self._kept_from = read_num

    def files_to_delete(self, read_num: int) -> range:
        """The files behind the reader (now in file ``read_num``) that no pin keeps any more;
        from now on they count as deleted."""
        oldest_kept = next(iter(self._cursors))[0] if self._cursors else read_num
        keep_from = min(oldest_kept, read_num)
        unkept = range(self._kept_from, keep_from)
        self._kept_from = max(self._kept_from, keep_from)
        return unkept

"""A FIFO of byte records in files, compatible on disk with nsqio/go-diskqueue v1.1.0.

The layout is go-diskqueue's (see _diskformat.py), so a data directory moves between Go nsqd
and trinsq.

go-diskqueue runs an I/O goroutine; here the owner drives the queue from its event loop, so
every method costs at most a few syscalls: :meth:`DiskQueue.put` none, :meth:`DiskQueue.flush`
one write per file, :meth:`DiskQueue.pop` one large pread per many records. The slow part,
fsync, is packaged by :meth:`DiskQueue.prepare_sync` as a :class:`SyncJob` for a worker thread.
An OS error (out of descriptors, disk full) fails the one call that met it and leaves the queue
as it was, so the call can simply be made again later. No trio here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence

from ._diskformat import LENGTH, disk_queue_file_name, format_metadata, metadata_file_name
from ._diskload import read_positions
from ._diskpins import Pins
from ._diskreadahead import ReadAhead
from ._diskrecover import data_files_in
from ._disksync import MetaGuard, SyncJob, write_all
from ._diskwritefiles import WriteFiles

__all__ = ["DiskQueue", "DiskQueueError", "SyncJob", "disk_queue_file_name"]

log = logging.getLogger("trinsq.broker")


class DiskQueueError(Exception):
    """A record of invalid size, or an operation on a closed queue."""


class _Corrupt(Exception):
    """The current read file cannot be read any further; it is set aside."""


class DiskQueue:
    """One topic's or channel's disk queue (``name`` is ``topic`` or ``topic:channel``).

    Positions follow go-diskqueue: the read position is just past the last popped record, the
    write position is the end of the data written. Depth is go-diskqueue's counter, which can
    be stale after an unclean shutdown; it is reset to 0 whenever the reader catches up with
    the writer. Pending puts are never served before they are flushed, so a flush error only
    ever takes back records nobody has seen. A queue whose metadata cannot be read (EMFILE)
    is made all the same; the first call that needs its positions reads it, or raises.
    """

    def __init__(
        self,
        name: str,
        data_path: str,
        *,
        max_bytes_per_file: int = 100 * 1024 * 1024,
        min_msg_size: int = 26,
        max_msg_size: int = 1048576 + 26,
        sync_every: int = 2500,
        logger: logging.Logger | None = None,
    ) -> None:
        """Args beyond the sizes: ``sync_every`` operations make :meth:`needs_sync` true."""
        self.name = name
        self._data_path = data_path
        self._max_bytes_per_file = max_bytes_per_file
        self._min_msg_size = min_msg_size
        self._max_msg_size = max_msg_size
        self._sync_every = sync_every
        self._log = logger or log
        self._meta_path = metadata_file_name(data_path, name)
        self._guard = MetaGuard()
        self._seq = 0
        self._depth = 0
        self._bad_files = 0
        self._rnum = self._rpos = 0
        # End of what is in the write file (fnum, fpos) and of what will be once pending
        # puts are flushed (wnum, wpos).
        self._fnum = self._fpos = 0
        self._wnum = self._wpos = 0
        self._pending: list[tuple[int, list[bytes]]] = []
        self._npending = 0
        self._write_files = WriteFiles(name, self._file, self._log)  # write side's descriptors
        self._reader = ReadAhead()  # the read file
        self._ops = 0
        self._need_sync = False
        self._closed = False
        self._pins = Pins()  # popped records not yet released (crash-safe mode)
        self._last_start = (0, 0)
        self._loaded = False
        self._empty_when_loaded = False
        try:
            self._ensure_loaded()
        except OSError as error:
            self._log.error("DISKQUEUE(%s) failed to retrieveMetaData - %s", self.name, error)

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def has_unread(self) -> bool:
        """Whether written records remain to be read, whatever :attr:`depth` says (a depth
        saved before a crash can be lower than what the files hold)."""
        return (self._rnum, self._rpos) < (self._fnum, self._fpos)

    @property
    def bad_files(self) -> int:
        return self._bad_files

    def put(self, record: bytes) -> None:
        self.put_many((record,))

    def put_many(self, records: Iterable[bytes]) -> None:
        """Queue records for the next :meth:`flush`, in order. A record of invalid size
        raises :class:`DiskQueueError`; the ones before it stay queued. Raises OSError,
        queueing nothing, when the metadata is still to be read and cannot be."""
        self._check_open()
        self._ensure_loaded()
        smallest, largest = self._min_msg_size, self._max_msg_size
        file_limit = self._max_bytes_per_file
        pack = LENGTH.pack
        pending = self._pending
        wnum, wpos = self._wnum, self._wpos
        parts = pending[-1][1] if pending and pending[-1][0] == wnum else None
        count = 0
        try:
            for record in records:
                size = len(record)
                if size < smallest or size > largest:
                    raise DiskQueueError(
                        f"invalid message write size ({size}) "
                        f"minMsgSize={smallest} maxMsgSize={largest}"
                    )
                # A record never spans files; one larger than the limit gets a file of its own.
                if wpos > 0 and wpos + 4 + size > file_limit:
                    wnum += 1
                    wpos = 0
                    parts = None
                if parts is None:
                    parts = []
                    pending.append((wnum, parts))
                parts.append(pack(size))
                parts.append(record)
                wpos += 4 + size
                count += 1
        finally:
            self._wnum, self._wpos = wnum, wpos
            self._npending += count
            self._depth += count
            self._ops += count

    def flush(self) -> None:
        """Write pending puts; on OSError take them all back and re-raise."""
        self._check_open()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        start = self._fpos
        old_end = start
        opened: list[tuple[int, int]] = []
        try:
            for num, parts in pending:
                data = b"".join(parts)
                if num == self._fnum:
                    write_all(self._write_files.current(self._fnum, self._fpos), data)
                    old_end += len(data)
                    continue
                fd = self._write_files.open_new(num)
                opened.append((num, fd))
                write_all(fd, data)
        except OSError:
            self._undo_flush(start, opened)
            raise
        old_num = self._fnum
        self._fnum, self._fpos = self._wnum, self._wpos
        self._npending = 0
        if opened:
            self._write_files.adopt(opened)
            self._need_sync = True
            # The old write file is finished now: its size is where writing stopped.
            if self._rnum == old_num:
                self._reader.size = old_end
                if self._rpos == old_end:
                    self._leave_read_file()

    def pop(self) -> bytes | None:
        """The next record, or None when the queue is empty.

        Flushes pending puts first, so a flush OSError can surface here. Other OSErrors
        (EMFILE, EACCES, EIO...) are re-raised with nothing changed; only a missing file or
        bad data sets a file aside as ``.bad``.
        """
        self._check_open()
        self._ensure_loaded()
        self.flush()
        while (self._rnum, self._rpos) < (self._fnum, self._fpos):
            self._last_start = (self._rnum, self._rpos)
            try:
                record = self._read_one()
            except _Corrupt as error:
                self._set_aside(str(error))
                continue
            if record is None:
                self._leave_read_file()
                continue
            self._depth -= 1
            self._ops += 1
            # Leave a consumed file at once so the metadata never points at its end: Go
            # nsqd would take that for corruption (go-diskqueue #42).
            if self._rnum < self._fnum and self._rpos == self._reader.size:
                self._leave_read_file()
            else:
                self._check_tail()
            return record
        return None

    def pop_buffered(self, limit: int) -> list[bytes]:
        """Up to ``limit`` more records, as :meth:`pop` would return them, taken only from
        what is already read ahead: no I/O, so no error. Stops early wherever :meth:`pop`
        has more to do (an unread part, a file's end, a bad length).

        This is the consumers' hot path: one call hands over a batch of a read-ahead chunk.
        """
        reader = self._reader
        if self._closed or reader.fd is None:
            return []
        if self._rnum < self._fnum:
            if reader.size is None:
                return []
            end = reader.size
        else:
            end = self._fpos
        records, consumed = reader.take_buffered(
            end - self._rpos, limit, self._min_msg_size, self._max_msg_size
        )
        if not records:
            return records
        self._rpos += consumed
        # pop_pinned's cursor: where the last record's frame starts.
        self._last_start = (self._rnum, self._rpos - 4 - len(records[-1]))
        self._depth -= len(records)
        self._ops += len(records)
        # Only the last position can be a file's end or the writer's position.
        if self._rnum < self._fnum and self._rpos == self._reader.size:
            self._leave_read_file()
        else:
            self._check_tail()
        return records

    def pop_pinned(self) -> tuple[bytes, tuple[int, int]] | None:
        """Pop a record but keep it on disk until :meth:`release`: until then the persisted
        read position stays at or before it, so after a crash the record is read again (as
        Go nsqd would read it from the same files)."""
        record = self.pop()
        if record is None:
            return None
        self._pins.pin(self._last_start)
        return record, self._last_start

    def release(self, cursor: tuple[int, int]) -> None:
        """The pinned record at ``cursor`` is done with (or saved elsewhere)."""
        if self._pins.release(cursor):
            self._ops += 1
            self._delete_unpinned_files()

    @property
    def pinned(self) -> int:
        return len(self._pins)

    def _delete_unpinned_files(self) -> None:
        for num in self._files_in(self._pins.files_to_delete(self._rnum)):
            self._remove_file(num)
            self._need_sync = True

    def needs_sync(self) -> bool:
        return self._need_sync or self._ops >= self._sync_every

    def dirty(self) -> bool:
        return self._need_sync or self._ops > 0

    def prepare_sync(self) -> SyncJob:
        """Flush and snapshot; the returned job does the fsyncs and the metadata write.

        Await each job before calling :meth:`close`; :meth:`empty` and :meth:`delete` make
        jobs still running skip their metadata write. An OSError (the metadata cannot be
        read) leaves the queue as it was, still to sync; so does :meth:`sync_failed` once a
        job failed.
        """
        self._ensure_loaded()
        self.flush()
        write_files = self._write_files
        fds = write_files.take_for_sync()
        self._seq += 1
        self._ops = 0
        self._need_sync = False
        read_num, read_pos = self._pins.read_position((self._rnum, self._rpos))
        depth = self._depth + len(self._pins)
        text = format_metadata(depth, (read_num, read_pos), (self._fnum, self._fpos))
        return SyncJob(fds, write_files.give_back, self._meta_path, text, self._guard, self._seq)

    def sync_failed(self) -> None:
        """The job of the last :meth:`prepare_sync` failed: the next sync does it again."""
        self._need_sync = True

    def empty(self) -> None:
        """Drop everything, pending puts included, as go-diskqueue's Empty.

        A queue whose metadata cannot be read yet is empty from now on as far as anyone can
        see, and its files are deleted once the metadata says which they are.
        """
        self._check_open()
        if not self._loaded:
            try:
                self._ensure_loaded()
            except OSError as error:
                self._log.error("DISKQUEUE(%s) failed to empty yet - %s", self.name, error)
                self._empty_when_loaded = True
                return
        self._log.info("DISKQUEUE(%s): emptying", self.name)
        self._pins.clear()
        self._delete_unpinned_files()
        self._skip_to_next_file()
        with self._guard.lock:
            self._guard.floor = self._seq + 1
            try:
                os.unlink(self._meta_path)
            except FileNotFoundError:
                pass
            except OSError as error:
                self._log.error("DISKQUEUE(%s) failed to remove metadata - %s", self.name, error)
        self._ops = 0
        self._need_sync = False

    def delete(self) -> None:
        """Empty and close without persisting metadata (a deleted topic or channel)."""
        self.empty()
        self._log.info("DISKQUEUE(%s): deleting", self.name)
        if not self._loaded:
            self._log.error("DISKQUEUE(%s) data files left behind: no metadata", self.name)
        self._closed = True
        self._close_files()

    def close(self) -> None:
        """Flush, fsync, persist metadata and close; a second call does nothing."""
        if self._closed:
            return
        self._log.info("DISKQUEUE(%s): closing", self.name)
        if not self._loaded:  # nothing changed since it was opened: nothing to write
            self._closed = True
            return
        try:
            self.flush()
        finally:
            try:
                self.prepare_sync().run()
            finally:
                self._closed = True
                self._close_files()

    def _check_open(self) -> None:
        if self._closed:
            raise DiskQueueError("exiting")

    def _file(self, number: int) -> str:
        return disk_queue_file_name(self._data_path, self.name, number)

    def _ensure_loaded(self) -> None:
        """Take the positions from the metadata unless done already.

        Raises:
            OSError: the metadata cannot be read (nothing changes; a later call tries again).
        """
        if self._loaded:
            return
        sizes = (self._min_msg_size, self._max_msg_size)
        positions = read_positions(self.name, self._data_path, sizes, self._log)
        self._depth, self._rnum, self._rpos, self._fnum, self._fpos = positions
        self._wnum, self._wpos = self._fnum, self._fpos
        self._pins.restart(self._rnum)
        self._loaded = True
        self._check_tail()
        if self._empty_when_loaded:
            self._empty_when_loaded = False
            self.empty()

    def _files_in(self, numbers: range) -> Sequence[int]:
        return data_files_in(self._data_path, self.name, numbers)

    def _undo_flush(self, start: int, opened: list[tuple[int, int]]) -> None:
        self._write_files.take_back(start, opened)
        self._wnum, self._wpos = self._fnum, self._fpos
        self._depth -= self._npending
        self._ops -= self._npending
        self._npending = 0

    def _read_one(self) -> bytes | None:
        """The record at the read position; None at the clean end of a finished file."""
        reader = self._reader
        if reader.fd is None:
            path = self._file(self._rnum)
            try:
                reader.fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise _Corrupt("file is missing") from None
            self._log.info("DISKQUEUE(%s): opened %s for reading", self.name, path)
        # Whether the file is finished is decided before reading a length, so the end of a
        # good file is never taken for corruption (go-diskqueue #42).
        if self._rnum < self._fnum:
            if reader.size is None:
                reader.size = os.fstat(reader.fd).st_size
            end = reader.size
            if self._rpos >= end:
                if self._rpos == end:
                    return None
                raise _Corrupt(f"read position is past the file size ({end})")
        else:
            end = self._fpos
        if not reader.fill(self._rpos, 4, end):
            raise _Corrupt("short read of a length")
        size = reader.length()
        if size < self._min_msg_size or size > self._max_msg_size:
            raise _Corrupt(f"invalid message read size ({size})")
        if not reader.fill(self._rpos, 4 + size, end):
            raise _Corrupt(f"short read of a {size}-byte record")
        self._rpos += 4 + size
        return reader.take(size)

    def _set_aside(self, reason: str) -> None:
        bad = self._file(self._rnum)
        self._log.error(
            "DISKQUEUE(%s) reading at %d of %s - %s", self.name, self._rpos, bad, reason
        )
        self._close_reader()
        if self._rnum == self._fnum:
            # Nothing more goes into a file that cannot be read.
            self._write_files.close_write_file()
            self._fnum += 1
            self._fpos = 0
            self._wnum, self._wpos = self._fnum, self._fpos
        try:
            os.rename(bad, bad + ".bad")
        except FileNotFoundError:
            pass
        except OSError as error:
            self._log.error("DISKQUEUE(%s) failed to rename bad file - %s", self.name, error)
        else:
            self._log.error("DISKQUEUE(%s) saved bad file as %s.bad", self.name, bad)
        self._bad_files += 1
        # On to the next file; past a gap of missing ones at once.
        later = self._files_in(range(self._rnum + 1, self._fnum + 1))
        self._rnum = later[0] if later else self._fnum
        self._rpos = 0
        self._need_sync = True
        self._check_tail()

    def _leave_read_file(self) -> None:
        self._close_reader()
        self._rnum += 1
        self._rpos = 0
        self._need_sync = True
        self._delete_unpinned_files()  # the file just left goes unless it holds a pin
        self._check_tail()

    def _check_tail(self) -> None:
        """go-diskqueue's checkTailCorruption: once the reader has caught up, depth is 0."""
        if (self._rnum, self._rpos) < (self._fnum, self._fpos):
            return
        if self._depth != 0:
            self._log.error("DISKQUEUE(%s) depth at tail (%d), resetting 0", self.name, self._depth)
            self._depth = 0
            self._need_sync = True
        if (self._rnum, self._rpos) != (self._fnum, self._fpos):
            where = (self._rnum, self._rpos, self._fnum, self._fpos)
            self._log.error(
                "DISKQUEUE(%s) read %d,%d past write %d,%d, skipping", self.name, *where
            )
            self._skip_to_next_file()
            self._need_sync = True

    def _skip_to_next_file(self) -> None:
        """go-diskqueue's skipToNextRWFile: delete the data files, start a new file number."""
        self._close_files()
        for num in self._files_in(range(self._rnum, self._fnum + 1)):
            self._remove_file(num)
        self._fnum += 1
        self._fpos = 0
        self._wnum, self._wpos = self._fnum, self._fpos
        self._rnum, self._rpos = self._fnum, 0
        self._pins.restart(self._rnum)
        self._pending = []
        self._npending = 0
        self._depth = 0

    def _remove_file(self, number: int) -> None:
        try:
            os.unlink(self._file(number))
        except FileNotFoundError:
            pass
        except OSError as error:
            self._log.error("DISKQUEUE(%s) failed to remove data file - %s", self.name, error)

    def _close_reader(self) -> None:
        self._reader.close()

    def _close_files(self) -> None:
        self._close_reader()
        self._write_files.close()

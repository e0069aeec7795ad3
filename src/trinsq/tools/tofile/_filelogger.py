"""What nsq_to_file v1.3.0 does with one topic's messages on disk (apps/nsq_to_file/
file_logger.go), with the clock and the messages handed in: which file to write, when to
rotate, when to sync, and where a finished file goes.

No trio and no network here: the consuming side calls :meth:`FileLogger.handle_message` for
each message, :meth:`FileLogger.tick` every ``--sync-interval`` and :meth:`FileLogger.stop` at
the end, and finishes as many messages as they return (only once they are on disk). The calls
do blocking file I/O; the I/O layer runs them off the event loop.

The rules, as nsq_to_file's:

- Files are opened in ``--work-dir`` (default: ``--output-dir``). A new file is started when the
  name changes (``<DATETIME>`` moved on), after ``--rotate-interval`` since the open, and when
  the bytes written pass ``--rotate-size`` (uncompressed bytes under ``--gzip``), checked before
  each message is written and at each tick.
- ``<REV>`` counts from 0 for each new name and goes up by one for each rotation under the same
  name, and past any name already taken: in the output directory, by an existing working file
  (opened exclusively under ``--gzip`` or ``--rotate-interval``), or by an appended-to file
  already bigger than ``--rotate-size``.
- A closed file is fsynced, then moved from the work directory to the output directory by a
  hard link and an unlink, so an existing file is never overwritten: when the name is taken,
  ``<REV>`` goes up until one is free.
- Under ``--gzip`` every sync ends the gzip member and starts a new one, so a file is a series
  of complete members (``gzip -d`` reads them as one stream) and a crash loses at most the
  unsynced tail.

Unlike nsq_to_file, a file moved to the output directory is not written again after a SIGHUP
(nsq_to_file keeps writing to the closed file and dies), and a working file found too big is
closed rather than leaked.
"""

from __future__ import annotations

import logging
import os
import socket
import zlib
from datetime import datetime, tzinfo
from typing import BinaryIO

from trinsq.common._durations import format_go_duration
from trinsq.tools.tofile._naming import compute_filename_format, with_datetime, with_rev
from trinsq.tools.tofile._options import ToFileOptions

__all__ = ["FileLogger"]

log = logging.getLogger("trinsq.tools.to_file")

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip member's header and trailer around raw deflate


class FileLogger:
    """One topic's files.

    Raises:
        FilenameFormatError: from the constructor, when ``--filename-format`` lacks a needed
            ``<REV>``.
        OSError: from any call, when the disk refuses; nsq_to_file treats it as fatal.
    """

    def __init__(
        self,
        options: ToFileOptions,
        topic: str,
        *,
        hostname: str | None = None,
        pid: int | None = None,
    ) -> None:
        self._options = options
        self._topic = topic
        self._pattern = compute_filename_format(
            options.filename_format,
            topic=topic,
            hostname=socket.gethostname() if hostname is None else hostname,
            pid=os.getpid() if pid is None else pid,
            host_identifier=options.host_identifier,
            gzip=options.gzip,
            rotation=options.rotates,
            separate_work_dir=options.work_directory != options.output_dir,
        )
        self._out: BinaryIO | None = None
        self._path = ""  # the open file's path
        self._compressor: zlib._Compress | None = None
        self.filename = ""  # the current name, "<REV>" still in it
        self.open_time: datetime | None = None
        self.filesize = 0
        self.rev = 0
        self.pending = 0  # messages written since the last sync: not yet to be finished
        # current_filename's last moment and answer
        self._named_at: tuple[datetime, tzinfo | None] | None = None
        self._name_now = ""

    @property
    def path(self) -> str | None:
        """The file being written, if one is open."""
        return self._path if self._out is not None else None

    def _log(self, level: int, message: str, *args: object) -> None:
        log.log(level, "[%s/%s] " + message, self._topic, self._options.channel, *args)

    # -- what the router does ---------------------------------------------------------------

    def handle_message(self, body: bytes, now: datetime) -> bool:
        """Write one message (rotating first if due) as its body and a newline.

        Returns:
            True when a sync is due now: the file rotated, or ``--max-in-flight`` messages
            wait to be finished. Call :meth:`sync_records` then.
        """
        due = False
        if self.needs_rotation(now):
            self.update_file(now)
            due = True
        self.write(body)
        self.write(b"\n")
        self.pending += 1
        return due or self.pending >= self._options.max_in_flight

    def tick(self, now: datetime) -> int:
        """The ``--sync-interval`` tick: rotate if due (or, with ``--skip-empty-files``, close
        instead, so no empty file is opened), then sync.

        Returns:
            How many messages are now on disk and can be finished.
        """
        close = False
        if self.needs_rotation(now):
            if self._options.skip_empty_files:
                close = True
            else:
                self.update_file(now)
        synced = self.sync_records()
        if close:
            self.close()
        return synced

    def stop(self) -> int:
        """Sync and close, as on SIGHUP or when the consumer stops; the next message opens a
        new file.

        Returns:
            How many messages are now on disk and can be finished.
        """
        synced = self.sync_records()
        self.close()
        return synced

    def sync_records(self) -> int:
        """Make what was written durable, if anything waits; how many messages that covers."""
        if not self.pending:
            return 0
        self._log(logging.INFO, "syncing %d records to disk", self.pending)
        self.sync()
        synced, self.pending = self.pending, 0
        return synced

    # -- the file ----------------------------------------------------------------------------

    def current_filename(self, now: datetime) -> str:
        # checked before every message: a batch written at one moment formats the time once
        moment = (now, now.tzinfo)  # an equal instant in another zone is another name
        if moment != self._named_at:
            self._named_at = moment
            self._name_now = with_datetime(self._pattern, self._options.datetime_format, now)
        return self._name_now

    def needs_rotation(self, now: datetime) -> bool:
        if self._out is None:
            return True
        filename = self.current_filename(now)
        if filename != self.filename:
            self._log(logging.INFO, "new filename %s, rotating...", filename)
            return True
        interval = self._options.rotate_interval
        if interval > 0 and self.open_time is not None:
            since = (now - self.open_time).total_seconds()
            if since > interval:
                self._log(
                    logging.INFO, "%s since last open, rotating...", format_go_duration(since)
                )
                return True
        if 0 < self._options.rotate_size < self.filesize:
            self._log(
                logging.INFO,
                "%s currently %d bytes (> %d), rotating...",
                self._path,
                self.filesize,
                self._options.rotate_size,
            )
            return True
        return False

    def write(self, data: bytes) -> None:
        assert self._out is not None, "write before a file is open"
        self.filesize += len(data)  # uncompressed, as nsq_to_file counts
        if self._compressor is not None:
            data = self._compressor.compress(data)
        self._out.write(data)

    def sync(self) -> None:
        """fsync the file; under ``--gzip`` end the member first and start another."""
        assert self._out is not None, "sync before a file is open"
        if self._compressor is not None:
            self._out.write(self._compressor.flush(zlib.Z_FINISH))
            self._compressor = self._new_compressor()
        self._out.flush()
        os.fsync(self._out.fileno())

    def _new_compressor(self) -> zlib._Compress:
        return zlib.compressobj(self._options.gzip_level, zlib.DEFLATED, _GZIP_WBITS)

    def update_file(self, now: datetime) -> None:
        """Close the current file and open the next one, choosing its ``<REV>``."""
        self.close()
        filename = self.current_filename(now)
        if filename != self.filename:
            self.rev = 0  # a new name starts again from 0
        else:
            self.rev += 1
        self.filename = filename
        self.open_time = now
        options = self._options
        work_dir, output_dir = options.work_directory, options.output_dir
        _make_parent(os.path.join(work_dir, filename))
        while True:
            name = with_rev(filename, self.rev)
            path = os.path.join(work_dir, name)
            if work_dir != output_dir:
                # look ahead in the output directory, so the move at close need not rename
                destination = os.path.join(output_dir, name)
                _make_parent(destination)
                if os.path.lexists(destination):
                    self._log(logging.WARNING, "output file already exists: %s", destination)
                    self.rev += 1
                    continue
            flags = os.O_WRONLY | os.O_CREAT
            if options.gzip or options.rotate_interval > 0:
                flags |= os.O_EXCL
            else:
                flags |= os.O_APPEND
            try:
                descriptor = os.open(path, flags, 0o666)
            except FileExistsError:
                self._log(logging.WARNING, "working file already exists: %s", path)
                self.rev += 1
                continue
            self._log(logging.INFO, "opening %s", path)
            size = os.fstat(descriptor).st_size
            if 0 < options.rotate_size < size:
                self._log(
                    logging.INFO,
                    "%s currently %d bytes (> %d), rotating...",
                    path,
                    size,
                    options.rotate_size,
                )
                os.close(descriptor)
                self.rev += 1
                continue
            break
        self._out = os.fdopen(descriptor, "wb")
        self._path = path
        self.filesize = size
        self._compressor = self._new_compressor() if options.gzip else None

    def close(self) -> None:
        """End the gzip stream, fsync and close the file, and move it to the output directory
        without overwriting anything there."""
        out = self._out
        if out is None:
            return
        self._out = None
        try:
            if self._compressor is not None:
                out.write(self._compressor.flush(zlib.Z_FINISH))
                self._compressor = None
            out.flush()
            os.fsync(out.fileno())
        finally:
            out.close()
        work_dir, output_dir = self._options.work_directory, self._options.output_dir
        if work_dir == output_dir:
            return
        source = self._path
        destination = os.path.join(output_dir, os.path.relpath(source, work_dir))
        self._log(logging.INFO, "moving finished file %s to %s", source, destination)
        if _exclusive_rename(source, destination):
            return
        # taken since the open: bump <REV> until a name is free
        template = os.path.join(os.path.dirname(destination), os.path.basename(self.filename))
        rev = self.rev + 1
        while True:
            self._log(logging.WARNING, "destination file already exists: %s", destination)
            destination = with_rev(template, rev)
            if _exclusive_rename(source, destination):
                break
            rev += 1
        self._log(
            logging.INFO,
            "renamed finished file %s to %s to avoid overwrite",
            source,
            destination,
        )


def _make_parent(path: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, 0o770, exist_ok=True)


def _exclusive_rename(source: str, destination: str) -> bool:
    """Move by hard link and unlink, so an existing destination is never replaced; False if
    the destination exists."""
    try:
        os.link(source, destination)
    except FileExistsError:
        return False
    os.remove(source)
    return True

"""The broker's data path: its lock, nsqd.dat, every disk queue, and when they reach the disk.

Writes go to the OS at the end of each operation (cheap, on the event loop); fsyncs and
nsqd.dat rewrites run in a worker thread, so the loop never waits on the disk. Queues are
synced as nsqd does: after ``--sync-every`` operations, and on the ``--sync-timeout`` tick if
anything changed. With ``--sync-every=1`` (crash-safe mode) publishers also wait for the fsync
before their OK, so every acknowledged message is on disk.

An OS error (out of descriptors, disk full) fails only what met it: a publish answers
E_PUB_FAILED, and a sync or nsqd.dat rewrite that fails is logged once and done again on a
later tick, until it works.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
from collections.abc import Callable, Iterable
from functools import partial
from typing import Final

import trio

from ..._version import NSQ_COMPAT_VERSION
from ...protocol import decode_json
from ..config._options import BrokerOptions
from ..core._snapshot import TopicMetadata
from ._diskbackend import DiskBackend
from ._diskqueue import DiskQueue, SyncJob
from ._duetimes import DueTimes
from ._metadata import DataPathLock, MetadataFile, read_metadata, write_metadata
from ._standing import StandingFailure

__all__ = ["Storage"]

log = logging.getLogger("trinsq.broker")

RECORD_HEADER_SIZE: Final = 26
# Beside each queue, trinsq keeps the due times of deferred messages it saved at shutdown.
# Go nsqd ignores the file and delivers those messages at once, as it always does.
DUE_SUFFIX: Final = ".diskqueue.deferred.json"
_DUE_SLICE: Final = 4096  # entries written at a time


def _due_path(data_path: str, queue_name: str) -> str:
    return os.path.join(data_path, queue_name + DUE_SUFFIX)


def _read_due(path: str) -> dict[bytes, int]:
    """What :func:`_write_due` wrote (or json.dump did, before it)."""
    if not os.path.exists(path):  # learnt without a descriptor, so also when out of them
        return {}
    try:
        with open(path, "rb") as file:
            document = decode_json(file.read())
        return {key.encode("ascii"): int(value) for key, value in document["due"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.error("ignoring unreadable deferred due times in %s - %s", path, error)
        return {}


def _write_due(path: str, due: DueTimes) -> None:
    """Write ``{"due": {id: Unix ns, ...}}`` as json.dump would, a slice of entries at a time
    (millions of them take no more memory than a slice)."""
    if not due:
        if os.path.exists(path):
            os.remove(path)
        return
    temporary = f"{path}.{random.getrandbits(63)}.tmp"
    with open(temporary, "w") as file:
        entries = due.items()
        separator = ""
        file.write('{"due": {')
        while piece := {
            key.decode("ascii"): value for key, value in itertools.islice(entries, _DUE_SLICE)
        }:
            file.write(separator)
            file.write(json.dumps(piece)[1:-1])  # the entries, without the braces
            separator = ", "
        file.write("}}")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _run_jobs(work: list[Callable[[], None]]) -> list[OSError | None]:
    """Do each piece of work in turn; an OSError fails only its own piece (returned in its
    place), the others are still done."""
    errors: list[OSError | None] = []
    for piece in work:
        try:
            piece()
        except OSError as error:
            errors.append(error)
        else:
            errors.append(None)
    return errors


class Storage:
    """Everything the broker keeps in ``--data-path``.

    Args:
        options: the broker options (data path, file size, sync policy, message size).
    """

    def __init__(self, options: BrokerOptions) -> None:
        self.options = options
        self.data_path = options.data_path or os.getcwd()
        self.crash_safe = options.sync_every == 1
        self.queues: dict[str, DiskQueue] = {}
        self.backends: dict[str, DiskBackend] = {}
        self.write_error = ""  # text of the last failed write, for E_PUB_FAILED
        self._write_failure: str | None = None  # while the last write failed
        # Failures that repeat until they clear: each is logged when it starts and when
        # it clears, not on every retry.
        self._sync_failure = StandingFailure("sync disk queues", log)
        self._metadata_failure = StandingFailure("persist metadata", log)
        self._read_failure = StandingFailure("read from disk queues", log)
        # Backends a read failed on since the last tick, by name: retried on the next one.
        self._unreadable: dict[str, DiskBackend] = {}
        self._lock = DataPathLock(self.data_path)
        self._uncommitted: list[DiskBackend] = []
        # Queues that may have something to sync (and backends whose due times may have
        # changed), by name: what the sync tick and a crash-safe publisher's sync look at,
        # so their cost follows what changed rather than how many queues exist.
        self._changed: dict[str, DiskBackend] = {}
        self._wakeup = trio.Event()
        # A commit left a queue due for an fsync: the next wake-up looks for such queues.
        self._sync_requested = False
        # nsqd.dat, re-encoded a changed topic at a time (see MetadataFile).
        self.metadata = MetadataFile(NSQ_COMPAT_VERSION)
        # Syncs whose fsyncs are running: a write made before one began may be covered only
        # by it, so waiting for durability means waiting for them too.
        self._syncs_running: set[trio.Event] = set()
        self._describe: Callable[[str], TopicMetadata | None] | None = None

    @property
    def health_error(self) -> str | None:
        """nsqd's health: why /ping answers NOK (the last write failed, or syncs are failing
        and retried); None while all is well."""
        return self._write_failure or self._sync_failure.text

    # -- start and stop ------------------------------------------------------------------------

    def open(self) -> list[TopicMetadata] | None:
        """Lock the data path and read nsqd.dat (None on a fresh start).

        Raises:
            MetadataError: the path is locked by another broker or nsqd.dat is unreadable.
        """
        self._lock.acquire()
        try:
            return read_metadata(self.data_path)
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        """Give up the data path without writing anything (start-up failed)."""
        self._lock.release()

    def close(self, metadata: bytes) -> None:
        """At shutdown: write and fsync every queue, rewrite nsqd.dat, release the lock."""
        try:
            for name, queue in list(self.queues.items()):
                try:
                    queue.close()
                    _write_due(_due_path(self.data_path, name), self.backends[name].due)
                except OSError as error:
                    log.error("failed to close disk queue %s - %s", name, error)
            try:
                write_metadata(self.data_path, metadata)
            except OSError as error:  # as nsqd's Exit(): said, and the exit goes on
                log.error("failed to persist metadata - %s", error)
        finally:
            self._lock.release()

    # -- queues ----------------------------------------------------------------------------------

    def backend(self, queue_name: str) -> DiskBackend:
        """The disk backend for a topic (``name``) or channel (``topic:channel``)."""
        backend = self.backends.get(queue_name)
        if backend is None:
            options = self.options
            queue = DiskQueue(
                queue_name,
                self.data_path,
                max_bytes_per_file=options.max_bytes_per_file,
                min_msg_size=RECORD_HEADER_SIZE,
                max_msg_size=options.max_msg_size + RECORD_HEADER_SIZE,
                sync_every=options.sync_every,
                logger=log,
            )
            due = _read_due(_due_path(self.data_path, queue_name))
            # Only channels pin: a topic's records move on to channel queues, which are
            # synced before the topic's (see sync).
            pin = self.crash_safe and ":" in queue_name
            backend = DiskBackend(
                queue,
                self._note_uncommitted,
                due,
                pin=pin,
                name=queue_name,
                on_change=self._note_changed,
                on_read_error=self._note_unreadable,
            )
            self.queues[queue_name] = queue
            self.backends[queue_name] = backend
            # Loading can leave the queue with something to sync (a depth reset after a crash).
            self._note_changed(backend)
        return backend

    @property
    def changed_count(self) -> int:
        """Queues noted as changed since their last sync (what the next sync looks at)."""
        return len(self._live_changed())

    def _note_changed(self, backend: DiskBackend | None) -> None:
        if backend is not None:
            self._changed[backend.name] = backend

    def _note_unreadable(self, backend: DiskBackend, error: OSError) -> None:
        self._unreadable[backend.name] = backend
        self._read_failure.failed(error)

    def _note_uncommitted(self, backend: DiskBackend) -> None:
        self._uncommitted.append(backend)

    def delete(self, queue_name: str) -> None:
        """Remove a deleted topic's or channel's queue files."""
        queue = self.queues.pop(queue_name, None)
        self.backends.pop(queue_name, None)
        self._changed.pop(queue_name, None)
        if queue is not None:
            queue.delete()
        try:
            _write_due(_due_path(self.data_path, queue_name), DueTimes())
        except OSError as error:
            log.error("failed to remove deferred due times of %s - %s", queue_name, error)

    def commit(self, *, keep_failed: bool) -> bool:
        """Write what the operation just finished put into disk backends.

        Returns False when a write failed: with ``keep_failed`` (already accepted messages)
        those stay in memory; without it (a publish) they are dropped and the caller answers
        E_PUB_FAILED.
        """
        if not self._uncommitted:
            return True
        backends, self._uncommitted = self._uncommitted, []
        ok = True
        for backend in backends:
            if backend.commit(keep_failed=keep_failed):
                if backend.queue.needs_sync():
                    self._sync_requested = True
                    self._wakeup.set()
            else:
                ok = False
                self.write_error = backend.last_error
        self._write_failure = None if ok else self.write_error
        return ok

    # -- background work -----------------------------------------------------------------------

    def metadata_changed(self, topic_name: str) -> None:
        """The topic, its channels or a paused flag changed: rewrite nsqd.dat soon.

        Changes coalesce: one rewrite runs at a time, and the next one carries every change
        made meanwhile, so a burst of creates costs a few rewrites, not one each.
        """
        self.metadata.topic_changed(topic_name)
        self._wakeup.set()

    async def sync(self, queues: Iterable[DiskQueue] | None = None) -> None:
        """fsync the given queues (default: every queue with unsynced changes) and persist
        their metadata, in a worker thread.

        Channel queues are synced before topic queues: a message moved from a topic to its
        channels is on disk in the channel before the topic records that it let it go.

        Error handling: a queue, due-times file or nsqd.dat that fails with an OSError (out
        of descriptors, disk full) is left to sync again later; the others are done.
        """
        changed = self._live_changed()
        chosen = [queue for _, queue in changed if queue.dirty()] if queues is None else queues
        ordered = sorted(chosen, key=lambda queue: ":" not in queue.name)
        metadata = None
        if self.crash_safe and self.metadata.pending and self._describe is not None:
            # Crash-safe: a new topic or channel is in nsqd.dat before its first OK.
            metadata = self.metadata.encode(self._describe)
        due_files = [(b, b.due.snapshot()) for b, _ in changed if b.due_changed]
        for backend, _ in due_files:
            backend.due_changed = False
        jobs: list[tuple[DiskQueue, SyncJob]] = []
        errors: list[OSError] = []
        for queue in ordered:
            try:
                jobs.append((queue, queue.prepare_sync()))
            except OSError as error:  # it stays dirty, so it is synced next time
                errors.append(error)
        # What is still dirty (not chosen this time) stays noted for the next sync.
        self._changed = {b.name: b for b, queue in changed if queue.dirty()}
        earlier = list(self._syncs_running)
        done = trio.Event()
        self._syncs_running.add(done)
        try:
            errors += await self._write_in_thread(metadata, due_files, jobs)
        finally:
            done.set()
            self._syncs_running.discard(done)
        if errors:
            self._sync_failure.failed(errors[0], len(errors))
        else:
            self._sync_failure.cleared()
        for running in earlier:
            await running.wait()

    def _live_changed(self) -> list[tuple[DiskBackend, DiskQueue]]:
        """The noted backends whose queues still exist, with their queues, oldest first."""
        backends, queues = self.backends, self.queues
        return [(b, queues[name]) for name, b in self._changed.items() if backends.get(name) is b]

    async def _write_in_thread(
        self,
        metadata: bytes | None,
        due_files: list[tuple[DiskBackend, DueTimes]],
        jobs: list[tuple[DiskQueue, SyncJob]],
    ) -> list[OSError]:
        """In a worker thread: nsqd.dat, then due times, then the queues' sync jobs (a due
        time without its record is harmless, a record without its due time would be
        delivered early). What fails is left to do again; returns the errors but nsqd.dat's.
        """
        work: list[Callable[[], None]] = []
        if metadata is not None:
            work.append(partial(write_metadata, self.data_path, metadata))
        work += [partial(_write_due, _due_path(self.data_path, b.name), d) for b, d in due_files]
        work += [job.run for _, job in jobs]
        if not work:
            return []
        results = await trio.to_thread.run_sync(_run_jobs, work)
        if metadata is not None:
            self._metadata_written(results.pop(0))
        errors: list[OSError] = []
        for (backend, _), error in zip(due_files, results[: len(due_files)], strict=True):
            if error is not None:
                backend.due_changed = True
                self._note_changed(backend)
                errors.append(error)
        for (queue, _), error in zip(jobs, results[len(due_files) :], strict=True):
            if error is not None:
                queue.sync_failed()
                self._note_changed(self.backends.get(queue.name))
                errors.append(error)
        return errors

    def _retry_reads(self, retry_reads: Callable[[list[str]], None]) -> None:
        backends = self.backends
        failed = [name for name, b in self._unreadable.items() if backends.get(name) is b]
        self._unreadable = {}
        if failed:
            retry_reads(failed)  # failing again, they are noted again
        else:
            self._read_failure.cleared()

    def _metadata_written(self, error: OSError | None) -> None:
        """nsqd.dat was written, or failed to be: then the run loop tries again on a tick."""
        if error is None:
            self._metadata_failure.cleared()
        else:
            self._metadata_failure.failed(error)

    async def _rewrite_metadata(self, data: bytes) -> None:
        # Counted as a running sync: a crash-safe publisher's sync then waits for it, so a
        # topic or channel its publish created is in nsqd.dat before the OK.
        done = trio.Event()
        self._syncs_running.add(done)
        try:
            await trio.to_thread.run_sync(write_metadata, self.data_path, data)
        except OSError as error:
            self._metadata_written(error)
        else:
            self._metadata_written(None)
        finally:
            done.set()
            self._syncs_running.discard(done)

    async def run(
        self,
        describe: Callable[[str], TopicMetadata | None],
        retry_reads: Callable[[list[str]], None] = lambda queue_names: None,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Sync queues and rewrite nsqd.dat in the background until cancelled.

        What failed (out of descriptors, disk full) is tried again on each ``--sync-timeout``
        tick until it works; syncs that commits ask for wait for the tick meanwhile.

        Args:
            describe: a topic's current metadata by name (None once it is gone).
            retry_reads: on a tick, given the queues a read failed on since the last one,
                has whoever waited on them try again.
        """
        self._describe = describe
        task_status.started()
        interval = self.options.sync_timeout
        next_tick = trio.current_time() + interval
        while True:
            with trio.move_on_at(next_tick):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            ticked = trio.current_time() >= next_tick
            if ticked:
                next_tick = trio.current_time() + interval
                self._retry_reads(retry_reads)
            if self.metadata.pending or (ticked and self._metadata_failure.text is not None):
                await self._rewrite_metadata(self.metadata.encode(describe))
            # Looking at every queue costs time in proportion to the graph: only on the tick
            # or after a commit asked for it, not on each nsqd.dat rewrite.
            if ticked or (self._sync_requested and self._sync_failure.text is None):
                self._sync_requested = False
                due = [
                    queue
                    for _, queue in self._live_changed()
                    if queue.needs_sync() or (ticked and queue.dirty())
                ]
                await self.sync(due)

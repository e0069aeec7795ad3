"""A topic's or channel's overflow kept in a disk queue, in nsqd's record format.

Records are nsqd's serialized messages (nsqd/message.go ``WriteTo``): timestamp, attempts, id,
body. Puts collect in memory and reach the disk queue at the end of the operation that made
them (:meth:`DiskBackend.commit`), so a failed write maps to exactly one operation: a
publisher gets E_PUB_FAILED for messages that were never accepted, while messages already
accepted (requeued, timed out) that cannot be written stay in memory instead of being lost.
No trio here.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from ..core._message import RECORD_HEADER_SIZE, Message, decode_record, encode_record
from ._duetimes import DueTimes

__all__ = ["RECORD_HEADER_SIZE", "DiskBackend", "QueueFile", "decode_record", "encode_record"]

log = logging.getLogger("trinsq.broker")


def _as_message(item: Message | bytes) -> Message:
    return decode_record(item) if isinstance(item, bytes) else item


def _log_read_error(backend: DiskBackend, error: OSError) -> None:
    log.error("failed to read from disk queue - %s", error)


class QueueFile(Protocol):
    """The part of :class:`trinsq.broker.storage._diskqueue.DiskQueue` a backend uses."""

    @property
    def depth(self) -> int: ...

    @property
    def has_unread(self) -> bool: ...

    def put(self, record: bytes) -> None: ...

    def put_many(self, records: Iterable[bytes]) -> None: ...

    def flush(self) -> None: ...

    def pop(self) -> bytes | None: ...

    def empty(self) -> None: ...

    def needs_sync(self) -> bool: ...

    def pop_pinned(self) -> tuple[bytes, tuple[int, int]] | None: ...

    def pop_buffered(self, limit: int) -> list[bytes]: ...

    def release(self, cursor: tuple[int, int]) -> None: ...


class DiskBackend:
    """Overflow of one topic or channel, kept in a go-diskqueue compatible queue.

    Args:
        queue: the disk queue.
        on_pending: called once when the first uncommitted message arrives, so the owner
            knows a commit is due.
        due: Unix ns due times of deferred messages saved in this queue, by message id.
        clock_ns: wall clock, for turning due times back into delays.
        pin: crash-safe mode: popped records stay on disk until their message is released
            (finished, or rewritten at shutdown), and due times are saved with every sync.
        name: the queue's name, for the owner.
        on_change: called before each operation that may leave the queue or the due times
            with something to sync, so the owner syncs only what changed instead of looking
            at every queue.
        on_read_error: told of each error reading the queue (out of descriptors, EIO), so
            the owner has whoever waited on it try again later (by default: logged).

    Attributes:
        due: deferred messages written at shutdown keep their due time here (saved beside the
            queue by the storage); a message popped before its due time comes out with the
            remaining delay in ``defer_ms``.
    """

    def __init__(
        self,
        queue: QueueFile,
        on_pending: Callable[[DiskBackend], None],
        due: Mapping[bytes, int] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        *,
        pin: bool = False,
        name: str = "",
        on_change: Callable[[DiskBackend], None] = lambda backend: None,
        on_read_error: Callable[[DiskBackend, OSError], None] = _log_read_error,
    ) -> None:
        self.name = name
        self.queue = queue
        self.due = DueTimes(due)
        self.due_changed = False
        self.durable_deferral = pin
        self._clock_ns = clock_ns
        self._on_pending = on_pending
        self._on_change = on_change
        self._on_read_error = on_read_error
        # Messages, or their records ready made (see put_records).
        self._pending: list[Message | bytes] = []
        # Accepted messages whose write failed (disk full): served from memory, never dropped.
        self._stranded: deque[Message | bytes] = deque()
        self._last_pin = (0, 0)
        self.write_errors = 0
        self.read_errors = 0
        self.last_error = ""
        self.decode_errors = 0

    @property
    def depth(self) -> int:
        # A queue salvaging records after a crash can count below zero until it catches up;
        # while records remain it counts at least one, so no consumer is parked on a channel
        # that looks empty (the pump only waits when the depth is 0).
        queue = self.queue
        floor = 1 if queue.has_unread else 0
        return max(queue.depth, floor) + len(self._pending) + len(self._stranded)

    def put(self, message: Message) -> None:
        if not self._pending:
            self._on_pending(self)
        self._pending.append(message)

    def put_many(self, messages: list[Message]) -> None:
        if messages and not self._pending:
            self._on_pending(self)
        self._pending.extend(messages)

    def put_records(self, records: list[bytes]) -> None:
        """As :meth:`put_many` for messages given as their records (see encode_record)."""
        if records and not self._pending:
            self._on_pending(self)
        self._pending.extend(records)

    def commit(self, *, keep_failed: bool) -> bool:
        """Write the pending messages to the queue; return whether that worked.

        On a write error the queue is left as it was before these messages. With
        ``keep_failed`` they are kept in memory (they were already accepted); without it they
        are dropped, and the caller reports the failure to their publisher.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return True
        self._on_change(self)
        try:
            self.queue.put_many(
                [item if item.__class__ is bytes else encode_record(item) for item in pending]  # type: ignore[arg-type]
            )
            self.queue.flush()
            for message in pending:
                # A pinned message written anew (at shutdown) lets go of its old record.
                if isinstance(message, Message) and message.pin is not None:
                    self.queue.release(message.pin)
                    message.pin = None
        except OSError as error:
            self.write_errors += 1
            self.last_error = str(error)
            log.error("failed to write %d messages to disk - %s", len(pending), error)
            if keep_failed:
                self._stranded.extend(pending)
            return False
        return True

    def pop(self) -> Message | None:
        # Oldest first: what is on disk, then what could not be written, then what is not
        # written yet.
        # Ask the queue even when its depth says 0: after a crash the recorded depth can be
        # short of what the reader salvages from the files.
        while (record := self._pop_record()) is not None:
            try:
                message = decode_record(record)
            except ValueError as error:
                self.decode_errors += 1  # nsqd logs and drops such a record too
                log.error("failed to decode message - %s", error)
                continue
            if self.durable_deferral:
                message.pin = self._last_pin
            if self.due:
                # Pinned: the due time must outlive a crash until the message is finished.
                due = (
                    self.due.get(message.id)
                    if self.durable_deferral
                    else self.due.pop(message.id, None)
                )
                if due is not None:
                    remaining_ns = due - self._clock_ns()
                    if remaining_ns > 0:
                        message.defer_ms = -(-remaining_ns // 1_000_000)
            return message
        if self._stranded:
            return _as_message(self._stranded.popleft())
        if self._pending:
            return _as_message(self._pending.pop(0))
        return None

    def pop_many(self, limit: int) -> list[Message]:
        messages: list[Message] = []
        plain = not self.durable_deferral and not self.due
        while len(messages) < limit and (message := self.pop()) is not None:
            messages.append(message)
            if plain:
                # The rest of the read-ahead chunk, without pop's per-record bookkeeping.
                for record in self.queue.pop_buffered(limit - len(messages)):
                    try:
                        messages.append(decode_record(record))
                    except ValueError as error:
                        self.decode_errors += 1
                        log.error("failed to decode message - %s", error)
        return messages

    def _pop_record(self) -> bytes | None:
        self._on_change(self)
        try:
            if not self.durable_deferral:
                return self.queue.pop()
            popped = self.queue.pop_pinned()
            if popped is None:
                return None
            record, self._last_pin = popped
            return record
        except OSError as error:
            # Transient (EMFILE, EIO...): the record stays on disk for the next try, and the
            # consumer that asked is not the one to pay for it.
            self.read_errors += 1
            self.last_error = str(error)
            self._on_read_error(self, error)
            return None

    def defer_until(self, message_id: bytes, due_ns: int) -> None:
        self.due[message_id] = due_ns
        self.due_changed = True
        self._on_change(self)

    def defer_many(self, message_ids: Sequence[bytes], due_ns: int) -> None:
        self.due.add_many(message_ids, due_ns)
        self.due_changed = True
        self._on_change(self)

    def release(self, message: Message) -> None:
        if message.pin is not None:
            self._on_change(self)
            self.queue.release(message.pin)
            message.pin = None
            if self.due.pop(message.id, None) is not None:
                self.due_changed = True

    def empty(self) -> None:
        self._pending.clear()
        self._stranded.clear()
        self.due.clear()
        self.queue.empty()

"""Where a topic or channel puts messages its memory queue has no room for.

nsqd spills to a disk queue (non-ephemeral; see _diskbackend.py) or drops (ephemeral, its
"dummy" backend). A graph built without a data path keeps overflow in memory instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

from ._message import Message, decode_record

__all__ = ["Backend", "DiscardBackend", "MemoryPersistence", "OverflowBackend", "Persistence"]


class Backend(Protocol):
    """The seam a disk queue will fill: synchronous put, synchronous pop of a read-ahead."""

    @property
    def depth(self) -> int: ...

    def put(self, message: Message) -> None: ...

    def put_many(self, messages: list[Message]) -> None:
        """As many :meth:`put` calls, in order."""

    def put_records(self, records: list[bytes]) -> None:
        """As :meth:`put_many` for messages given as nsqd's records (see encode_record)."""

    def pop(self) -> Message | None: ...

    def pop_many(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages, as that many :meth:`pop` calls would return them."""

    def empty(self) -> None: ...

    def defer_until(self, message_id: bytes, due_ns: int) -> None:
        """Remember that the message with this id is not due before Unix time ``due_ns``."""

    def defer_many(self, message_ids: Sequence[bytes], due_ns: int) -> None:
        """:meth:`defer_until` for each of ``message_ids`` (kept compact where it can)."""

    @property
    def durable_deferral(self) -> bool:
        """Whether deferred messages must go through this backend to survive a crash."""

    def release(self, message: Message) -> None:
        """The message is finished: what was kept for it on disk may go."""


class Persistence(Protocol):
    """Where the graph gets backends from and reports changes to (the broker's Storage)."""

    @property
    def write_error(self) -> str:
        """The text of the last failed write (what E_PUB_FAILED says)."""

    def backend(self, queue_name: str) -> Backend:
        """The backend of a topic (``name``) or channel (``topic:channel``)."""

    def delete(self, queue_name: str) -> None:
        """The topic or channel was deleted: remove what is kept for it."""

    def metadata_changed(self, topic_name: str) -> None:
        """The topic, its channels or their paused flags changed."""

    def commit(self, *, keep_failed: bool) -> bool:
        """Write what the current operation put into backends (see Storage.commit)."""


class OverflowBackend:
    """Keeps overflow in memory, in order (for a graph without a data path, e.g. in tests)."""

    def __init__(self) -> None:
        self._messages: deque[Message] = deque()

    @property
    def depth(self) -> int:
        return len(self._messages)

    def put(self, message: Message) -> None:
        self._messages.append(message)

    def put_many(self, messages: list[Message]) -> None:
        self._messages.extend(messages)

    def put_records(self, records: list[bytes]) -> None:
        self._messages.extend(map(decode_record, records))

    def pop(self) -> Message | None:
        return self._messages.popleft() if self._messages else None

    def pop_many(self, limit: int) -> list[Message]:
        messages = self._messages
        return [messages.popleft() for _ in range(min(limit, len(messages)))]

    def empty(self) -> None:
        self._messages.clear()

    def defer_until(self, message_id: bytes, due_ns: int) -> None:
        pass  # nothing outlives this process here

    def defer_many(self, message_ids: Sequence[bytes], due_ns: int) -> None:
        pass

    durable_deferral = False

    def release(self, message: Message) -> None:
        pass


class DiscardBackend:
    """nsqd's backend for ephemeral topics and channels: overflow is dropped."""

    depth = 0

    def put(self, message: Message) -> None:
        pass

    def put_many(self, messages: list[Message]) -> None:
        pass

    def put_records(self, records: list[bytes]) -> None:
        pass

    def pop(self) -> Message | None:
        return None

    def pop_many(self, limit: int) -> list[Message]:
        return []

    def empty(self) -> None:
        pass

    def defer_until(self, message_id: bytes, due_ns: int) -> None:
        pass

    def defer_many(self, message_ids: Sequence[bytes], due_ns: int) -> None:
        pass

    durable_deferral = False

    def release(self, message: Message) -> None:
        pass


class MemoryPersistence:
    """Persistence for a graph with no data path: overflow stays in memory."""

    write_error = ""

    def backend(self, queue_name: str) -> Backend:
        return OverflowBackend()

    def delete(self, queue_name: str) -> None:
        pass

    def metadata_changed(self, topic_name: str) -> None:
        pass

    def commit(self, *, keep_failed: bool) -> bool:
        return True

"""A channel's deferred messages: DPUB and REQ with a delay, each until its due time."""

from __future__ import annotations

import heapq
import itertools

from ._message import Message

__all__ = ["DeferredMessages"]

_sequence = itertools.count()


class DeferredMessages:
    """Deferred messages by id, and their due times (monotonic seconds), earliest first.

    Attributes:
        messages: what waits, by message id.
    """

    def __init__(self) -> None:
        self.messages: dict[bytes, Message] = {}
        self._due: dict[bytes, float] = {}
        # Entries of messages released or replaced since are skipped when they come up.
        self._heap: list[tuple[float, int, Message]] = []

    def add(self, message: Message, due: float) -> bool:
        """Defer ``message`` until ``due``; False if its id already waits here (nsqd refuses
        a second copy: "ID already deferred")."""
        if message.id in self.messages:
            return False
        self.messages[message.id] = message
        self._due[message.id] = due
        heapq.heappush(self._heap, (due, next(_sequence), message))
        return True

    def due_at(self, message_id: bytes) -> float:
        return self._due[message_id]

    def pop_due(self, now: float) -> list[Message]:
        """Take out the messages due by ``now``, in due order."""
        heap = self._heap
        released: list[Message] = []
        while heap and heap[0][0] <= now:
            due, _, message = heapq.heappop(heap)
            if self._due.get(message.id) != due:
                continue
            del self.messages[message.id]
            del self._due[message.id]
            released.append(message)
        return released

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        self.messages.clear()
        self._due.clear()
        self._heap.clear()

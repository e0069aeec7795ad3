"""Where a topic or channel puts messages its memory queue has no room for.

nsqd spills to a disk queue (non-ephemeral) or drops (ephemeral, its "dummy" backend). The
disk queue arrives with the durability issue; until then a non-ephemeral topic or channel
keeps its overflow in an in-memory queue so nothing accepted is lost, at the cost of memory.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from ._message import Message

__all__ = ["Backend", "DiscardBackend", "OverflowBackend"]


class Backend(Protocol):
    """The seam a disk queue will fill: synchronous put, synchronous pop of a read-ahead."""

    @property
    def depth(self) -> int: ...

    def put(self, message: Message) -> None: ...

    def pop(self) -> Message | None: ...

    def empty(self) -> None: ...


class OverflowBackend:
    """Keeps overflow in memory, in order. Interim stand-in for the disk queue."""

    def __init__(self) -> None:
        self._messages: deque[Message] = deque()

    @property
    def depth(self) -> int:
        return len(self._messages)

    def put(self, message: Message) -> None:
        self._messages.append(message)

    def pop(self) -> Message | None:
        return self._messages.popleft() if self._messages else None

    def empty(self) -> None:
        self._messages.clear()


class DiscardBackend:
    """nsqd's backend for ephemeral topics and channels: overflow is dropped."""

    depth = 0

    def put(self, message: Message) -> None:
        pass

    def pop(self) -> Message | None:
        return None

    def empty(self) -> None:
        pass

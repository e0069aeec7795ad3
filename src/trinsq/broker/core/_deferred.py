"""A channel's deferred messages: DPUB, MPUB with a delay and REQ with a delay, each until its
due time.

A deferred publish is kept as it came: the frames the topic wrote into its blocks (see
_frames.py), one heap entry per publish step, as its messages share their due time. A message
deferred on its own (REQ with a delay, or read back from disk) is a :class:`Message` with an
entry of its own, indexed by id so a second copy is refused as nsqd refuses it. So a deferred
MPUB of a million messages costs its frames and a few hundred small objects, not a million.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Mapping

from ._backend import Backend
from ._frames import FrameRuns, frame_message, run_ids, run_offsets, run_records
from ._message import Message

__all__ = ["DeferredFrames", "DeferredMessages", "put_deferred_records"]

_sequence = itertools.count()


def put_deferred_records(backend: Backend, runs: FrameRuns, due_ns: int) -> None:
    """The frames' messages to ``backend``, never delivered, each due at Unix ``due_ns``."""
    for block, start, end, _ in runs:
        backend.defer_many(run_ids(block, start, end), due_ns)
        backend.put_records(run_records(block, start, end))


class DeferredFrames:
    """Frames of one publish step, due together; ``live`` until released or dropped."""

    __slots__ = ("count", "live", "runs")

    def __init__(self, runs: FrameRuns) -> None:
        self.runs = runs
        self.count = sum(run[3] for run in runs)
        self.live = True

    def messages(self) -> Iterator[Message]:
        """Its messages, never delivered (attempts 0)."""
        for block, start, end, _ in self.runs:
            for offset in run_offsets(block, start, end):
                yield frame_message(block, offset, 0)


class DeferredMessages:
    """Deferred messages and their due times (monotonic seconds), earliest first.

    Attributes:
        messages: what waits, by message id (a read-only view; building it is not cheap
            for deferred frames, so the broker itself only takes its length).
    """

    def __init__(self) -> None:
        self._singles: dict[bytes, Message] = {}
        self._due: dict[bytes, float] = {}
        # Entries of messages released or replaced since are skipped when they come up.
        self._heap: list[tuple[float, int, Message | DeferredFrames]] = []
        self._framed = 0  # messages waiting as frames
        self.messages = DeferredView(self)

    def __len__(self) -> int:
        return len(self._singles) + self._framed

    def add(self, message: Message, due: float) -> bool:
        """Defer ``message`` until ``due``; False if its id already waits here (nsqd refuses
        a second copy: "ID already deferred")."""
        if message.id in self._singles:
            return False
        self._singles[message.id] = message
        self._due[message.id] = due
        heapq.heappush(self._heap, (due, next(_sequence), message))
        return True

    def add_frames(self, runs: FrameRuns, due: float) -> None:
        """Defer newly published messages, given as runs of the topic's frames, until
        ``due`` (their ids are new, so none can wait here already)."""
        frames = DeferredFrames(runs)
        self._framed += frames.count
        heapq.heappush(self._heap, (due, next(_sequence), frames))

    def pop_due(self, now: float) -> list[Message | DeferredFrames]:
        """Take out what is due by ``now``, in due order."""
        heap = self._heap
        released: list[Message | DeferredFrames] = []
        while heap and heap[0][0] <= now:
            due, _, entry = heapq.heappop(heap)
            if isinstance(entry, DeferredFrames):
                if entry.live:
                    entry.live = False
                    self._framed -= entry.count
                    released.append(entry)
                continue
            if self._due.get(entry.id) != due:
                continue
            del self._singles[entry.id]
            del self._due[entry.id]
            released.append(entry)
        return released

    def single(self, message_id: bytes) -> Message | None:
        """The message deferred on its own with this id, if any."""
        return self._singles.get(message_id)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def waiting(self) -> Iterator[tuple[float, Message | DeferredFrames]]:
        """What waits, with its due time, in no particular order."""
        for due, _, entry in self._heap:
            if isinstance(entry, DeferredFrames):
                if entry.live:
                    yield due, entry
            elif self._due.get(entry.id) == due:
                yield due, entry

    def persist(self, backend: Backend, now: float, now_ns: int) -> None:
        """At shutdown: everything waiting to ``backend``, with its due time as Unix ns
        (``now`` on the monotonic clock is ``now_ns``; what is overdue is due at once)."""
        for due, entry in self.waiting():
            due_ns = now_ns + max(round((due - now) * 1e9), 0)
            if isinstance(entry, Message):
                backend.defer_until(entry.id, due_ns)
                backend.put(entry)
            else:
                put_deferred_records(backend, entry.runs, due_ns)

    def clear(self) -> None:
        for _, _, entry in self._heap:
            if isinstance(entry, DeferredFrames):
                entry.live = False
        self._singles.clear()
        self._due.clear()
        self._heap.clear()
        self._framed = 0


class DeferredView(Mapping[bytes, Message]):
    """The deferred messages by id, as stats, tests and debugging see them."""

    __slots__ = ("_deferred",)

    def __init__(self, deferred: DeferredMessages) -> None:
        self._deferred = deferred

    def __len__(self) -> int:
        return len(self._deferred)

    def _items(self) -> Iterator[tuple[bytes, Message]]:
        for _, entry in self._deferred.waiting():
            if isinstance(entry, Message):
                yield entry.id, entry
            else:
                for message in entry.messages():
                    yield message.id, message

    def __iter__(self) -> Iterator[bytes]:
        return (message_id for message_id, _ in self._items())

    def __getitem__(self, message_id: bytes) -> Message:
        single = self._deferred.single(message_id)
        if single is not None:
            return single
        for candidate, message in self._items():
            if candidate == message_id:
                return message
        raise KeyError(message_id)

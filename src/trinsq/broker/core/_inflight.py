"""A channel's in-flight records and their deadlines (nsqd's inFlightPQ, made light).

One small tuple per delivered message (:data:`InFlight`) and one heap entry per take: the
messages of a take share their deadline, so the entry holds the take's records. A TOUCH
replaces the message's record with a new one and pushes an entry of its own, so an entry's
record is live only while it is still the one in the channel's table; entries and records
left behind by FINs are dropped lazily, and the heap rebuilt once they outnumber the live
ones (:meth:`Deadlines.compact`).
"""

from __future__ import annotations

import heapq
import itertools
import struct
from collections.abc import Callable
from typing import Final

from ._frames import Block, frame_message, frame_timestamp
from ._message import Message

__all__ = [
    "DEADLINE",
    "DELIVERED_AT",
    "ID",
    "OWNER",
    "Deadlines",
    "InFlight",
    "in_flight_message",
    "in_flight_timestamp",
    "take_run",
    "take_run_sampled",
]

# (id, owner, deadline, delivered_at, source, offset): ``source`` is the block holding the
# message's frame at ``offset`` for a first delivery (attempts 1), else the Message itself.
InFlight = tuple[bytes, int, float, float, Block | Message, int]
ID: Final = 0
OWNER: Final = 1
DEADLINE: Final = 2
DELIVERED_AT: Final = 3

# Rebuild the heap once the records it holds outnumber the live ones by this factor.
_COMPACT_FACTOR: Final = 2
_COMPACT_MIN: Final = 1024
_sequence = itertools.count()
_SIZE_ID: Final = struct.Struct(">I14x16s")  # a message frame's size and id
# What the records of one take share: (owner, deadline, delivered_at).
Take = tuple[int, float, float]


def in_flight_message(record: InFlight) -> Message:
    """The message of a record, to requeue or persist it."""
    source = record[4]
    if isinstance(source, Message):
        return source
    return frame_message(source, record[5])


def in_flight_timestamp(record: InFlight) -> int:
    source = record[4]
    if isinstance(source, Message):
        return source.timestamp
    return frame_timestamp(source, record[5])


def take_run(
    block: Block,
    start: int,
    count: int,
    take: Take,
    in_flight: dict[bytes, InFlight],
    taken: list[InFlight],
) -> int:
    """Put the ``count`` frames from ``start`` in flight (a record each in ``in_flight`` and
    ``taken``); return where they end."""
    owner, deadline, now = take
    unpack = _SIZE_ID.unpack_from
    add = taken.append
    position = start
    for _ in range(count):
        size, message_id = unpack(block, position)
        record = (message_id, owner, deadline, now, block, position)
        in_flight[message_id] = record
        add(record)
        position += 4 + size
    return position


def take_run_sampled(
    block: Block,
    start: int,
    count: int,
    take: Take,
    in_flight: dict[bytes, InFlight],
    taken: list[InFlight],
    out: bytearray,
    keep: Callable[[], bool],
) -> tuple[int, int]:
    """As :func:`take_run` for the frames ``keep()`` keeps (the others are dropped for the
    channel, as nsqd samples), appending the kept frames to ``out``; return where the
    ``count`` frames end and how many were kept."""
    owner, deadline, now = take
    unpack = _SIZE_ID.unpack_from
    view = memoryview(block)
    position = start
    kept = 0
    for _ in range(count):
        size, message_id = unpack(block, position)
        stop = position + 4 + size
        if keep():
            record = (message_id, owner, deadline, now, block, position)
            in_flight[message_id] = record
            taken.append(record)
            out += view[position:stop]
            kept += 1
        position = stop
    view.release()
    return position, kept


class Deadlines:
    """The in-flight deadlines of one channel, earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, list[InFlight]]] = []
        self.records = 0  # held by the heap, live or not

    def push(self, deadline: float, records: list[InFlight]) -> None:
        heapq.heappush(self._heap, (deadline, next(_sequence), records))
        self.records += len(records)

    def expired(self, now: float, live: dict[bytes, InFlight]) -> list[InFlight]:
        """Take out the entries due by ``now``; return their records still in ``live``."""
        heap = self._heap
        due: list[InFlight] = []
        while heap and heap[0][0] <= now:
            _, _, records = heapq.heappop(heap)
            self.records -= len(records)
            due += [record for record in records if live.get(record[0]) is record]
        return due

    def next_due(self, live: dict[bytes, InFlight]) -> float | None:
        """The earliest deadline of a live record (dropping entries with none left)."""
        heap = self._heap
        while heap:
            records = heap[0][2]
            if any(live.get(record[0]) is record for record in records):
                return heap[0][0]
            heapq.heappop(heap)
            self.records -= len(records)
        return None

    def compact(self, live: dict[bytes, InFlight]) -> None:
        if self.records <= _COMPACT_MIN or self.records <= _COMPACT_FACTOR * len(live):
            return
        heap = []
        count = 0
        for deadline, sequence, records in self._heap:
            kept = [record for record in records if live.get(record[0]) is record]
            if kept:
                heap.append((deadline, sequence, kept))
                count += len(kept)
        heapq.heapify(heap)
        self._heap = heap
        self.records = count

    def clear(self) -> None:
        self._heap.clear()
        self.records = 0

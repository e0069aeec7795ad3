"""Messages and their IDs (nsqd/message.go, nsqd/guid.go)."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Final

import attrs

__all__ = [
    "RECORD_HEADER_SIZE",
    "Message",
    "MessageIdFactory",
    "decode_record",
    "encode_record",
    "record_header",
]

# nsqd's snowflake layout: (pseudo-ms since 2012-10-28) << 22 | node << 12 | sequence.
_TWEPOCH: Final = 1288834974288
_SEQUENCE_BITS: Final = 12
_NODE_BITS: Final = 10
_SEQUENCE_MASK: Final = (1 << _SEQUENCE_BITS) - 1

# nsqd's serialized message (message.go WriteTo), a disk queue's record: timestamp, attempts,
# id, body.
_RECORD_HEADER: Final = struct.Struct(">qH")
RECORD_HEADER_SIZE: Final = 26


@attrs.define(eq=False, slots=True)
class Message:
    """One message on its way through a topic or channel, where it is not kept as a frame
    (see _frames.py): held by a topic, deferred, requeued, or read back from disk.

    Each channel holds its own copy (sharing the body bytes), as its attempts are its own.
    """

    id: bytes
    body: bytes
    timestamp: int  # Unix ns at publish; clients see it in the frame
    attempts: int = 0
    # DPUB delay carried through the topic to each channel's deferred queue.
    defer_ms: int = 0
    # Crash-safe mode: where this message's record sits in its channel's disk queue, kept
    # there until the message is finished (see DiskQueue.pop_pinned).
    pin: tuple[int, int] | None = None

    def copy_for_channel(self) -> Message:
        return Message(self.id, self.body, self.timestamp, self.attempts, self.defer_ms)


def encode_record(message: Message) -> bytes:
    return (
        _RECORD_HEADER.pack(message.timestamp, message.attempts & 0xFFFF)
        + message.id
        + message.body
    )


def decode_record(record: bytes) -> Message:
    """Raises ValueError for a record shorter than nsqd's minimum (26 bytes)."""
    if len(record) < RECORD_HEADER_SIZE:
        raise ValueError(f"invalid message buffer size ({len(record)})")
    timestamp, attempts = _RECORD_HEADER.unpack_from(record)
    return Message(record[10:26], record[26:], timestamp, attempts)


def record_header(timestamp: int) -> bytes:
    """The start of the record of every never-delivered message published at ``timestamp``:
    add its id and body."""
    return _RECORD_HEADER.pack(timestamp, 0)


class MessageIdFactory:
    """Per-topic generator of nsqd-style message IDs: 16 lowercase hex ASCII bytes.

    Unlike nsqd, it never waits: when 4096 IDs are used up within one ~1 ms tick, or the clock
    steps back, it moves on to the next tick of its own logical clock. IDs stay unique and
    increasing; their time part may run slightly ahead under extreme load.

    Args:
        node_id: 0..1023, the --node-id.
        clock_ns: wall clock in ns (injectable for tests).
    """

    def __init__(self, node_id: int, clock_ns: Callable[[], int] = time.time_ns) -> None:
        if not 0 <= node_id < 1 << _NODE_BITS:
            raise ValueError(f"node id {node_id} out of range")
        self._node_part = node_id << _SEQUENCE_BITS
        self._clock_ns = clock_ns
        self._last_tick = -1
        self._sequence = 0

    def next_ids(self, count: int) -> list[bytes]:
        """Return ``count`` new IDs in increasing order."""
        tick = self._clock_ns() >> 20  # "pseudo-milliseconds", as nsqd divides by 2**20
        if count <= 0:
            return []
        if tick > self._last_tick:
            self._last_tick = tick
            sequence = 0
        else:
            sequence = self._sequence + 1
        # IDs within one tick are consecutive numbers: each run of them is made at once.
        ids: list[bytes] = []
        while True:
            if sequence > _SEQUENCE_MASK:
                self._last_tick += 1
                sequence = 0
            run = _SEQUENCE_MASK + 1 - sequence
            if count < run:
                run = count
            first = (
                ((self._last_tick - _TWEPOCH) << (_SEQUENCE_BITS + _NODE_BITS))
                | self._node_part
                | sequence
            )
            if run == 1:
                ids.append(b"%016x" % first)
            else:
                ids += [b"%016x" % value for value in range(first, first + run)]
            sequence += run
            count -= run
            if not count:
                self._sequence = sequence - 1
                return ids

    def next_id(self) -> bytes:
        return self.next_ids(1)[0]

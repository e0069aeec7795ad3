"""Queued messages kept as ready-to-send V2 message frames in large blocks shared by channels.

A message published to a topic that can deliver is written once, as the very frame a consumer
gets on its first delivery (``[size][type 2][timestamp][attempts 1][id][body]``, see
protocol/_frames.py), into the topic's current block: an anonymous mmap of
:data:`BLOCK_SIZE` bytes, whose pages the kernel maps only once written and unmaps when the
last reference to the block goes. Every channel of the topic then holds a :class:`Run` of
those frames in its queue (its own bookkeeping, the topic's bytes), so ten channels cost one
copy of each body, and a consumer's take copies a whole run into its output buffer in one
slice. A message that comes back (REQ, timeout) is a :class:`Message` again.

A frame minus its 8-byte header is nsqd's disk record (message.go ``WriteTo``) but for the
attempts, which a queued frame has at 1 and a record of an undelivered message at 0:
:func:`run_records` rewrites them.
"""

from __future__ import annotations

import mmap
import struct
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Final

from ._message import Message

__all__ = [
    "BLOCK_SIZE",
    "Block",
    "FrameRuns",
    "FrameWriter",
    "Run",
    "append_run",
    "decode_frames",
    "frame_id",
    "frame_message",
    "frame_timestamp",
    "run_end",
    "run_ids",
    "run_messages",
    "run_offsets",
    "run_records",
]

BLOCK_SIZE: Final = 1 << 20
Block = mmap.mmap
# Runs of consecutive frames in a topic's blocks: ``(block, start, end, count)``.
FrameRuns = list[tuple[Block, int, int, int]]

# size, frame type, timestamp, attempts, id: a message frame up to its body.
_HEADER: Final = struct.Struct(">IiqH16s")
HEADER_SIZE: Final = _HEADER.size  # 34
_PREFIX: Final = struct.Struct(">IiqH")  # the header without the id
_SIZE: Final = struct.Struct(">I")
_SIZE_TIMESTAMP: Final = struct.Struct(">I4xq")
_TIMESTAMP: Final = struct.Struct(">q")
_FRAME_TYPE_MESSAGE: Final = 2
_NEVER_DELIVERED: Final = b"\x00\x00"


class Run:
    """``count`` consecutive message frames at ``block[start:end]``, in one channel's queue."""

    __slots__ = ("block", "count", "end", "start")

    def __init__(self, block: Block, start: int, end: int, count: int) -> None:
        self.block = block
        self.start = start
        self.end = end
        self.count = count


def append_run(queue: deque[Run | Message], block: Block, start: int, end: int, count: int) -> None:
    """Queue ``count`` frames at ``block[start:end]``, extending the last run if they follow
    it in the same block (consecutive publishes make one run)."""
    if queue:
        last = queue[-1]
        if isinstance(last, Run) and last.block is block and last.end == start:
            last.end = end
            last.count += count
            return
    queue.append(Run(block, start, end, count))


class FrameWriter:
    """A topic's blocks: appends frames to the current one, starting a new one when full."""

    def __init__(self) -> None:
        self._block: Block | None = None
        self._used = 0

    def write(
        self, ids: Sequence[bytes], bodies: Sequence[bytes], timestamps: int | Sequence[int]
    ) -> FrameRuns:
        """Write one frame per message (one timestamp for all, or one each); return where
        they went as ``(block, start, end, count)`` runs, in order."""
        # The frames of a block are joined in one bytes and copied in with one slice: a
        # pack_into and a slice assignment per message cost five times as much. Messages of
        # one size and timestamp (an MPUB's, a PUB's) share one packed header prefix.
        block = self._block
        used = self._used
        if len(bodies) == 1 and block is not None and isinstance(timestamps, int):
            # One message that fits (a PUB's): the loop below costs three times as much.
            body = bodies[0]
            size = HEADER_SIZE + len(body)
            if used + size <= len(block):
                prefix = _PREFIX.pack(size - 4, _FRAME_TYPE_MESSAGE, timestamps, 1)
                block[used : used + size] = prefix + ids[0] + body
                self._used = used + size
                return [(block, used, used + size, 1)]
        runs: FrameRuns = []
        start = used
        parts: list[bytes] = []
        append = parts.append
        pack = _PREFIX.pack
        stamps = repeat(timestamps) if isinstance(timestamps, int) else timestamps
        prefix = b""
        last_size = last_stamp = -1
        # stamps may be an endless repeat of one timestamp
        for message_id, body, timestamp in zip(ids, bodies, stamps, strict=False):
            size = HEADER_SIZE + len(body)
            if block is None or used + size > len(block):
                if parts:
                    assert block is not None
                    block[start:used] = b"".join(parts)
                    runs.append((block, start, used, len(parts) // 3))
                    parts.clear()
                block = mmap.mmap(-1, max(BLOCK_SIZE, size))
                used = start = 0
            if size != last_size or timestamp != last_stamp:
                last_size, last_stamp = size, timestamp
                prefix = pack(size - 4, _FRAME_TYPE_MESSAGE, timestamp, 1)
            append(prefix)
            append(message_id)
            append(body)
            used += size
        if parts:
            assert block is not None
            block[start:used] = b"".join(parts)
            runs.append((block, start, used, len(parts) // 3))
        self._block = block
        self._used = used
        return runs


def run_end(block: Block, start: int, count: int) -> int:
    """Where the ``count`` frames from ``start`` end."""
    unpack = _SIZE.unpack_from
    for _ in range(count):
        start += 4 + unpack(block, start)[0]
    return start


def run_offsets(block: Block, start: int, end: int) -> Iterator[int]:
    """Where each frame of the run ``block[start:end]`` begins."""
    unpack = _SIZE.unpack_from
    while start < end:
        yield start
        start += 4 + unpack(block, start)[0]


def frame_id(block: Block, offset: int) -> bytes:
    return block[offset + 18 : offset + 34]


def run_ids(block: Block, start: int, end: int) -> list[bytes]:
    """The message ids of a run's frames."""
    return [frame_id(block, offset) for offset in run_offsets(block, start, end)]


def frame_timestamp(block: Block, offset: int) -> int:
    return int(_TIMESTAMP.unpack_from(block, offset + 8)[0])


def frame_message(block: Block, offset: int, attempts: int = 1) -> Message:
    """The message whose frame is at ``offset``, as a Message with ``attempts``."""
    size, timestamp = _SIZE_TIMESTAMP.unpack_from(block, offset)
    return Message(
        block[offset + 18 : offset + 34],
        block[offset + 34 : offset + 4 + size],
        timestamp,
        attempts,
    )


def run_messages(block: Block, start: int, end: int) -> list[Message]:
    """The never-delivered messages of a run (attempts 0)."""
    messages = []
    while start < end:
        message = frame_message(block, start, 0)
        messages.append(message)
        start += HEADER_SIZE + len(message.body)
    return messages


def run_records(block: Block, start: int, end: int) -> list[bytes]:
    """nsqd's disk records of a run's messages (attempts 0: never delivered)."""
    records = []
    unpack = _SIZE.unpack_from
    while start < end:
        stop = start + 4 + unpack(block, start)[0]
        records.append(block[start + 8 : start + 16] + _NEVER_DELIVERED + block[start + 18 : stop])
        start = stop
    return records


def decode_frames(data: bytes | bytearray) -> list[Message]:
    """The messages of consecutive message frames, as a client reads them."""
    messages = []
    offset = 0
    while offset < len(data):
        size, _, timestamp, attempts, message_id = _HEADER.unpack_from(data, offset)
        body = bytes(data[offset + HEADER_SIZE : offset + 4 + size])
        messages.append(Message(message_id, body, timestamp, attempts))
        offset += 4 + size
    return messages

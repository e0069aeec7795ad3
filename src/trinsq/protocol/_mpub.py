"""MPUB bodies: ``[int32 count]([int32 size][bytes])*`` with nsqd's checks (readMPUB).

A legal MPUB holds up to a million messages (5 MiB of one-byte ones), so no step of reading
one may be proportional to its message count:

- :class:`MpubReader` reads the body out of the receive buffer in steps of at most a given
  number of messages, so the caller can spread a large body over several turns of its event
  loop. A step checks the messages and copies them out as one chunk, noting only where each
  begins and ends;
- :class:`MpubBodies` holds those chunks and makes the messages a slice at a time, when they
  are published, so a million small objects are never made (or freed) at once.
"""

from __future__ import annotations

import enum
import struct
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Final, overload

from ._errors import ProtocolError
from ._limits import Limits

__all__ = ["HttpMpubReader", "MpubBodies", "MpubReader", "MpubStep", "parse_binary_mpub"]

_INT32_BE: Final = struct.Struct(">i")
# Part of an MPUB body: its bytes (whole messages and the 4-byte sizes between them), where
# its first message begins in them, and where each message ends; each of the others begins
# 4 bytes after the one before it ends.
_Chunk = tuple[bytes, int, "array[int]"]
# Messages made at once while iterating over MpubBodies.
_ITER_STEP: Final = 4096
# Bytes left of an announced body that nothing announced (HTTP's MPUB has no outer size).
_UNBOUNDED: Final = 1 << 62


class MpubBodies(Sequence[bytes]):
    """The messages of one MPUB, kept in the chunks of the body they came in.

    Args:
        chunks: pieces of the body, each with where its first message begins and where each
            of its messages ends (the others begin 4 bytes after the one before ends).
    """

    __slots__ = ("_chunks", "_count", "_firsts")

    def __init__(self, chunks: Sequence[_Chunk]) -> None:
        self._chunks = tuple(chunks)
        self._firsts: list[int] = []  # index of each chunk's first message
        count = 0
        for _, _, ends in self._chunks:
            self._firsts.append(count)
            count += len(ends)
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        count = self._count
        if isinstance(index, slice):
            first, stop, stride = index.indices(count)
            if stride != 1:
                return [self[i] for i in range(first, stop, stride)]
            return self._run(first, max(first, stop))
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("MPUB message index out of range")
        return self._run(index, index + 1)[0]

    def _run(self, first: int, stop: int) -> list[bytes]:
        """Messages ``first`` up to ``stop``, made in one pass over their chunks."""
        messages: list[bytes] = []
        chunk = bisect_right(self._firsts, first) - 1
        while first < stop:
            data, first_start, ends = self._chunks[chunk]
            base = self._firsts[chunk]
            begin, end = first - base, min(stop - base, len(ends))
            # Where each message's size field begins: 4 bytes before the message.
            fields = [first_start - 4 if begin == 0 else ends[begin - 1]]
            fields += ends[begin:end].tolist()
            messages += [data[field + 4 : after] for field, after in pairwise(fields)]
            first = base + end
            chunk += 1
        return messages

    def __iter__(self) -> Iterator[bytes]:
        if self._count <= _ITER_STEP:
            return iter(self._run(0, self._count))
        return self._iter_in_steps()

    def _iter_in_steps(self) -> Iterator[bytes]:
        for first in range(0, self._count, _ITER_STEP):
            yield from self._run(first, min(first + _ITER_STEP, self._count))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"MpubBodies({self._count} messages in {len(self._chunks)} chunks)"


class MpubStep(enum.Enum):
    """How a :meth:`MpubReader.read` call ended."""

    DONE = enum.auto()  # every message is checked; call :meth:`MpubReader.bodies`
    NEED_DATA = enum.auto()  # the buffer ends inside the body
    STEP_USED = enum.auto()  # the step's message budget is spent; call again


class _Field(enum.IntEnum):
    BODY_SIZE = 0
    COUNT = 1
    MESSAGE_SIZE = 2
    MESSAGE = 3


class MpubReader:
    """nsqd's readMPUB over a receive buffer, resumable, with its checks, texts and order.

    Each :meth:`read` consumes what it has read: the header fields, and whole messages, which
    it copies out as one chunk. A message whose bytes are still arriving stays in the buffer.

    Args:
        limits: the sizes to enforce.
        framed: the body starts with its own ``[int32 size]`` (TCP MPUB). The messages must
            then fill that size exactly: nsqd never checks that, but it makes the announced
            size really bound what one MPUB can make us buffer. Without it (HTTP
            ``/mpub?binary=true``) bytes after the last message are ignored, as nsqd ignores
            them.

    Errors are raised as soon as the bytes that show them are buffered, never later.
    """

    def __init__(self, limits: Limits, *, framed: bool) -> None:
        self.limits = limits
        self._field = _Field.BODY_SIZE if framed else _Field.COUNT
        self._body_size: int | None = None
        self._remaining = _UNBOUNDED  # bytes of the announced body not yet accounted for
        self._count = 0
        self._read_count = 0  # messages read so far
        self._message_size = 0
        self._chunks: list[_Chunk] = []

    def wanted(self) -> tuple[str, str]:
        """nsqd's error (code, text) if the input ended now."""
        field = self._field
        if field is _Field.BODY_SIZE:
            return "E_BAD_BODY", "MPUB failed to read body size"
        if field is _Field.COUNT:
            return "E_BAD_BODY", "MPUB failed to read message count"
        if field is _Field.MESSAGE_SIZE:
            return "E_BAD_MESSAGE", f"MPUB failed to read message({self._read_count}) body size"
        return "E_BAD_MESSAGE", "MPUB failed to read message body"

    def read(
        self, buffer: bytes | bytearray, pos: int, max_messages: int, *, eof: bool = False
    ) -> tuple[int, MpubStep]:
        """Read on from ``buffer[pos:]``, at most ``max_messages`` messages.

        Returns the position after what was consumed and how the step ended. With ``eof``
        (nothing more will arrive) a truncated body raises instead of returning NEED_DATA.

        Raises:
            ProtocolError: nsqd's fatal MPUB error.
        """
        end = len(buffer)
        if self._field is _Field.BODY_SIZE:
            if end - pos < 4:
                return pos, self._short(eof)
            (size,) = _INT32_BE.unpack_from(buffer, pos)
            pos += 4
            if size <= 0:
                raise ProtocolError("E_BAD_BODY", f"MPUB invalid body size {size}")
            if size > self.limits.max_body_size:
                raise ProtocolError(
                    "E_BAD_BODY", f"MPUB body too big {size} > {self.limits.max_body_size}"
                )
            self._body_size = size
            self._field = _Field.COUNT
        if self._field is _Field.COUNT:
            if end - pos < 4:
                return pos, self._short(eof)
            (count,) = _INT32_BE.unpack_from(buffer, pos)
            pos += 4
            if count <= 0 or count > (self.limits.max_body_size - 4) // 5:
                raise ProtocolError("E_BAD_BODY", f"MPUB invalid message count {count}")
            self._count = count
            if self._body_size is not None:
                self._remaining = self._body_size - 4
            self._field = _Field.MESSAGE_SIZE
        pos, step = self._read_messages(buffer, pos, max_messages)
        if step is MpubStep.NEED_DATA:
            return pos, self._short(eof)
        if step is MpubStep.DONE and self._body_size is not None and self._remaining:
            raise ProtocolError(
                "E_BAD_BODY",
                f"MPUB body size {self._body_size} has {self._remaining} bytes after messages",
            )
        return pos, step

    def bodies(self) -> MpubBodies:
        """The messages, once :meth:`read` returned DONE."""
        return MpubBodies(self._chunks)

    def _short(self, eof: bool) -> MpubStep:
        if eof:
            raise ProtocolError(*self.wanted())
        return MpubStep.NEED_DATA

    def _read_messages(
        self, buffer: bytes | bytearray, pos: int, max_messages: int
    ) -> tuple[int, MpubStep]:
        """The hot loop: one pass over whatever messages are buffered; the whole ones become
        one chunk. State lives in locals here and goes back to ``self`` once, at the end."""
        end = len(buffer)
        chunk_start = pos
        first_start = 4 if self._field is _Field.MESSAGE_SIZE else 0
        ends: list[int] = []
        unpack = _INT32_BE.unpack_from
        max_msg_size = self.limits.max_msg_size
        remaining = self._remaining
        need_size = self._field is _Field.MESSAGE_SIZE
        size = self._message_size
        step = MpubStep.NEED_DATA
        try:
            for _ in range(min(self._count - self._read_count, max_messages)):
                if need_size:
                    if end - pos < 4:
                        break
                    (size,) = unpack(buffer, pos)
                    pos += 4
                    if not 0 < size <= max_msg_size:
                        raise self._bad_size(size, self._read_count + len(ends))
                    remaining -= 4 + size
                    if remaining < 0:
                        raise ProtocolError(
                            "E_BAD_BODY",
                            f"MPUB message({self._read_count + len(ends)}) overruns body size "
                            f"{self._body_size}",
                        )
                if end - pos < size:
                    need_size = False
                    break
                pos += size
                ends.append(pos - chunk_start)
                need_size = True
            else:
                done = self._read_count + len(ends) == self._count
                step = MpubStep.DONE if done else MpubStep.STEP_USED
        finally:
            self._remaining = remaining
            self._message_size = size
            self._field = _Field.MESSAGE_SIZE if need_size else _Field.MESSAGE
            if ends:
                chunk = bytes(buffer[chunk_start : chunk_start + ends[-1]])
                self._chunks.append((chunk, first_start, array("i", ends)))
                self._read_count += len(ends)
        return pos, step

    def _bad_size(self, size: int, index: int) -> ProtocolError:
        if size <= 0:
            return ProtocolError("E_BAD_MESSAGE", f"MPUB invalid message({index}) body size {size}")
        limit = self.limits.max_msg_size
        return ProtocolError("E_BAD_MESSAGE", f"MPUB message too big {size} > {limit}")


class HttpMpubReader:
    """The messages of an HTTP ``/mpub`` body, found in bounded steps (nsqd's doMPUB).

    The whole body has arrived (up to ``--max-body-size``, 5 MiB by default: 2.6 million
    one-line messages), so the caller calls :meth:`step` until it returns True, leaving its
    event loop free between calls; then :meth:`bodies` holds the messages. Every message is
    checked before the caller publishes any, as nsqd does.

    Args:
        body: the request body.
        limits: the sizes to enforce.
        binary: ``binary=true``: the TCP MPUB body without its outer size. Otherwise one
            message per line; empty lines are skipped, as in nsqd.
    """

    def __init__(self, body: bytes, limits: Limits, *, binary: bool) -> None:
        self._body = body
        self._limits = limits
        self._pos = 0
        self._binary = MpubReader(limits, framed=False) if binary else None
        self._lines: list[bytes] = []

    def step(self, max_messages: int = 4096) -> bool:
        """Read on, at most about ``max_messages`` messages' worth; True once done.

        Raises:
            ProtocolError: nsqd's MPUB error (binary), or ``E_MSG_TOO_BIG`` for a line longer
                than ``--max-msg-size``; HTTP answers 413 with the code minus "E_".
        """
        if self._binary is not None:
            self._pos, outcome = self._binary.read(self._body, self._pos, max_messages, eof=True)
            return outcome is MpubStep.DONE
        return self._text_step(max_messages)

    def _text_step(self, max_messages: int) -> bool:
        body, start = self._body, self._pos
        # About 16 bytes a line: a step of one-byte lines splits 32 KiB, one of long lines
        # ends at the first newline after its window.
        window_end = start + max_messages * 16
        if window_end >= len(body):
            stop = len(body)
        else:
            newline = body.find(b"\n", window_end)
            stop = len(body) if newline < 0 else newline + 1
        lines = body[start:stop].split(b"\n")
        if max(map(len, lines)) > self._limits.max_msg_size:
            raise ProtocolError("E_MSG_TOO_BIG", "line longer than the maximum message size")
        self._lines.extend(filter(None, lines))
        self._pos = stop
        return stop >= len(body)

    def bodies(self) -> Sequence[bytes]:
        """The messages, once :meth:`step` returned True."""
        if self._binary is not None:
            return self._binary.bodies()
        return self._lines


def parse_binary_mpub(data: bytes, limits: Limits) -> tuple[bytes, ...]:
    """The messages of an HTTP ``/mpub?binary=true`` body (the TCP MPUB body without its
    outer size), read in one go.

    Raises:
        ProtocolError: nsqd's MPUB error; the HTTP API answers 413 with its code minus "E_".
    """
    reader = HttpMpubReader(data, limits, binary=True)
    while not reader.step():
        pass
    return tuple(reader.bodies())

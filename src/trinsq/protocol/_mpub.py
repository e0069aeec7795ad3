"""MPUB bodies: ``[int32 count]([int32 size][bytes])*`` with nsqd's checks (readMPUB)."""

from __future__ import annotations

from collections.abc import Generator

from ._errors import ProtocolError
from ._limits import Limits

__all__ = ["mpub_messages", "parse_binary_mpub"]

# What a body-reading step asks for: byte count, plus the error nsqd reports if the stream
# ends before that many bytes arrive.
_Read = tuple[int, str, str]


def _int32(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


def mpub_messages(
    limits: Limits, body_size: int | None
) -> Generator[_Read, bytes, tuple[bytes, ...]]:
    """nsqd's readMPUB: ``[int32 count]([int32 size][bytes])*`` with its checks and texts.

    With a ``body_size`` (TCP MPUB) the messages must fill it exactly: nsqd never checks that,
    but it makes the announced size really bound what one MPUB can make us buffer. Without one
    (HTTP /mpub?binary=true) bytes after the last message are ignored, as nsqd ignores them.
    """
    count = _int32((yield (4, "E_BAD_BODY", "MPUB failed to read message count")))
    if count <= 0 or count > (limits.max_body_size - 4) // 5:
        raise ProtocolError("E_BAD_BODY", f"MPUB invalid message count {count}")
    remaining = None if body_size is None else body_size - 4
    bodies: list[bytes] = []
    for index in range(count):
        size = _int32(
            (yield (4, "E_BAD_MESSAGE", f"MPUB failed to read message({index}) body size"))
        )
        if size <= 0:
            raise ProtocolError("E_BAD_MESSAGE", f"MPUB invalid message({index}) body size {size}")
        if size > limits.max_msg_size:
            raise ProtocolError(
                "E_BAD_MESSAGE", f"MPUB message too big {size} > {limits.max_msg_size}"
            )
        if remaining is not None:
            remaining -= 4 + size
            if remaining < 0:
                raise ProtocolError(
                    "E_BAD_BODY", f"MPUB message({index}) overruns body size {body_size}"
                )
        bodies.append((yield (size, "E_BAD_MESSAGE", "MPUB failed to read message body")))
    if remaining:
        raise ProtocolError(
            "E_BAD_BODY", f"MPUB body size {body_size} has {remaining} bytes after messages"
        )
    return tuple(bodies)


def parse_binary_mpub(data: bytes, limits: Limits) -> tuple[bytes, ...]:
    """The messages of an HTTP ``/mpub?binary=true`` body (the TCP MPUB body without its
    outer size).

    Raises:
        ProtocolError: nsqd's MPUB error; the HTTP API answers 413 with its code minus "E_".
    """
    reader = mpub_messages(limits, None)
    want = next(reader)
    position = 0
    while True:
        size, code, text = want
        if len(data) - position < size:
            raise ProtocolError(code, text)
        chunk = data[position : position + size]
        position += size
        try:
            want = reader.send(chunk)
        except StopIteration as done:
            bodies: tuple[bytes, ...] = done.value
            return bodies

"""Server-to-client frames of protocol V2 (internal/protocol/protocol.go, nsqd/message.go).

A frame is ``[size:uint32 BE][type:int32 BE][data]`` where size counts type plus data.
A message frame's data is ``[timestamp:int64 BE][attempts:uint16 BE][id:16 bytes][body]``.
"""

from __future__ import annotations

import enum
import struct
from typing import Final

import attrs

from ._errors import ProtocolError

__all__ = [
    "CLOSE_WAIT_FRAME",
    "HEARTBEAT_FRAME",
    "MESSAGE_HEADER_SIZE",
    "OK_FRAME",
    "Frame",
    "FrameDecoder",
    "FrameType",
    "append_message_frame",
    "encode_error",
    "encode_frame",
    "encode_message",
    "encode_response",
]


class FrameType(enum.IntEnum):
    RESPONSE = 0
    ERROR = 1
    MESSAGE = 2


_FRAME_HEADER: Final = struct.Struct(">Ii")
# size, frame type, timestamp, attempts: everything of a message frame before the id.
_MESSAGE_FRAME_HEADER: Final = struct.Struct(">IiqH")
MESSAGE_ID_SIZE: Final = 16
MESSAGE_HEADER_SIZE: Final = 8 + 2 + MESSAGE_ID_SIZE  # minValidMsgLength in nsqd


def encode_frame(frame_type: FrameType, data: bytes) -> bytes:
    """Encode one frame of any type."""
    return _FRAME_HEADER.pack(4 + len(data), frame_type) + data


def encode_response(data: bytes) -> bytes:
    """Encode a response frame (``OK``, ``CLOSE_WAIT``, JSON, ...)."""
    return encode_frame(FrameType.RESPONSE, data)


def encode_error(error: ProtocolError) -> bytes:
    """Encode an error frame ``"<code> <description>"``."""
    return encode_frame(FrameType.ERROR, error.frame_data)


OK_FRAME: Final = encode_response(b"OK")
HEARTBEAT_FRAME: Final = encode_response(b"_heartbeat_")
CLOSE_WAIT_FRAME: Final = encode_response(b"CLOSE_WAIT")


def append_message_frame(
    out: bytearray, timestamp_ns: int, attempts: int, message_id: bytes, body: bytes
) -> None:
    """Append a message frame to ``out`` without building intermediate bytes objects."""
    out += _MESSAGE_FRAME_HEADER.pack(
        4 + MESSAGE_HEADER_SIZE + len(body), FrameType.MESSAGE, timestamp_ns, attempts & 0xFFFF
    )
    out += message_id
    out += body


def encode_message(timestamp_ns: int, attempts: int, message_id: bytes, body: bytes) -> bytes:
    """Encode a complete message frame."""
    out = bytearray()
    append_message_frame(out, timestamp_ns, attempts, message_id, body)
    return bytes(out)


@attrs.frozen
class Frame:
    """One decoded server frame (used by clients, tests and the benchmark)."""

    frame_type: FrameType
    data: bytes

    @property
    def is_heartbeat(self) -> bool:
        return self.frame_type == FrameType.RESPONSE and self.data == b"_heartbeat_"

    def message_fields(self) -> tuple[int, int, bytes, bytes]:
        """Split a message frame into (timestamp_ns, attempts, id, body)."""
        if self.frame_type != FrameType.MESSAGE or len(self.data) < MESSAGE_HEADER_SIZE:
            raise ValueError("not a message frame")
        timestamp, attempts = struct.unpack_from(">qH", self.data)
        return timestamp, attempts, self.data[10:26], self.data[26:]


class FrameDecoder:
    """Incremental decoder of server frames, fed arbitrary chunks.

    Args:
        max_frame_size: frames announcing a larger size raise ``ValueError``.
    """

    def __init__(self, max_frame_size: int = 64 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size

    def feed(self, data: bytes | bytearray) -> None:
        self._buffer += data

    def next_frame(self) -> Frame | None:
        """Return the next complete frame, or None until more bytes arrive."""
        if len(self._buffer) < 8:
            return None
        size, frame_type = _FRAME_HEADER.unpack_from(self._buffer)
        if size < 4 or size > self._max_frame_size:
            raise ValueError(f"bad frame size {size}")
        if len(self._buffer) < 4 + size:
            return None
        data = bytes(self._buffer[8 : 4 + size])
        del self._buffer[: 4 + size]
        return Frame(FrameType(frame_type), data)

    def take_unparsed(self) -> bytes:
        """Remove and return the bytes buffered past the last complete frame (a client hands
        them to the stream layer it upgrades to)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def frames(self) -> list[Frame]:
        """Return every complete frame buffered so far."""
        return [Frame(FrameType(kind), data) for kind, data in self.raw_frames()]

    def raw_frames(self) -> list[tuple[int, bytes]]:
        """Every complete frame buffered so far as (frame type, data), the type not checked:
        one pass and one trim of the buffer, for a client's hot path."""
        buffer = self._buffer
        end = len(buffer)
        pos = 0
        result: list[tuple[int, bytes]] = []
        unpack = _FRAME_HEADER.unpack_from
        try:
            while end - pos >= 8:
                size, frame_type = unpack(buffer, pos)
                if size < 4 or size > self._max_frame_size:
                    raise ValueError(f"bad frame size {size}")
                if end - pos < 4 + size:
                    break
                result.append((frame_type, bytes(buffer[pos + 8 : pos + 4 + size])))
                pos += 4 + size
        finally:
            del buffer[:pos]
        return result

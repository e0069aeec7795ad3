"""NSQ TCP protocol V2 on plain blocking sockets: just what the load generators need.

Nothing here imports trinsq: the generators speak the wire protocol themselves, so they measure
any NSQ-compatible nsqd (Go or trinsq) the same way.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Sequence

MAGIC_V2 = b"  V2"
FRAME_RESPONSE = 0
FRAME_ERROR = 1
FRAME_MESSAGE = 2
HEARTBEAT = b"_heartbeat_"
NOP = b"NOP\n"
OK_FRAME = struct.pack(">II", 6, FRAME_RESPONSE) + b"OK"
USER_AGENT = "trinsq-bench/0.1"

HEADER = struct.Struct(">II")  # frame size (type + data), frame type
U32 = struct.Struct(">I")
# inside a message frame's data: timestamp (ns), attempts, 16-byte id, then the body
MESSAGE_ID_OFFSET = 8 + 8 + 2  # from the start of the frame (size and type words included)
MESSAGE_BODY_OFFSET = MESSAGE_ID_OFFSET + 16


class ProtocolFailure(RuntimeError):
    """The server answered with an error frame or closed the connection."""


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {text!r}")
    return host.strip("[]"), int(port)


def identify(**fields: object) -> bytes:
    body = json.dumps({"user_agent": USER_AGENT, **fields}).encode()
    return b"IDENTIFY\n" + U32.pack(len(body)) + body


def pub(topic: str, body: bytes) -> bytes:
    return b"PUB " + topic.encode() + b"\n" + U32.pack(len(body)) + body


def mpub(topic: str, bodies: Sequence[bytes]) -> bytes:
    parts = [U32.pack(len(bodies))]
    for body in bodies:
        parts.append(U32.pack(len(body)))
        parts.append(body)
    payload = b"".join(parts)
    return b"MPUB " + topic.encode() + b"\n" + U32.pack(len(payload)) + payload


def sub(topic: str, channel: str) -> bytes:
    return f"SUB {topic} {channel}\n".encode()


def rdy(count: int) -> bytes:
    return f"RDY {count}\n".encode()


def connect(address: tuple[str, int], timeout: float = 10.0) -> socket.socket:
    """A connected, blocking socket with the V2 magic already sent."""
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(MAGIC_V2)
    return sock


class FrameReader:
    """Reads whole frames from a blocking socket, buffering what arrives early."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def read_frame(self) -> tuple[int, bytes]:
        while True:
            if len(self.buf) >= 8:
                size, ftype = HEADER.unpack_from(self.buf, 0)
                end = 4 + size
                if len(self.buf) >= end:
                    data = bytes(self.buf[8:end])
                    del self.buf[:end]
                    return ftype, data
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ProtocolFailure("connection closed by the server")
            self.buf += chunk

    def expect_ok(self) -> None:
        """Read one response, answering heartbeats; fail on anything but OK."""
        while True:
            ftype, data = self.read_frame()
            if ftype == FRAME_RESPONSE and data == HEARTBEAT:
                self.sock.sendall(NOP)
                continue
            if ftype == FRAME_RESPONSE and data == b"OK":
                return
            raise ProtocolFailure(f"expected OK, got frame type {ftype}: {data[:200]!r}")

    def expect_identify(self) -> None:
        """IDENTIFY answers OK, or JSON when the client asked for feature negotiation."""
        ftype, data = self.read_frame()
        if ftype != FRAME_RESPONSE:
            raise ProtocolFailure(f"IDENTIFY failed: {data[:200]!r}")


def message_frame(msg_id: bytes, body: bytes, timestamp: int = 0, attempts: int = 1) -> bytes:
    """One message frame as nsqd sends it (used by the fake source server)."""
    data = struct.pack(">qH", timestamp, attempts) + msg_id + body
    return HEADER.pack(4 + len(data), FRAME_MESSAGE) + data

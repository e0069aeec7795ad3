"""Publishing workers: bench_writer's MPUB loop, and unbatched PUB."""

from __future__ import annotations

import socket
import time

from benchmarks import _wire
from benchmarks._procs import Go, Result


def writer(
    go: Go,
    address: tuple[str, int],
    topic: str,
    size: int,
    batch_size: int,
    duration: float,
    messages: int = 0,
) -> Result:
    """One connection: MPUB ``batch_size`` messages at a time, waiting for each OK.

    Runs for ``duration`` seconds, or (``messages`` > 0) until that many are published.
    """
    sock = _wire.connect(address)
    reader = _wire.FrameReader(sock)
    sock.sendall(_wire.identify(client_id="writer", hostname="writer"))
    reader.expect_identify()
    body = b"a" * size
    command = _wire.mpub(topic, [body] * batch_size)
    go()
    start = time.monotonic()
    end_at = start + duration
    count = 0
    while True:
        if messages:
            left = messages - count
            if left <= 0:
                break
            if left < batch_size:
                command = _wire.mpub(topic, [body] * left)
        sock.sendall(command)
        reader.expect_ok()
        count += min(batch_size, messages - count) if messages else batch_size
        if not messages and time.monotonic() >= end_at:
            break
    end = time.monotonic()
    sock.close()
    return {"count": count, "start": start, "end": end}


def publisher(
    go: Go,
    address: tuple[str, int],
    topic: str,
    size: int,
    duration: float,
    in_flight: int = 1,
) -> Result:
    """One connection: PUB one message at a time, keeping ``in_flight`` unanswered (1: wait)."""
    sock = _wire.connect(address)
    reader = _wire.FrameReader(sock)
    sock.sendall(_wire.identify(client_id="pub", hostname="pub"))
    reader.expect_identify()
    command = _wire.pub(topic, b"a" * size)
    go()
    start = time.monotonic()
    end_at = start + duration
    sent = answered = 0
    if in_flight <= 1:
        while True:
            sock.sendall(command)
            reader.expect_ok()
            answered += 1
            if time.monotonic() >= end_at:
                break
    else:
        sock.sendall(command * in_flight)
        sent = in_flight
        buf = bytearray()
        while answered < sent:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise _wire.ProtocolFailure("connection closed by the server")
            buf += chunk
            oks = _count_oks(sock, buf)
            answered += oks
            if oks and time.monotonic() < end_at:
                sock.sendall(command * oks)
                sent += oks
    end = time.monotonic()
    sock.close()
    return {"count": answered, "start": start, "end": end}


def _count_oks(sock: socket.socket, buf: bytearray) -> int:
    """Consume the whole frames in ``buf``: count OKs, answer heartbeats, fail on the rest."""
    pos = oks = 0
    while len(buf) - pos >= 8:
        size, ftype = _wire.HEADER.unpack_from(buf, pos)
        end = pos + 4 + size
        if end > len(buf):
            break
        data = bytes(buf[pos + 8 : end])
        if ftype == _wire.FRAME_RESPONSE and data == b"OK":
            oks += 1
        elif ftype == _wire.FRAME_RESPONSE and data == _wire.HEARTBEAT:
            sock.sendall(_wire.NOP)
        else:
            raise _wire.ProtocolFailure(f"unexpected reply (type {ftype}): {data[:200]!r}")
        pos = end
    del buf[:pos]
    return oks


def ensure_channel(address: tuple[str, int], topic: str, channel: str) -> None:
    """Create ``topic`` and ``channel`` over TCP (SUB, then leave without RDY)."""
    sock = _wire.connect(address)
    reader = _wire.FrameReader(sock)
    try:
        sock.sendall(
            _wire.identify(client_id="setup", hostname="setup") + _wire.sub(topic, channel)
        )
        reader.expect_identify()
        reader.expect_ok()
        sock.sendall(b"CLS\n")
        reader.read_frame()  # CLOSE_WAIT
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

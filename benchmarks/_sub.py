"""Consuming workers: bench_reader's SUB / RDY / FIN loop over one or many connections."""

from __future__ import annotations

import selectors
import socket
import time
from typing import Any

from benchmarks import _wire
from benchmarks._procs import Go, Result


def take_messages(buf: bytearray) -> tuple[int, bytes, bool]:
    """Consume the whole frames in ``buf``.

    Returns the number of messages, the FIN commands for all of them (one write), and whether a
    heartbeat arrived. Error frames raise.
    """
    pos = 0
    size_of_buf = len(buf)
    unpack = _wire.HEADER.unpack_from
    ids: list[bytearray] = []
    heartbeat = False
    while size_of_buf - pos >= 8:
        size, ftype = unpack(buf, pos)
        end = pos + 4 + size
        if end > size_of_buf:
            break
        if ftype == _wire.FRAME_MESSAGE:
            ids.append(buf[pos + _wire.MESSAGE_ID_OFFSET : pos + _wire.MESSAGE_BODY_OFFSET])
        elif ftype == _wire.FRAME_RESPONSE:
            heartbeat = heartbeat or buf[pos + 8 : end] == _wire.HEARTBEAT
        else:
            raise _wire.ProtocolFailure(f"error frame: {bytes(buf[pos + 8 : end])[:200]!r}")
        pos = end
    del buf[:pos]
    fins = b"FIN " + b"\nFIN ".join(ids) + b"\n" if ids else b""  # ids are hex, never "\n"
    return len(ids), fins, heartbeat


def subscribe(
    address: tuple[str, int], topic: str, channel: str, name: str, **identify: Any
) -> tuple[socket.socket, bytearray]:
    """Connect, IDENTIFY and SUB; return the socket and any bytes read past the SUB's OK."""
    sock = _wire.connect(address)
    reader = _wire.FrameReader(sock)
    sock.sendall(
        _wire.identify(client_id=name, hostname=name, **identify) + _wire.sub(topic, channel)
    )
    reader.expect_identify()
    reader.expect_ok()
    return sock, reader.buf


def consumer(
    go: Go,
    address: tuple[str, int],
    topic: str,
    channel: str,
    connections: int,
    rdy: int,
    duration: float,
    idle_timeout: float = 0.0,
    expected: int = 0,
    counter: Any = None,
) -> Result:
    """``connections`` subscribers in one process, each with RDY ``rdy``, FINning everything.

    Stops at ``duration``; or when the run's shared ``counter`` reaches ``expected``; or (with
    ``idle_timeout``) when nothing arrived for that long, counting only up to the last message.
    """
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        sock, buf = subscribe(address, topic, channel, "reader")
        sel.register(sock, selectors.EVENT_READ, [buf, 0])
        socks.append(sock)
    go()
    start = time.monotonic()
    for sock in socks:
        sock.sendall(_wire.rdy(rdy))
    end_at = start + duration
    count = 0
    last = start
    end = 0.0
    while not end:
        got = 0
        for key, _ in sel.select(timeout=0.05):
            conn, state = key.fileobj, key.data
            assert isinstance(conn, socket.socket)
            chunk = conn.recv(1 << 18)
            if not chunk:
                raise _wire.ProtocolFailure("connection closed by the server")
            buf = state[0]
            buf += chunk
            n, fins, heartbeat = take_messages(buf)
            if fins:
                conn.sendall(fins)
            if heartbeat:
                conn.sendall(_wire.NOP)
            state[1] += n
            got += n
        now = time.monotonic()
        if got:
            count += got
            last = now
            if counter is not None:
                with counter.get_lock():
                    counter.value += got
        drained = counter is not None and expected and counter.value >= expected
        if now >= end_at:
            end = now
        elif drained or (idle_timeout and now - last >= idle_timeout):
            end = last
    per_connection = [key.data[1] for key in sel.get_map().values()]
    sel.close()
    for sock in socks:
        sock.close()
    return {"count": count, "start": start, "end": end, "per_connection": per_connection}

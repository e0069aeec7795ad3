"""Idle connections: many clients that IDENTIFY with a heartbeat interval and answer with NOP."""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import time

from benchmarks import _wire
from benchmarks._procs import Go, Result


def idle_clients(
    go: Go, address: tuple[str, int], connections: int, heartbeat_ms: int, hold: float
) -> Result:
    """Open ``connections`` connections, then hold them for ``hold`` seconds after the start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    hello = _wire.MAGIC_V2 + _wire.identify(
        client_id="idle", hostname="idle", heartbeat_interval=heartbeat_ms
    )
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    setup_start = time.monotonic()
    for _ in range(connections):
        sock = socket.create_connection(address, timeout=30)
        sock.sendall(hello)
        socks.append(sock)
    for sock in socks:  # the IDENTIFY responses, read after every connection is open
        reader = _wire.FrameReader(sock)
        reader.expect_identify()
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, reader.buf)
    setup_end = time.monotonic()
    go()
    start = time.monotonic()
    end_at = start + hold
    heartbeats = closed = 0
    while (now := time.monotonic()) < end_at:
        for key, _ in sel.select(timeout=min(0.5, end_at - now)):
            conn = key.fileobj
            assert isinstance(conn, socket.socket)
            try:
                chunk = conn.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionError:  # reset by a broker that dropped it
                chunk = b""
            if not chunk:
                closed += 1
                sel.unregister(conn)
                continue
            buf = key.data
            buf += chunk
            while len(buf) >= 8:
                size, ftype = _wire.HEADER.unpack_from(buf, 0)
                if len(buf) < 4 + size:
                    break
                if ftype == _wire.FRAME_RESPONSE and buf[8 : 4 + size] == _wire.HEARTBEAT:
                    heartbeats += 1
                    with contextlib.suppress(ConnectionError):  # the next recv says so
                        conn.send(_wire.NOP)  # 4 bytes into an empty send buffer
                del buf[: 4 + size]
    end = time.monotonic()
    sel.close()
    for sock in socks:
        sock.close()
    return {
        "count": connections - closed,
        "closed": closed,
        "heartbeats": heartbeats,
        "setup_start": setup_start,
        "setup_end": setup_end,
        "start": start,
        "end": end,
    }

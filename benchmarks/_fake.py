"""Trivial NSQ-shaped servers for measuring the load generators alone.

``sink`` answers OK to IDENTIFY, SUB, PUB and MPUB, skipping bodies unparsed. ``source``
additionally streams pre-built message frames to every subscriber as fast as it reads them,
ignoring RDY (FINs are read and dropped). ``relay`` forwards each PUB body to the subscribers as
a message frame straight away. Each runs in its own process, one thread per connection.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from benchmarks import _wire

_BODY_VERBS = {b"IDENTIFY", b"PUB", b"MPUB", b"DPUB", b"AUTH"}
_CTX = mp.get_context("fork")


class _Server:
    def __init__(self, mode: str, size: int) -> None:
        self.mode = mode
        self.subscribers: list[socket.socket] = []
        self.lock = threading.Lock()
        self.ids = itertools.count()
        frames = [_wire.message_frame(b"%016x" % i, b"a" * size) for i in range(1000)]
        self.stream_chunk = b"".join(frames)

    def serve(self, listener: socket.socket) -> None:
        while True:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        try:
            self.serve_connection(conn)
        finally:
            with self.lock:
                if conn in self.subscribers:
                    self.subscribers.remove(conn)

    def serve_connection(self, conn: socket.socket) -> None:
        with suppress(OSError), conn:
            buf = bytearray()
            while len(buf) < 4:
                chunk = conn.recv(4 - len(buf))
                if not chunk:
                    return
                buf += chunk
            buf.clear()
            while True:
                chunk = conn.recv(1 << 18)
                if not chunk:
                    return
                buf += chunk
                replies, frames, subscribed = self.commands(conn, buf)
                if replies:
                    conn.sendall(replies)
                if frames:
                    self.relay(frames)
                if subscribed:
                    self.subscribe(conn)  # after the SUB's OK: only the stream writes from now

    def commands(self, conn: socket.socket, buf: bytearray) -> tuple[bytes, bytes, bool]:
        """Handle every whole command in ``buf``: the replies, frames to relay, and a new SUB."""
        pos = 0
        oks = 0
        subscribed = False
        frames: list[bytes] = []
        while (nl := buf.find(b"\n", pos)) >= 0:
            verb = bytes(buf[pos:nl]).split(b" ", 1)[0]
            end = nl + 1
            if verb in _BODY_VERBS:
                if len(buf) < end + 4:
                    break
                end += 4 + _wire.U32.unpack_from(buf, end)[0]
                if len(buf) < end:
                    break
                if verb == b"PUB" and self.mode == "relay":
                    msg_id = b"%016x" % next(self.ids)
                    frames.append(_wire.message_frame(msg_id, bytes(buf[nl + 5 : end])))
                oks += 1
            elif verb == b"SUB":
                oks += 1
                subscribed = True
            elif verb == b"CLS":
                conn.sendall(_wire.OK_FRAME * oks + _wire.HEADER.pack(14, 0) + b"CLOSE_WAIT")
                oks = 0
            pos = end
        del buf[:pos]
        return _wire.OK_FRAME * oks, b"".join(frames), subscribed

    def subscribe(self, conn: socket.socket) -> None:
        if self.mode == "source":
            threading.Thread(target=self.stream, args=(conn,), daemon=True).start()
        with self.lock:
            self.subscribers.append(conn)

    def stream(self, conn: socket.socket) -> None:
        with suppress(OSError):
            while True:
                conn.sendall(self.stream_chunk)

    def relay(self, frames: bytes) -> None:
        with self.lock:
            if self.subscribers:
                with suppress(OSError):
                    self.subscribers[-1].sendall(frames)  # the newest subscriber


def _run(mode: str, size: int, port_out: Any) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    port_out.put(listener.getsockname()[1])
    _Server(mode, size).serve(listener)


@contextmanager
def fake_server(mode: str, size: int = 200) -> Iterator[tuple[str, int]]:
    """Run a fake server in its own process; yield its address; kill it (by handle) after."""
    port_out = _CTX.Queue()
    proc = _CTX.Process(target=_run, args=(mode, size, port_out), daemon=True)
    proc.start()
    try:
        yield ("127.0.0.1", port_out.get(timeout=30))
    finally:
        proc.kill()
        proc.join(10)

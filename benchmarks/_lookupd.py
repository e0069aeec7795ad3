"""Registry load generators: fake nsqd producers over lookupd's TCP protocol V1, and sequential
HTTP requests on one keep-alive connection.

Standard library only, like every generator: they measure any nsqlookupd (Go's or trinsq's).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import resource
import socket
import struct
import time
from collections.abc import Sequence
from typing import Any

from benchmarks._procs import Go, Result
from benchmarks._target import cpu_seconds

MAGIC_V1 = b"  V1"
U32 = struct.Struct(">I")
PING_INTERVAL = 15.0  # nsqd's


class LookupdFailure(RuntimeError):
    """The registry answered a command with an error, or closed the connection."""


def identify(index: int) -> bytes:
    """IDENTIFY with the fields nsqd sends; each fake producer names a distinct node."""
    body = json.dumps(
        {
            "broadcast_address": f"producer-{index}.bench.invalid",
            "hostname": f"producer-{index}",
            "tcp_port": 4150,
            "http_port": 4151,
            "version": "1.3.0",
        }
    ).encode()
    return b"IDENTIFY\n" + U32.pack(len(body)) + body


def registrations(topics: Sequence[str], channels: Sequence[str]) -> list[bytes]:
    """What nsqd sends for its topics and channels: REGISTER t, then REGISTER t c per channel."""
    commands = []
    for topic in topics:
        commands.append(f"REGISTER {topic}\n".encode())
        commands += [f"REGISTER {topic} {channel}\n".encode() for channel in channels]
    return commands


def _read_response(sock: socket.socket, buf: bytearray) -> bytes:
    """One size-prefixed V1 response (no frame type), buffering what arrives early."""
    while True:
        if len(buf) >= 4:
            (size,) = U32.unpack_from(buf, 0)
            if len(buf) >= 4 + size:
                data = bytes(buf[4 : 4 + size])
                del buf[: 4 + size]
                return data
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise LookupdFailure("connection closed by the registry")
        buf += chunk


def _expect(sock: socket.socket, buf: bytearray, count: int) -> None:
    for _ in range(count):
        data = _read_response(sock, buf)
        if data.startswith(b"E_"):
            raise LookupdFailure(data.decode(errors="replace"))


def producers(
    go: Go,
    address: tuple[str, int],
    count: int,
    topics: Sequence[str],
    channels: Sequence[str],
    done: Any,
    hold: float,
) -> Result:
    """Register ``count`` producers, one connection each, then hold them (PINGing as nsqd does)
    until ``done.value`` is set or ``hold`` seconds passed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    commands = registrations(topics, channels)
    socks: list[socket.socket] = []
    try:
        began = time.monotonic()
        for index in range(count):
            sock = socket.create_connection(address, timeout=30)
            socks.append(sock)
            # a producer's whole registration in one write; its answers are read just below
            sock.sendall(MAGIC_V1 + identify(index) + b"".join(commands))
            _expect(sock, bytearray(), 1 + len(commands))
        registered = time.monotonic() - began
        go()
        end_at = time.monotonic() + hold
        next_ping = time.monotonic() + PING_INTERVAL
        while not done.value and time.monotonic() < end_at:
            time.sleep(0.02)
            if time.monotonic() >= next_ping:
                for sock in socks:
                    sock.sendall(b"PING\n")
                for sock in socks:
                    _expect(sock, bytearray(), 1)
                next_ping += PING_INTERVAL
    finally:
        for sock in socks:
            sock.close()
    return {"count": count, "register_s": registered}


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path, headers={"Accept": "application/vnd.nsq; version=1.0"})
    response = conn.getresponse()
    return response.status, response.read()


def requests(
    go: Go,
    address: tuple[str, int],
    paths: Sequence[tuple[str, str]],
    count: int,
    warmup: int,
    pid: int | None,
    done: Any,
) -> Result:
    """Time ``count`` sequential GETs of each ``(name, path)`` on one keep-alive connection.

    Each path is fetched once first to check it answers 200; with the registry's
    ``pid``, its CPU time over each timed run is read from /proc.
    """
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        go()  # every producer is registered once the start signal comes
        first: dict[str, Any] = {}
        for name, path in paths:
            status, body = _get(conn, path)
            if status != 200:
                raise LookupdFailure(f"GET {path}: {status} {body[:200]!r}")
            first[name] = {"bytes": len(body), "body": json.loads(body)}
        runs: dict[str, Any] = {}
        for name, path in paths:
            for _ in range(warmup):
                _get(conn, path)
            samples = []
            cpu0 = cpu_seconds(pid) if pid is not None else 0.0
            start = time.monotonic()
            for _ in range(count):
                t0 = time.perf_counter_ns()
                status, _body = _get(conn, path)
                samples.append(time.perf_counter_ns() - t0)
                if status != 200:
                    raise LookupdFailure(f"GET {path}: {status}")
            end = time.monotonic()
            cpu = cpu_seconds(pid) - cpu0 if pid is not None else None
            runs[name] = {"samples_ns": samples, "start": start, "end": end, "server_cpu_s": cpu}
        return {"first": first, "runs": runs}
    finally:
        done.value = 1  # the producers may go
        with contextlib.suppress(OSError):
            conn.close()

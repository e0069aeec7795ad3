"""Fairness: what one client's huge input costs everyone else.

While one process sends the largest legal MPUB (1,048,575 one-byte messages in nsqd's default
5 MiB --max-body-size) again and again, and another a deflate stream in which ~1 KiB unpacks
to 1 MiB of ``NOP`` commands, again and again, a third client PUBs one small message at a
time and times each round trip, and a fourth process holds connections that answer every
1 s heartbeat. A broker that processes each input to the end before anyone else runs holds
the PUBs for seconds and drops the heartbeating clients (two missed intervals); a fair one
answers the PUBs within milliseconds and drops nobody.

The MPUB and bomb senders IDENTIFY with a 1 s heartbeat too. If the broker drops one of them,
it reconnects and goes on (and the drop is counted), so the load lasts the whole run.
"""

from __future__ import annotations

import array
import json
import socket
import time
import zlib
from typing import Any

from benchmarks import _idle, _wire
from benchmarks._common import BrokerCpu, delete_topic, report_cpu, unique
from benchmarks._procs import Go, Result, Worker, run_jobs
from benchmarks._report import Report, percentile
from benchmarks._target import Target

MAX_MPUB_COUNT = (5 * 1024 * 1024 - 4) // 5  # nsqd's default --max-body-size, 1-byte messages
NOP = b"NOP\n"


def _largest_mpub(topic: str, count: int) -> bytes:
    inner = _wire.U32.pack(count) + b"\x00\x00\x00\x01x" * count
    return b"MPUB " + topic.encode() + b"\n" + _wire.U32.pack(len(inner)) + inner


def mpub_flood(
    go: Go, address: tuple[str, int], topic: str, count: int, duration: float, heartbeat_ms: int
) -> Result:
    """MPUB ``count`` one-byte messages at a time, waiting for each OK, for ``duration``."""
    command = _largest_mpub(topic, count)
    hello = _wire.identify(client_id="mpub-flood", heartbeat_interval=heartbeat_ms)

    def connect() -> tuple[socket.socket, _wire.FrameReader]:
        sock = _wire.connect(address, timeout=120)
        reader = _wire.FrameReader(sock)
        sock.sendall(hello)
        reader.expect_identify()
        return sock, reader

    sock, reader = connect()
    go()
    start = time.monotonic()
    mpubs = drops = 0
    seconds: list[float] = []
    while time.monotonic() < start + duration:
        began = time.monotonic()
        try:
            sock.sendall(command)
            reader.expect_ok()  # answers heartbeats meanwhile
        except (OSError, _wire.ProtocolFailure):
            drops += 1
            sock.close()
            sock, reader = connect()
            continue
        seconds.append(time.monotonic() - began)
        mpubs += 1
    end = time.monotonic()
    sock.close()
    return {
        "count": mpubs * count,
        "mpubs": mpubs,
        "drops": drops,
        "seconds": seconds,
        "start": start,
        "end": end,
    }


class _DeflateClient:
    """A V2 connection that negotiated deflate: sends and reads through raw DEFLATE."""

    def __init__(self, address: tuple[str, int], heartbeat_ms: int) -> None:
        self.sock = _wire.connect(address, timeout=120)
        reader = _wire.FrameReader(self.sock)
        self.sock.sendall(
            _wire.identify(
                client_id="deflate-bomb",
                feature_negotiation=True,
                deflate=True,
                deflate_level=6,
                heartbeat_interval=heartbeat_ms,
            )
        )
        ftype, data = reader.read_frame()
        if ftype != _wire.FRAME_RESPONSE or not json.loads(data).get("deflate"):
            raise _wire.ProtocolFailure(f"deflate not negotiated: {data[:200]!r}")
        self.compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.decompressor = zlib.decompressobj(-15)
        self.buf = bytearray(self.decompressor.decompress(bytes(reader.buf)))
        self.expect_ok()

    def compress(self, data: bytes) -> bytes:
        return self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)

    def expect_ok(self) -> None:
        """Read up to the next OK, answering heartbeats."""
        while True:
            while len(self.buf) >= 8:
                size, ftype = _wire.HEADER.unpack_from(self.buf, 0)
                if len(self.buf) < 4 + size:
                    break
                data = bytes(self.buf[8 : 4 + size])
                del self.buf[: 4 + size]
                if ftype == _wire.FRAME_RESPONSE and data == _wire.HEARTBEAT:
                    self.sock.sendall(self.compress(NOP))
                elif ftype == _wire.FRAME_RESPONSE and data == b"OK":
                    return
                else:
                    raise _wire.ProtocolFailure(f"unexpected frame {ftype}: {data[:200]!r}")
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise _wire.ProtocolFailure("connection closed by the server")
            self.buf += self.decompressor.decompress(chunk)


def deflate_bomber(
    go: Go,
    address: tuple[str, int],
    topic: str,
    plain_bytes: int,
    duration: float,
    heartbeat_ms: int,
) -> Result:
    """Send ``plain_bytes`` of NOPs (then one PUB, whose OK says they all ran), compressed,
    again and again for ``duration``."""
    plain = NOP * (plain_bytes // len(NOP)) + _wire.pub(topic, b"x")
    client = _DeflateClient(address, heartbeat_ms)
    go()
    start = time.monotonic()
    bombs = drops = 0
    compressed = 0
    while time.monotonic() < start + duration:
        try:
            bomb = client.compress(plain)
            client.sock.sendall(bomb)
            client.expect_ok()
        except (OSError, _wire.ProtocolFailure):
            drops += 1
            client.sock.close()
            client = _DeflateClient(address, heartbeat_ms)
            continue
        compressed = max(compressed, len(bomb))
        bombs += 1
    end = time.monotonic()
    client.sock.close()
    return {"count": bombs, "drops": drops, "compressed": compressed, "start": start, "end": end}


def pub_prober(
    go: Go, address: tuple[str, int], topic: str, duration: float, interval: float
) -> Result:
    """PUB one small message, wait for its OK, note the round trip; every ``interval`` s."""
    sock = _wire.connect(address, timeout=120)
    reader = _wire.FrameReader(sock)
    sock.sendall(_wire.identify(client_id="pub-probe"))
    reader.expect_identify()
    command = _wire.pub(topic, b"probe")
    samples = array.array("q")
    go()
    start = time.monotonic()
    end_at = start + duration
    while (now := time.monotonic()) < end_at:
        began = time.perf_counter_ns()
        sock.sendall(command)
        reader.expect_ok()
        samples.append(time.perf_counter_ns() - began)
        pause = now + interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    end = time.monotonic()
    sock.close()
    return {"count": len(samples), "samples": samples.tobytes(), "start": start, "end": end}


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as file:
            return " ".join(file.read().split()[:3])
    except OSError:
        return "unknown"


def fairness(
    target: Target,
    duration: float = 10.0,
    mpub_count: int = MAX_MPUB_COUNT,
    bomb_bytes: int = 1024 * 1024,
    heartbeat_clients: int = 20,
    heartbeat_ms: int = 1000,
    probe_interval: float = 0.005,
) -> Report:
    """A PUB's round trip, and heartbeating clients kept, while two clients send huge input."""
    report = Report("fairness")
    big, probe = unique("fairness_big"), unique("fairness_probe")
    bomb_topic = unique("fairness_bomb") + "#ephemeral"
    jobs: list[tuple[Worker, dict[str, Any]]] = [
        (
            _idle.idle_clients,
            dict(
                address=target.tcp,
                connections=heartbeat_clients,
                heartbeat_ms=heartbeat_ms,
                hold=duration + 1,
            ),
        ),
        (
            mpub_flood,
            dict(
                address=target.tcp,
                topic=big,
                count=mpub_count,
                duration=duration,
                heartbeat_ms=heartbeat_ms,
            ),
        ),
        (
            deflate_bomber,
            dict(
                address=target.tcp,
                topic=bomb_topic,
                plain_bytes=bomb_bytes,
                duration=duration,
                heartbeat_ms=heartbeat_ms,
            ),
        ),
        (
            pub_prober,
            dict(address=target.tcp, topic=probe, duration=duration, interval=probe_interval),
        ),
    ]
    meter = BrokerCpu(target)
    load_before = _loadavg()
    results = run_jobs(jobs, timeout=duration + 300, on_start=meter.begin)
    load_after = _loadavg()
    watchers, flood, bomber, prober = results
    for topic in (big, probe):
        delete_topic(target, topic)
    samples = sorted(array.array("q", prober["samples"]))
    ms = {
        "pub_p50_ms": percentile(samples, 0.50) / 1e6,
        "pub_p99_ms": percentile(samples, 0.99) / 1e6,
        "pub_max_ms": samples[-1] / 1e6,
    }
    dropped = int(watchers["closed"])
    mpub_seconds = sorted(flood["seconds"]) or [0.0]
    report.add(
        f"{len(samples)} PUB round trips while the load ran: "
        + ", ".join(f"{k[4:-3]} {v:.3f} ms" for k, v in ms.items())
    )
    report.add(
        f"heartbeating clients ({heartbeat_ms} ms): {dropped} of {heartbeat_clients} dropped, "
        f"{watchers['heartbeats']} heartbeats answered"
    )
    report.add(
        f"load: {flood['mpubs']} MPUBs of {mpub_count} x 1 B answered (each "
        f"{mpub_seconds[0]:.2f}-{mpub_seconds[-1]:.2f} s), the sender dropped "
        f"{flood['drops']} times; {bomber['count']} deflate bombs of {bomb_bytes} B of NOPs "
        f"({bomber['compressed']} B compressed) run, the sender dropped {bomber['drops']} times"
    )
    report.add(f"load average before / after: {load_before} / {load_after}")
    report_cpu(report, results, meter)
    report.metrics.update(
        {k: round(v, 3) for k, v in ms.items()},
        probes=len(samples),
        heartbeat_clients=heartbeat_clients,
        heartbeat_dropped=dropped,
        mpubs=flood["mpubs"],
        mpub_max_s=round(mpub_seconds[-1], 3),
        mpub_sender_drops=flood["drops"],
        bombs=bomber["count"],
        bomb_compressed_bytes=bomber["compressed"],
        bomb_sender_drops=bomber["drops"],
        loadavg_before=load_before,
        loadavg_after=load_after,
    )
    return report

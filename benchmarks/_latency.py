"""End-to-end latency: a paced publisher and a consumer comparing body timestamps to arrival,
and the ``latency`` scenario that runs them.

The publisher writes ``time.time_ns()`` into the first 8 bytes of each body when it sends it;
the consumer reads ``time.time_ns()`` when the bytes arrive. Both run on this machine, so the
difference is publish-to-receive latency through the broker (plus the generators' own cost,
which the generator check measures against a trivial relay).
"""

from __future__ import annotations

import array
import socket
import struct
import time
from typing import Any

from benchmarks import _pub, _wire
from benchmarks._common import BrokerCpu, delete_topic, report_cpu, unique
from benchmarks._procs import Go, Result, Worker, run_jobs
from benchmarks._report import Report, percentile
from benchmarks._sub import subscribe
from benchmarks._target import Target

TIMESTAMP = struct.Struct(">q")


def paced_publisher(
    go: Go, address: tuple[str, int], topic: str, size: int, rate: float, seconds: float
) -> Result:
    """PUB ``rate`` messages a second for ``seconds`` without waiting for each OK (open loop)."""
    sock = _wire.connect(address)
    reader = _wire.FrameReader(sock)
    sock.sendall(_wire.identify(client_id="latency-pub", hostname="latency-pub"))
    reader.expect_identify()
    prefix = b"PUB " + topic.encode() + b"\n" + _wire.U32.pack(max(size, 8))
    pad = b"a" * max(0, size - 8)
    total = int(rate * seconds)
    go()
    start = time.monotonic()
    sent = oks = 0
    max_burst = 0
    buf = bytearray()
    while sent < total:
        now = time.monotonic()
        due = min(total, int((now - start) * rate) + 1)
        if due > sent:
            burst = due - sent
            max_burst = max(max_burst, burst)
            sock.sendall((prefix + TIMESTAMP.pack(time.time_ns()) + pad) * burst)
            sent = due
        oks += _drain_oks(sock, buf, block=False)
        pause = start + sent / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    end = time.monotonic()
    deadline = end + 10
    while oks < sent and time.monotonic() < deadline:
        oks += _drain_oks(sock, buf, block=True)
    sock.close()
    return {
        "count": sent,
        "oks": oks,
        "start": start,
        "end": end,
        "max_lag_ms": (max_burst - 1) / rate * 1000 if max_burst else 0.0,
    }


def _drain_oks(sock: socket.socket, buf: bytearray, block: bool) -> int:
    try:
        chunk = sock.recv(1 << 16, 0 if block else socket.MSG_DONTWAIT)
    except (BlockingIOError, TimeoutError):
        return 0
    if not chunk:
        raise _wire.ProtocolFailure("connection closed by the server")
    buf += chunk
    pos = oks = 0
    while len(buf) - pos >= 8:
        size, ftype = _wire.HEADER.unpack_from(buf, pos)
        end = pos + 4 + size
        if end > len(buf):
            break
        data = bytes(buf[pos + 8 : end])
        if ftype == _wire.FRAME_RESPONSE and data == _wire.HEARTBEAT:
            sock.sendall(_wire.NOP)
        elif ftype == _wire.FRAME_RESPONSE and data == b"OK":
            oks += 1
        else:
            raise _wire.ProtocolFailure(f"unexpected reply (type {ftype}): {data[:200]!r}")
        pos = end
    del buf[:pos]
    return oks


def timing_consumer(
    go: Go,
    address: tuple[str, int],
    topic: str,
    channel: str,
    rdy: int,
    warmup: float,
    duration: float,
    expected: int,
    identify: dict[str, Any],
) -> Result:
    """Receive and FIN; keep the latency (ns) of messages published inside the measured window."""
    sock, buf = subscribe(address, topic, channel, "latency-sub", **identify)
    sock.sendall(_wire.rdy(rdy))
    go()
    start_ns = time.time_ns()
    window_start = start_ns + int(warmup * 1e9)
    window_end = window_start + int(duration * 1e9)
    give_up = time.monotonic() + warmup + duration + 10
    samples = array.array("q")
    received = 0
    unpack_header = _wire.HEADER.unpack_from
    unpack_ts = TIMESTAMP.unpack_from
    sock.settimeout(0.2)
    while received < expected and time.monotonic() < give_up:
        try:
            chunk = sock.recv(1 << 18)
        except TimeoutError:
            continue
        now = time.time_ns()
        if not chunk:
            raise _wire.ProtocolFailure("connection closed by the server")
        buf += chunk
        pos = 0
        ids = []
        while len(buf) - pos >= 8:
            size, ftype = unpack_header(buf, pos)
            end = pos + 4 + size
            if end > len(buf):
                break
            if ftype == _wire.FRAME_MESSAGE:
                ids.append(buf[pos + _wire.MESSAGE_ID_OFFSET : pos + _wire.MESSAGE_BODY_OFFSET])
                sent_ns = unpack_ts(buf, pos + _wire.MESSAGE_BODY_OFFSET)[0]
                if window_start <= sent_ns < window_end:
                    samples.append(now - sent_ns)
            elif ftype == _wire.FRAME_RESPONSE:
                if buf[pos + 8 : end] == _wire.HEARTBEAT:
                    sock.sendall(_wire.NOP)
            else:
                raise _wire.ProtocolFailure(f"error frame: {bytes(buf[pos + 8 : end])[:200]!r}")
            pos = end
        del buf[:pos]
        if ids:
            received += len(ids)
            sock.sendall(b"FIN " + b"\nFIN ".join(ids) + b"\n")
    sock.close()
    return {"received": received, "samples": samples.tobytes()}


def latency(
    target: Target,
    rate: float = 10_000,
    size: int = 200,
    warmup: float = 2.0,
    duration: float = 10.0,
    rdy: int = 1000,
    output_buffer_size: int = -1,
    name: str = "latency",
) -> Report:
    """One paced publisher, one consumer: publish-to-receive percentiles after a warm-up."""
    report = Report(name)
    topic = unique("latency")
    _pub.ensure_channel(target.tcp, topic, "ch")
    identify: dict[str, Any] = {"output_buffer_timeout": -1}
    if output_buffer_size:
        identify["output_buffer_size"] = output_buffer_size
    total = int(rate * (warmup + duration))
    jobs: list[tuple[Worker, dict[str, Any]]] = [
        (
            timing_consumer,
            dict(
                address=target.tcp,
                topic=topic,
                channel="ch",
                rdy=rdy,
                warmup=warmup,
                duration=duration,
                expected=total,
                identify=identify,
            ),
        ),
        (
            paced_publisher,
            dict(address=target.tcp, topic=topic, size=size, rate=rate, seconds=warmup + duration),
        ),
    ]
    meter = BrokerCpu(target)
    results = run_jobs(jobs, timeout=warmup + duration + 120, on_start=meter.begin)
    got, published = results
    delete_topic(target, topic)
    samples = sorted(array.array("q", got["samples"]))
    offered = published["count"] / max(published["end"] - published["start"], 1e-9)
    ms = {
        "p50_ms": percentile(samples, 0.50) / 1e6,
        "p99_ms": percentile(samples, 0.99) / 1e6,
        "p999_ms": percentile(samples, 0.999) / 1e6,
        "max_ms": samples[-1] / 1e6,
    }
    report.add(
        f"offered {offered:.0f} msg/s (asked {rate:.0f}), {len(samples)} samples after "
        f"{warmup:g}s warm-up, {total - got['received']} not received: "
        + ", ".join(f"{k[:-3]} {v:.3f} ms" for k, v in ms.items())
    )
    report.add(
        f"publisher's longest stall: {published['max_lag_ms']:.1f} ms (messages due meanwhile "
        "went out together, stamped when sent)"
    )
    report.metrics.update(
        rate=rate,
        offered=round(offered),
        samples=len(samples),
        missing=total - got["received"],
        publisher_max_lag_ms=round(published["max_lag_ms"], 3),
        **{k: round(v, 3) for k, v in ms.items()},
    )
    report_cpu(report, results, meter)
    return report

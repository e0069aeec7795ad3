"""``topics``: a broker with many topics and channels.

For each size T in ``--topics`` (grown in place: 100, then 900 more to reach 1,000), it
creates the new topics with ``--channels`` channels each over HTTP (``/topic/create``,
``/channel/create``, one keep-alive connection, sequential), then PUBs unbatched round trips
spread over all T topics from one TCP connection, then times ``GET /stats?format=json``.
Per-PUB broker CPU shows whether a PUB costs more when the broker holds more topics.
"""

from __future__ import annotations

import http.client
import itertools
import statistics
import time
from collections.abc import Sequence
from urllib.parse import quote

from benchmarks import _wire
from benchmarks._common import BrokerCpu, delete_topic, report_cpu, unique
from benchmarks._procs import Go, Result, run_workers
from benchmarks._report import Report
from benchmarks._target import Target, cpu_seconds


def _post(conn: http.client.HTTPConnection, path: str) -> None:
    conn.request("POST", path, body=b"")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path}: {response.status} {body[:200]!r}")


def create_graph(
    go: Go,
    http_address: tuple[str, int],
    topics: Sequence[str],
    channels: int,
    pid: int | None = None,
) -> Result:
    """Create each topic, then its ``channels`` channels, one request at a time."""
    conn = http.client.HTTPConnection(*http_address, timeout=60)
    conn.connect()
    go()
    cpu0 = cpu_seconds(pid) if pid else 0.0
    start = time.monotonic()
    count = 0
    for topic in topics:
        name = quote(topic)
        _post(conn, f"/topic/create?topic={name}")
        for c in range(channels):
            _post(conn, f"/channel/create?topic={name}&channel=ch{c}")
        count += 1 + channels
    end = time.monotonic()
    cpu = cpu_seconds(pid) - cpu0 if pid else None
    conn.close()
    return {"count": count, "start": start, "end": end, "broker_cpu_s": cpu}


def pub_spread(
    go: Go, address: tuple[str, int], topics: Sequence[str], size: int, duration: float
) -> Result:
    """One connection: PUB to the topics in turn, waiting for each OK."""
    sock = _wire.connect(address)
    reader = _wire.FrameReader(sock)
    sock.sendall(_wire.identify(client_id="topics", hostname="topics"))
    reader.expect_identify()
    body = b"a" * size
    commands = [_wire.pub(topic, body) for topic in topics]
    go()
    start = time.monotonic()
    end_at = start + duration
    count = 0
    for command in itertools.cycle(commands):
        sock.sendall(command)
        reader.expect_ok()
        count += 1
        if count % 64 == 0 and time.monotonic() >= end_at:
            break
    end = time.monotonic()
    sock.close()
    return {"count": count, "start": start, "end": end}


def get_stats(go: Go, http_address: tuple[str, int], requests: int) -> Result:
    """``GET /stats?format=json`` ``requests`` times on one keep-alive connection."""
    conn = http.client.HTTPConnection(*http_address, timeout=60)
    conn.connect()
    go()
    start = time.monotonic()
    times: list[float] = []
    size = 0
    for _ in range(requests):
        began = time.perf_counter()
        conn.request("GET", "/stats?format=json")
        response = conn.getresponse()
        body = response.read()
        times.append(time.perf_counter() - began)
        if response.status != 200:
            raise RuntimeError(f"GET /stats: {response.status} {body[:200]!r}")
        size = len(body)
    end = time.monotonic()
    conn.close()
    return {"count": requests, "start": start, "end": end, "times": times, "bytes": size}


def topics(
    target: Target,
    sizes: Sequence[int] = (100, 1000),
    channels: int = 10,
    size: int = 200,
    duration: float = 10.0,
    stats_requests: int = 5,
) -> Report:
    """Create up to each of ``sizes`` topics x ``channels``; PUB over them; time /stats."""
    if target.http is None:
        raise SystemExit("topics creates over HTTP: use --start-broker or --http-address")
    report = Report("topics")
    prefix = unique("topics_bench")
    names: list[str] = []
    for total in sorted(sizes):
        new = [f"{prefix}_{i}" for i in range(len(names), total)]
        names += new
        key = f"t{total}_"
        created = run_workers(
            create_graph,
            [dict(http_address=target.http, topics=new, channels=channels, pid=target.pid)],
            timeout=3600,
        )[0]
        seconds = max(created["end"] - created["start"], 1e-9)
        line = (
            f"{total} topics: created {len(new)} topics x {channels} channels "
            f"({created['count']} creates) in {seconds:.2f}s - {created['count'] / seconds:.0f}/s"
        )
        report.metrics[f"{key}creates_per_s"] = round(created["count"] / seconds)
        if created["broker_cpu_s"] is not None:
            per = created["broker_cpu_s"] / max(created["count"], 1) * 1e3
            line += f", broker CPU {per:.3f} ms per create"
            report.metrics[f"{key}broker_ms_per_create"] = round(per, 4)
        report.add(line)

        kwargs = dict(address=target.tcp, topics=names, size=size, duration=duration)
        meter = BrokerCpu(target)
        cpu0 = cpu_seconds(target.pid) if target.pid else 0.0
        results = run_workers(pub_spread, [kwargs], timeout=duration + 120, on_start=meter.begin)
        cpu = cpu_seconds(target.pid) - cpu0 if target.pid else None
        r = results[0]
        rate = r["count"] / max(r["end"] - r["start"], 1e-9)
        line = f"{total} topics: PUB round trips over all topics: {rate:.0f} msg/s"
        report.metrics[f"{key}pub_msgs_per_s"] = round(rate)
        if cpu is not None:
            # includes the worker's set-up (one connect and IDENTIFY): negligible over seconds
            per_pub = cpu / max(r["count"], 1) * 1e3
            line += f", broker CPU {per_pub:.3f} ms per PUB"
            report.metrics[f"{key}broker_ms_per_pub"] = round(per_pub, 4)
        report.add(line)
        report_cpu(report, results, meter, key=f"{key}pub_")

        stats = run_workers(
            get_stats, [dict(http_address=target.http, requests=stats_requests)], timeout=600
        )[0]
        times_ms = sorted(t * 1e3 for t in stats["times"])
        p50, worst = statistics.median(times_ms), times_ms[-1]
        report.add(
            f"{total} topics: GET /stats?format=json x{stats_requests}: p50 {p50:.1f} ms, "
            f"max {worst:.1f} ms, {stats['bytes']} bytes"
        )
        report.metrics.update(
            {
                f"{key}stats_p50_ms": round(p50, 2),
                f"{key}stats_max_ms": round(worst, 2),
                f"{key}stats_bytes": stats["bytes"],
            }
        )
    report.metrics.update(channels=channels, size=size)
    for name in names:
        delete_topic(target, name)
    return report

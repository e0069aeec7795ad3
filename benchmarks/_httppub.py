"""``http-pub``: one message per HTTP ``POST /pub`` request, each waiting for its ``OK``.

Most HTTP producers (curl in a script, a web service's request handler) publish this way. Each
process holds one keep-alive connection (``http.client``) and sends its requests one after
another; ``--connections 1,8`` also runs with 8 such processes at once.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Sequence

from benchmarks._common import BrokerCpu, delete_topic, report_cpu, unique
from benchmarks._procs import Go, Result, run_workers
from benchmarks._report import Report, nsq_line, window
from benchmarks._target import Target


def http_publisher(
    go: Go, address: tuple[str, int], topic: str, size: int, duration: float
) -> Result:
    """One keep-alive connection: POST /pub one message at a time, each answered before the
    next."""
    connection = http.client.HTTPConnection(*address, timeout=30)
    path = f"/pub?topic={topic}"
    body = b"a" * size
    headers = {"Content-Type": "application/octet-stream"}
    connection.request("POST", path, body, headers)  # connected before the start signal
    _expect_ok(connection)
    go()
    start = time.monotonic()
    end_at = start + duration
    count = 0
    while True:
        connection.request("POST", path, body, headers)
        _expect_ok(connection)
        count += 1
        if time.monotonic() >= end_at:
            break
    end = time.monotonic()
    connection.close()
    return {"count": count, "start": start, "end": end}


def _expect_ok(connection: http.client.HTTPConnection) -> None:
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200 or answer != b"OK":
        raise RuntimeError(f"POST /pub answered {response.status} {answer[:200]!r}")


def http_pub(
    target: Target,
    size: int = 200,
    duration: float = 10.0,
    connections: Sequence[int] = (1,),
) -> Report:
    """For each ``k`` in ``connections``: ``k`` processes, each POSTing /pub in turn."""
    report = Report("http-pub")
    if target.http is None:
        raise SystemExit("http-pub needs the broker's HTTP address (--http-address)")
    topic = unique("http_pub_bench")
    for k in connections:
        kwargs = dict(address=target.http, topic=topic, size=size, duration=duration)
        meter = BrokerCpu(target)
        results = run_workers(
            http_publisher, [kwargs] * k, timeout=duration + 120, on_start=meter.begin
        )
        count, seconds = window(results)
        report.add(f"POST /pub, {k} connections: {nsq_line(count, seconds, size)}")
        report.metrics[f"connections_{k}_msgs_per_s"] = round(count / seconds)
        report_cpu(report, results, meter, key=f"connections_{k}_")
    delete_topic(target, topic)
    return report

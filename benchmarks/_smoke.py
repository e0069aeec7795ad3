"""``python -m benchmarks smoke``: every scenario, tiny and short, against a started broker (and a
started registry for ``lookup``).

It checks that the suite runs and reports; it never asserts a speed.
"""

from __future__ import annotations

import time

from benchmarks import _scenarios as sc
from benchmarks._report import Report
from benchmarks._target import started_broker, started_registry

EXPECTED = {
    "gen-writer": "msgs_per_s",
    "gen-pub": "in_flight_1_msgs_per_s",
    "gen-reader": "msgs_per_s",
    "gen-consumers": "c10_msgs_per_s",
    "gen-latency": "p99_ms",
    "writer": "msgs_per_s",
    "reader": "msgs_per_s",
    "pub": "in_flight_4_msgs_per_s",
    "http-pub": "connections_2_msgs_per_s",
    "client-pub": "trinsq_ratio_to_fastest_other",
    "client-sub": "trinsq_ratio_to_fastest_other",
    "consumers": "c100_msgs_per_s",
    "latency": "p999_ms",
    "rss-queued": "rss_mib",
    "mem-request": "http_mpub_defer_left_mib",
    "idle": "cpu_percent",
    "fairness": "pub_p99_ms",
    "lookup": "lookup_p99_ms",
    "topics": "t20_stats_p50_ms",
}
LOOKUP_PRODUCERS = 20


def smoke() -> int:
    began = time.monotonic()
    reports: list[Report] = []
    reports += sc.generator_check(
        procs=2, duration=0.5, in_flight=(1, 4), consumer_count=10, rate=1000, warmup=0.2
    )
    with started_broker() as target:
        print(f"# {target.describe()}", flush=True)
        reports += sc.pair(target, procs=2, duration=10, messages=2000)
        reports.append(sc.pub(target, duration=0.5, in_flight=(1, 4)))
        reports.append(sc.http_pub(target, duration=0.5, connections=(1, 2)))
        reports.append(sc.client_pub(target, duration=0.5, callers=50))
        reports.append(sc.client_sub(target, messages=2000, rdy=200))
        reports.append(sc.consumers(target, messages=2000, procs=2, duration=10))
        reports.append(sc.latency(target, rate=1000, warmup=0.2, duration=0.5))
        reports.append(sc.rss_queued(target, messages=2000, procs=2, settle=0.1))
        reports.append(sc.mem_request(target, settle=0.1, messages=2000))
        reports.append(sc.idle(target, connections=200, procs=2, heartbeat_ms=1000, hold=1.0))
        reports.append(sc.topics(target, sizes=(5, 20), channels=3, duration=0.3))
        reports.append(
            sc.fairness(
                target, duration=1.0, mpub_count=2000, bomb_bytes=16384, heartbeat_clients=5
            )
        )
    with started_registry() as target:
        print(f"# {target.describe()}", flush=True)
        reports.append(sc.lookup(target, producers=LOOKUP_PRODUCERS, requests=50, warmup=5))
    by_name = {report.scenario: report for report in reports}
    problems = [
        f"{name}: no {key} in its report"
        for name, key in EXPECTED.items()
        if name not in by_name or key not in by_name[name].metrics or not by_name[name].lines
    ]
    if by_name.get("reader") and not by_name["reader"].metrics.get("drained"):
        problems.append("reader: did not receive every message the writer published")
    if by_name.get("idle") and by_name["idle"].metrics.get("held") != 200:
        problems.append("idle: the broker closed idle connections that answered heartbeats")
    if by_name.get("fairness") and by_name["fairness"].metrics.get("heartbeat_dropped"):
        problems.append("fairness: the broker dropped clients that answered heartbeats")
    if (
        by_name.get("lookup")
        and by_name["lookup"].metrics.get("lookup_producers") != LOOKUP_PRODUCERS
    ):
        problems.append("lookup: /lookup did not list every registered producer")
    elapsed = time.monotonic() - began
    if problems:
        print("smoke FAILED:\n  " + "\n  ".join(problems), flush=True)
        return 1
    print(f"smoke OK: {len(reports)} reports in {elapsed:.1f}s", flush=True)
    return 0

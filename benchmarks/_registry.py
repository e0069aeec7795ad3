"""``lookup``: the registry's read API with many producers registered.

One process registers ``producers`` fake nsqd over lookupd's TCP protocol and holds them; another
times sequential GETs of /lookup, /nodes, /topics and /channels on one keep-alive connection.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks import _lookupd
from benchmarks._procs import generator_cpu, run_jobs, shared_counter
from benchmarks._report import Report, percentile
from benchmarks._target import Target

TOPIC = "bench_lookup"
ENDPOINTS = ("lookup", "nodes", "topics", "channels")


def lookup(
    target: Target,
    producers: int = 500,
    requests: int = 1000,
    topics: int = 1,
    channels: int = 2,
    warmup: int = 50,
    endpoints: tuple[str, ...] = ENDPOINTS,
) -> Report:
    """Register ``producers`` producers, each of ``topics`` topics (the first is looked up)
    with ``channels`` channels each, then time ``requests`` GETs of each endpoint."""
    if target.http is None:
        raise SystemExit("lookup needs the registry's HTTP address")
    report = Report("lookup")
    names = [TOPIC] + [f"{TOPIC}_{i}" for i in range(1, topics)]
    paths = {
        "lookup": f"/lookup?topic={TOPIC}",
        "nodes": "/nodes",
        "topics": "/topics",
        "channels": f"/channels?topic={TOPIC}",
    }
    done = shared_counter()
    holder = dict(
        address=target.tcp,
        count=producers,
        topics=names,
        channels=[f"ch{i}" for i in range(channels)],
        done=done,
        hold=3600.0,
    )
    timer = dict(
        address=target.http,
        paths=[(name, paths[name]) for name in endpoints],
        count=requests,
        warmup=warmup,
        pid=target.pid,
        done=done,
    )
    results = run_jobs([(_lookupd.producers, holder), (_lookupd.requests, timer)], timeout=3600)
    held, timed = results
    report.add(
        f"{producers} producers registered ({topics} topic(s) x {channels} channel(s) each) "
        f"in {held['register_s']:.2f}s"
    )
    found = len(timed["first"].get("lookup", {}).get("body", {}).get("producers", []))
    report.metrics.update(
        producers=producers,
        topics=topics,
        channels=channels,
        requests=requests,
        lookup_producers=found,
    )
    if "lookup" in timed["first"] and found != producers:
        report.add(f"WARNING: /lookup listed {found} producers, not {producers}")
    for name in endpoints:
        _summarise(report, name, paths[name], timed["runs"][name], timed["first"][name], producers)
    report.add(f"CPU: generators {generator_cpu(results):.0f}% (2 processes, 100% = one core)")
    return report


def _summarise(
    report: Report, name: str, path: str, run: dict[str, Any], first: dict[str, Any], peers: int
) -> None:
    samples = sorted(run["samples_ns"])
    seconds = max(run["end"] - run["start"], 1e-9)
    p50, p99 = percentile(samples, 0.50) / 1e6, percentile(samples, 0.99) / 1e6
    mean = statistics.fmean(samples) / 1e6
    rps = len(samples) / seconds
    line = (
        f"GET {path} ({first['bytes']} bytes): p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
        f"mean {mean:.3f} ms, {rps:.0f} requests/s"
    )
    report.metrics.update(
        {
            f"{name}_bytes": first["bytes"],
            f"{name}_p50_ms": round(p50, 3),
            f"{name}_p99_ms": round(p99, 3),
            f"{name}_mean_ms": round(mean, 3),
            f"{name}_requests_per_s": round(rps),
        }
    )
    cpu = run["server_cpu_s"]
    if cpu is not None:
        per_request = cpu / len(samples) * 1e6
        line += (
            f"; registry CPU {per_request:.0f} us/request ({per_request / peers:.2f} us/producer)"
        )
        report.metrics[f"{name}_server_cpu_us"] = round(per_request, 1)
    report.add(line)

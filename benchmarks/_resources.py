"""Broker resource scenarios: RSS with messages queued, RSS and CPU with idle connections."""

from __future__ import annotations

import time

from benchmarks import _idle, _pub
from benchmarks._common import CPUS, MIB, delete_topic, unique
from benchmarks._procs import run_workers, split
from benchmarks._report import Report
from benchmarks._target import Target, cpu_seconds, rss_bytes, topic_stats
from benchmarks._throughput import fill


def _need_pid(target: Target, scenario: str) -> int:
    if target.pid is None:
        raise SystemExit(f"{scenario} reads the broker's /proc: use --start-broker or --broker-pid")
    return target.pid


def rss_queued(
    target: Target,
    messages: int = 1_000_000,
    size: int = 200,
    batch_size: int = 200,
    procs: int = CPUS,
    settle: float = 2.0,
    channels: int = 1,
) -> Report:
    """Queue ``messages`` on a topic with ``channels`` channels and no consumers; read the
    broker's RSS."""
    pid = _need_pid(target, "rss-queued")
    report = Report("rss-queued")
    topic = unique("rss_queued")
    for number in range(channels):
        _pub.ensure_channel(target.tcp, topic, "ch" if number == 0 else f"ch{number}")
    before = rss_bytes(pid)
    seconds = fill(target, topic, messages, procs, size, batch_size)
    depth = _wait_depth(target, topic, messages, timeout=120)
    time.sleep(settle)
    after = rss_bytes(pid)
    report.add(
        f"{messages} x {size}-byte messages queued in {seconds:.1f}s on {channels} channel(s) "
        f"(first channel's depth {depth}): "
        f"broker RSS {after / MIB:.1f} MiB (was {before / MIB:.1f} MiB before publishing)"
    )
    report.metrics.update(
        messages=messages,
        size=size,
        channels=channels,
        channel_depth=depth,
        rss_before_mib=round(before / MIB, 1),
        rss_mib=round(after / MIB, 1),
        publish_msgs_per_s=round(messages / seconds),
    )
    delete_topic(target, topic)
    return report


def _wait_depth(target: Target, topic: str, messages: int, timeout: float) -> int | None:
    """The channel's depth once it reaches ``messages`` (None without an HTTP address)."""
    if target.http is None:
        return None
    deadline = time.monotonic() + timeout
    depth = 0
    while time.monotonic() < deadline:
        stats = topic_stats(target.http, topic)
        channels = (stats or {}).get("channels") or []
        depth = int(channels[0].get("depth", 0)) if channels else 0
        if depth >= messages:
            break
        time.sleep(0.2)
    return depth


def idle(
    target: Target,
    connections: int = 10_000,
    procs: int = 4,
    heartbeat_ms: int = 5000,
    hold: float = 30.0,
) -> Report:
    """Hold ``connections`` idle, heartbeating connections; the broker's RSS and CPU meanwhile."""
    pid = _need_pid(target, "idle")
    report = Report("idle")
    before = rss_bytes(pid)
    measured: dict[str, float] = {}

    def measure() -> None:
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        measured["rss_connected"] = rss_bytes(pid)
        time.sleep(hold)
        measured["cpu"] = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
        measured["rss"] = rss_bytes(pid)

    kwargs = [
        dict(address=target.tcp, connections=share, heartbeat_ms=heartbeat_ms, hold=hold + 1)
        for share in split(connections, procs)
        if share
    ]
    results = run_workers(_idle.idle_clients, kwargs, timeout=hold + 120, on_start=measure)
    held = sum(r["count"] for r in results)
    heartbeats = sum(r["heartbeats"] for r in results)
    # Every worker connects and IDENTIFYs at once: the union of their set-up windows.
    setup = max(r["setup_end"] for r in results) - min(r["setup_start"] for r in results)
    report.add(
        f"{connections} connections opened and IDENTIFY answered in {setup:.2f}s: "
        f"{connections / setup:.0f} connections/s"
    )
    report.add(
        f"{held} of {connections} connections held {hold:g}s (heartbeat {heartbeat_ms} ms, "
        f"{heartbeats} heartbeats answered): broker RSS {measured['rss'] / MIB:.1f} MiB "
        f"(was {before / MIB:.1f} MiB), CPU {measured['cpu']:.1f}% of one core"
    )
    report.metrics.update(
        connections=connections,
        held=held,
        heartbeat_ms=heartbeat_ms,
        heartbeats=heartbeats,
        rss_before_mib=round(before / MIB, 1),
        rss_mib=round(measured["rss"] / MIB, 1),
        kib_per_connection=round((measured["rss"] - before) / 1024 / max(held, 1), 1),
        connect_per_s=round(connections / setup),
        cpu_percent=round(measured["cpu"], 1),
    )
    return report

"""What the scenarios share: naming, cleanup, and the CPU figures every report carries."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from typing import Any

from benchmarks._procs import generator_cpu
from benchmarks._report import Report
from benchmarks._target import Target, cpu_seconds, http_post

MIB = 1024 * 1024
CPUS = os.cpu_count() or 1


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(3)}"


def delete_topic(target: Target, topic: str) -> None:
    """Best effort: free what a scenario's own topic holds (needs the HTTP address)."""
    if target.http is not None:
        with contextlib.suppress(OSError):
            http_post(target.http, f"/topic/delete?topic={topic}")


class BrokerCpu:
    """The broker's CPU use between ``begin`` (passed as on_start) and ``percent``."""

    def __init__(self, target: Target) -> None:
        self.pid = target.pid
        self.began = (0.0, 0.0)

    def begin(self) -> None:
        if self.pid is not None:
            self.began = (cpu_seconds(self.pid), time.monotonic())

    def percent(self) -> float | None:
        if self.pid is None:
            return None
        cpu, wall = cpu_seconds(self.pid) - self.began[0], time.monotonic() - self.began[1]
        return cpu / wall * 100


def report_cpu(
    report: Report, results: list[dict[str, Any]], meter: BrokerCpu, key: str = ""
) -> None:
    """Report the generators' CPU use (and the broker's when its PID is known).

    ``key`` prefixes the metric names (and labels the line) when a report covers several runs.
    """
    gen = generator_cpu(results)
    broker = meter.percent()
    label = key.rstrip("_") + " " if key else ""
    line = f"{label}CPU: generators {gen:.0f}% ({len(results)} processes)"
    report.metrics[f"{key}gen_cpu_percent"] = round(gen)
    if broker is not None:
        line += f", broker {broker:.0f}%"
        report.metrics[f"{key}broker_cpu_percent"] = round(broker)
    report.add(line + " (100% = one core)")


def rate_lines(report: Report, label: str, results: list[dict[str, Any]]) -> None:
    for i, r in enumerate(results):
        seconds = max(r["end"] - r["start"], 1e-9)
        report.add(
            f"{label} {i}: {r['count']} msgs in {seconds:.3f}s - {r['count'] / seconds:.0f} msg/s"
        )

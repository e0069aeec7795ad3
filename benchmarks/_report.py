"""Scenario reports: printed lines for people, a flat dict of numbers for tables and JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    scenario: str
    metrics: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)
        print(f"[{self.scenario}] {line}", flush=True)

    def to_json(self) -> str:
        return json.dumps({"scenario": self.scenario, **self.metrics}, sort_keys=True)


def nsq_line(count: int, seconds: float, size: int) -> str:
    """bench_writer/bench_reader's summary line: duration, MB/s, ops/s, us/op."""
    seconds = max(seconds, 1e-9)
    mbps = count * size / seconds / 1024 / 1024
    ops = count / seconds
    us_per_op = seconds * 1e6 / count if count else float("inf")
    return f"duration: {seconds:.6f}s - {mbps:.3f}mb/s - {ops:.3f}ops/s - {us_per_op:.3f}us/op"


def window(results: list[dict[str, Any]]) -> tuple[int, float]:
    """Total count and the wall-clock window (earliest start to latest end) of worker results."""
    count = sum(int(r["count"]) for r in results)
    start = min(float(r["start"]) for r in results)
    end = max(float(r["end"]) for r in results)
    return count, max(end - start, 1e-9)


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, -(-int(fraction * 10000) * len(sorted_values) // 10000))  # ceil
    return sorted_values[min(rank, len(sorted_values)) - 1]

"""Python NSQ clients run one after another against one broker, and compared: what the
``client-pub`` and ``client-sub`` scenarios share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import mean
from typing import Any

from benchmarks._common import BrokerCpu
from benchmarks._procs import Result, generator_cpu, run_workers
from benchmarks._report import Report, window
from benchmarks._target import Target


def race(
    report: Report,
    target: Target,
    workers: dict[str, Callable[..., Result]],
    clients: Sequence[str],
    rounds: int,
    prepare: Callable[[str], dict[str, Any]],
    finish: Callable[[str, dict[str, Any]], None],
    timeout: float,
    how: str,
) -> None:
    """Run each client's worker ``rounds`` times, the order rotated each round: ``prepare``
    gives a run's worker arguments (a fresh topic), ``finish`` checks and cleans up after it.
    Adds a line per run (``how`` says what the run was), each client's mean msg/s, and
    trinsq's ratio to the fastest of the others."""
    rates: dict[str, list[float]] = {name: [] for name in clients}
    for round_index in range(rounds):
        shift = round_index % len(clients)
        for name in [*clients[shift:], *clients[:shift]]:
            kwargs = prepare(name)
            meter = BrokerCpu(target)
            results = run_workers(workers[name], [kwargs], timeout=timeout, on_start=meter.begin)
            finish(name, kwargs)
            count, seconds = window(results)
            rates[name].append(count / seconds)
            cpu = f"client CPU {generator_cpu(results):.0f}%"
            broker = meter.percent()
            if broker is not None:
                cpu += f", broker CPU {broker:.0f}%"
            report.add(
                f"{name}: {count} msgs in {seconds:.3f}s - {count / seconds:.0f} msg/s "
                f"({how}; {cpu})"
            )
    for name, values in rates.items():
        report.metrics[f"{name}_msgs_per_s"] = round(mean(values))
    others = [name for name in clients if name != "trinsq"]
    if "trinsq" in clients and others:
        fastest = max(others, key=lambda name: report.metrics[f"{name}_msgs_per_s"])
        ratio = report.metrics["trinsq_msgs_per_s"] / max(
            report.metrics[f"{fastest}_msgs_per_s"], 1
        )
        report.metrics["trinsq_ratio_to_fastest_other"] = round(ratio, 2)
        report.add(f"trinsq.client / fastest other ({fastest}): {ratio:.2f}x")

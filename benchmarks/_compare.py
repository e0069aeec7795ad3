"""``python -m benchmarks compare``: one scenario against two brokers, alternating, with ratios.

Each round runs the scenario once against a broker started from the subject command (default:
this checkout's ``python -m trinsq broker``) and once against one started from the reference
command (for example a Go nsqd binary), each in its own ``python -m benchmarks`` process with
``--start-broker``, so both see the same generators, flags and machine. The table gives every
numeric figure of both sides (all rounds) and the ratio of their medians, subject / reference:
for rates higher is better, for times, CPU and memory lower is.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

SIDES = ("subject", "reference")


def compare(
    scenario_argv: Sequence[str],
    reference: str,
    subject: str = "",
    rounds: int = 3,
    json_path: str | None = None,
) -> int:
    """Run ``scenario_argv`` (a scenario name and its options) ``rounds`` times on each side."""
    if not scenario_argv:
        print("compare: name a scenario after the compare options", file=sys.stderr)
        return 2
    commands = {"subject": subject, "reference": reference}
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="trinsq-compare-") as scratch:
        for number in range(1, rounds + 1):
            for side in SIDES:
                out = os.path.join(scratch, f"{side}-{number}.jsonl")
                argv = [sys.executable, "-m", "benchmarks", *scenario_argv, "--start-broker"]
                if commands[side]:
                    argv.append(f"--broker-command={commands[side]}")
                argv.append(f"--json={out}")
                print(f"# round {number}, {side}: {shlex.join(argv[3:])}", flush=True)
                print(f"# load average: {_loadavg()}", flush=True)
                status = subprocess.run(argv, check=False).returncode
                if status != 0:
                    print(f"compare: the {side} run exited {status}", file=sys.stderr)
                    return 1
                with open(out) as lines:
                    results[side] += [{"round": number, **json.loads(line)} for line in lines]
    rows = table(results["subject"], results["reference"])
    print(f"# subject: {commands['subject'] or 'python -m trinsq broker'}")
    print(f"# reference: {commands['reference']}")
    print(render(rows))
    if json_path:
        with open(json_path, "a") as out_file:
            for row in rows:
                out_file.write(json.dumps(row, sort_keys=True) + "\n")
    return 0


def table(subject: list[dict[str, Any]], reference: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (report, numeric figure): both sides' values by round and the ratio of
    their medians (None when the reference's median is 0)."""
    rows: list[dict[str, Any]] = []
    keys: list[tuple[str, str]] = []
    for record in subject + reference:
        for name, value in record.items():
            key = (str(record.get("scenario")), name)
            if _is_figure(name, value) and key not in keys:
                keys.append(key)
    for scenario, name in keys:
        ours = _values(subject, scenario, name)
        theirs = _values(reference, scenario, name)
        ratio = None
        if ours and theirs and statistics.median(theirs) != 0:
            ratio = statistics.median(ours) / statistics.median(theirs)
        rows.append(
            {
                "scenario": scenario,
                "figure": name,
                "subject": ours,
                "reference": theirs,
                "ratio": ratio,
            }
        )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| report | figure | subject | reference | subject / reference |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['scenario']} | {row['figure']} | {_join(row['subject'])} | "
            f"{_join(row['reference'])} | {ratio} |"
        )
    return "\n".join(lines)


def _is_figure(name: str, value: object) -> bool:
    return (
        name not in ("round", "scenario")
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
    )


def _values(records: list[dict[str, Any]], scenario: str, name: str) -> list[float]:
    return [
        float(record[name])
        for record in records
        if record.get("scenario") == scenario and _is_figure(name, record.get(name))
    ]


def _join(values: list[float]) -> str:
    return " / ".join(f"{value:,.6g}" for value in values) or "-"


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as loadavg:
            return " ".join(loadavg.read().split()[:3])
    except OSError:
        return "unknown"

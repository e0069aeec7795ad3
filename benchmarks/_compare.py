"""``python -m benchmarks compare``: one scenario against two brokers, alternating, with ratios.

Each round runs the scenario once against a broker started from the subject command (default:
this checkout's ``python -m trinsq broker``) and once against one started from each reference
command (a Go nsqd binary, another trinsq's ``python -m trinsq broker``), each in its own
``python -m benchmarks`` process with ``--start-broker``, so all see the same generators,
flags and machine. The table gives every numeric figure of every side (all rounds) and the
ratio of the subject's median to each reference's: for rates higher is better, for times,
CPU and memory lower is.
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


def compare(
    scenario_argv: Sequence[str],
    references: Sequence[str],
    subject: str = "",
    rounds: int = 3,
    json_path: str | None = None,
) -> int:
    """Run ``scenario_argv`` (a scenario name and its options) ``rounds`` times against the
    subject and each reference, alternating within each round."""
    if not scenario_argv:
        print("compare: name a scenario after the compare options", file=sys.stderr)
        return 2
    commands = [subject, *references]
    results: list[list[dict[str, Any]]] = [[] for _ in commands]
    with tempfile.TemporaryDirectory(prefix="trinsq-compare-") as scratch:
        for number in range(1, rounds + 1):
            for side, command in enumerate(commands):
                name = _side_name(side)
                out = os.path.join(scratch, f"{side}-{number}.jsonl")
                argv = [sys.executable, "-m", "benchmarks", *scenario_argv, "--start-broker"]
                if command:
                    argv.append(f"--broker-command={command}")
                argv.append(f"--json={out}")
                print(f"# round {number}, {name}: {shlex.join(argv[3:])}", flush=True)
                print(f"# load average: {_loadavg()}", flush=True)
                status = subprocess.run(argv, check=False).returncode
                if status != 0:
                    print(f"compare: the {name} run exited {status}", file=sys.stderr)
                    return 1
                with open(out) as lines:
                    results[side] += [{"round": number, **json.loads(line)} for line in lines]
    rows = table(results)
    for side, command in enumerate(commands):
        print(f"# {_side_name(side)}: {command or 'python -m trinsq broker'}")
    print(render(rows, len(commands)))
    if json_path:
        with open(json_path, "a") as out_file:
            for row in rows:
                out_file.write(json.dumps(row, sort_keys=True) + "\n")
    return 0


def _side_name(side: int) -> str:
    return "subject" if side == 0 else f"reference {side}"


def table(results: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (report, numeric figure): each side's values by round (``values[0]`` the
    subject's) and the ratio of the subject's median to each reference's (None when that
    median is 0)."""
    rows: list[dict[str, Any]] = []
    keys: list[tuple[str, str]] = []
    for record in (record for side in results for record in side):
        for name, value in record.items():
            key = (str(record.get("scenario")), name)
            if _is_figure(name, value) and key not in keys:
                keys.append(key)
    for scenario, name in keys:
        values = [_values(side, scenario, name) for side in results]
        ours = values[0]
        ratios: list[float | None] = []
        for theirs in values[1:]:
            ratio = None
            if ours and theirs and statistics.median(theirs) != 0:
                ratio = statistics.median(ours) / statistics.median(theirs)
            ratios.append(ratio)
        rows.append({"scenario": scenario, "figure": name, "values": values, "ratios": ratios})
    return rows


def render(rows: list[dict[str, Any]], sides: int) -> str:
    head = ["report", "figure", "subject"]
    for side in range(1, sides):
        head += [f"reference {side}", f"subject / reference {side}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["scenario"], row["figure"], _join(row["values"][0])]
        for values, ratio in zip(row["values"][1:], row["ratios"], strict=True):
            cells += [_join(values), "-" if ratio is None else f"{ratio:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
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

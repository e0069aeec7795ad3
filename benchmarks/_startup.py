"""``startup``: how long the commands take to answer: ``--version``, ``--help``, and a broker's
and a registry's first ``/ping`` OK after launch.

Client libraries' own test suites start an nsqd per test and poll ``/ping`` with a small budget
(nsqjs: under 2 s), so the time to the first OK is what they feel. Any commands can be timed:
``--broker-command='/path/to/nsqd'`` measures Go nsqd the same way.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from benchmarks._report import Report
from benchmarks._target import _free_port

__all__ = ["default_command", "startup"]

_PING = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def default_command(role: str) -> str:
    """``trinsq <role>`` through the installed console script beside this Python."""
    script = os.path.join(os.path.dirname(sys.executable), "trinsq")
    if os.path.exists(script):
        return f"{shlex.quote(script)} {role}"
    return f"{shlex.quote(sys.executable)} -m trinsq {role}"


def _run_once(argv: Sequence[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - began


def _ping_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(_PING)
            reply = b""
            # the whole answer is short: stop at its body rather than wait for the close
            while not reply.endswith(b"\r\n\r\nOK") and (chunk := sock.recv(4096)):
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.1 200")


def _time_to_ping(argv: Sequence[str], http_port: int, timeout: float = 30) -> float:
    """Seconds from launching ``argv`` to its first ``/ping`` answered ``200 OK``."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not _ping_ok(http_port):
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with status {proc.returncode}")
            if time.perf_counter() - began > timeout:
                raise RuntimeError(f"{argv[0]} did not answer /ping within {timeout} s")
            time.sleep(0.002)
        return time.perf_counter() - began
    finally:
        proc.send_signal(signal.SIGTERM)  # our own child, by PID
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"min {ms[0]:.0f} ms, median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms"


def startup(
    runs: int = 10, broker_command: str | None = None, registry_command: str | None = None
) -> Report:
    report = Report("startup")
    broker = shlex.split(broker_command or default_command("broker"))
    registry = shlex.split(registry_command or default_command("registry"))
    timings: dict[str, list[float]] = {
        "version": [],
        "help": [],
        "broker_ping": [],
        "registry_ping": [],
    }
    for _ in range(runs):
        timings["version"].append(_run_once([*broker, "--version"]))
        timings["help"].append(_run_once([*broker, "--help"]))
        data_path = tempfile.mkdtemp(prefix="trinsq-bench-")
        try:
            http = _free_port()
            timings["broker_ping"].append(
                _time_to_ping(
                    [
                        *broker,
                        f"--tcp-address=127.0.0.1:{_free_port()}",
                        f"--http-address=127.0.0.1:{http}",
                        f"--data-path={data_path}",
                    ],
                    http,
                )
            )
        finally:
            shutil.rmtree(data_path, ignore_errors=True)
        http = _free_port()
        timings["registry_ping"].append(
            _time_to_ping(
                [
                    *registry,
                    f"--tcp-address=127.0.0.1:{_free_port()}",
                    f"--http-address=127.0.0.1:{http}",
                ],
                http,
            )
        )
    labels = {
        "version": f"{shlex.join(broker)} --version",
        "help": f"{shlex.join(broker)} --help",
        "broker_ping": "broker launch to first /ping OK",
        "registry_ping": "registry launch to first /ping OK",
    }
    for key, values in timings.items():
        report.add(f"{labels[key]}: {_summary(values)} over {runs} runs")
        report.metrics[f"{key}_median_ms"] = round(statistics.median(values) * 1000, 1)
        report.metrics[f"{key}_max_ms"] = round(max(values) * 1000, 1)
    return report

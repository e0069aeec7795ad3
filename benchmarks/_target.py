"""The broker (or registry) under test: an address given on the command line, or one started here.

A started broker runs as ``python -m trinsq broker`` (or any nsqd command given, Go's included:
both take the same flags) in its own process on free 127.0.0.1 ports with a temporary
--data-path; a started registry as ``python -m trinsq registry`` (or any nsqlookupd) the same
way. Both are stopped by their PID (SIGTERM, then SIGKILL) afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    tcp: tuple[str, int]
    http: tuple[str, int] | None = None
    pid: int | None = None  # known when started here or given with --broker-pid
    started: str = ""  # the command that started it here; empty for an address given
    role: str = "broker"  # or "registry"

    def describe(self) -> str:
        """For the report header: what runs the scenarios (any nsqd when given) and where."""
        where = f"TCP {self.tcp[0]}:{self.tcp[1]}"
        if self.http is not None:
            where += f", HTTP {self.http[0]}:{self.http[1]}"
        if self.pid is not None:
            where += f", pid {self.pid}"
        if self.started:
            return f"started a {self.role} ({self.started}): {where}"
        return f"{self.role} given on the command line: {where}"


def raise_nofile_limit() -> int:
    """Raise this process's open-files soft limit to the hard limit; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def started_broker(
    broker_args: Sequence[str] = (),
    python: str = sys.executable,
    command: Sequence[str] = (),
) -> Iterator[Target]:
    """Start ``command`` (default ``python -m trinsq broker``) on 127.0.0.1 and stop it (by PID)
    on exit. Go's nsqd takes the same four flags given here."""
    with _started("broker", command or [python, "-m", "trinsq", "broker"], broker_args) as target:
        yield target


@contextlib.contextmanager
def started_registry(
    registry_args: Sequence[str] = (),
    python: str = sys.executable,
    command: Sequence[str] = (),
) -> Iterator[Target]:
    """Start ``command`` (default ``python -m trinsq registry``) on 127.0.0.1 and stop it (by
    PID) on exit. Go's nsqlookupd takes the same three flags given here."""
    program = command or [python, "-m", "trinsq", "registry"]
    with _started("registry", program, registry_args) as target:
        yield target


@contextlib.contextmanager
def _started(role: str, program: Sequence[str], extra_args: Sequence[str]) -> Iterator[Target]:
    """Run ``program`` with free 127.0.0.1 addresses (and, for a broker, a temporary data
    path) until the block ends; then stop it by its PID and remove its directory."""
    # Inherited by the process: the idle scenario needs ~10k descriptors, a registry one per
    # registered producer.
    raise_nofile_limit()
    scratch = tempfile.mkdtemp(prefix="trinsq-bench-")
    tcp, http = ("127.0.0.1", _free_port()), ("127.0.0.1", _free_port())
    argv = [
        *program,
        f"--tcp-address={tcp[0]}:{tcp[1]}",
        f"--http-address={http[0]}:{http[1]}",
        *([f"--data-path={scratch}"] if role == "broker" else []),
        "--broadcast-address=127.0.0.1",
        *extra_args,
    ]
    log_path = os.path.join(scratch, f"{role}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        _wait_ready(proc, tcp, http, log_path, role)
        yield Target(tcp=tcp, http=http, pid=proc.pid, started=shlex.join(program), role=role)
    finally:
        _stop(proc)
        shutil.rmtree(scratch, ignore_errors=True)


def _wait_ready(
    proc: subprocess.Popen[bytes],
    tcp: tuple[str, int],
    http: tuple[str, int],
    log_path: str,
    role: str = "broker",
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, errors="replace") as log:
                tail = log.read()[-2000:]
            raise RuntimeError(f"{role} exited with status {proc.returncode}:\n{tail}")
        try:
            with socket.create_connection(tcp, timeout=1):
                pass
            if http_get(http, "/ping", timeout=1) == b"OK":
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{role} did not come up within 30 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # Popen signals its own child by PID
    try:
        proc.wait(60)  # it may write its in-memory queues to disk first
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def http_get(address: tuple[str, int], path: str, timeout: float = 10) -> bytes:
    url = f"http://{address[0]}:{address[1]}{path}"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def http_post(address: tuple[str, int], path: str, timeout: float = 10) -> bytes:
    url = f"http://{address[0]}:{address[1]}{path}"
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def topic_stats(address: tuple[str, int], topic: str) -> dict[str, Any] | None:
    """The topic's entry in ``/stats?format=json`` (nsqd wraps it in ``data`` before 1.0)."""
    stats = json.loads(http_get(address, f"/stats?format=json&topic={topic}"))
    stats = stats.get("data", stats)
    for entry in stats.get("topics") or []:
        if entry.get("topic_name") == topic:
            found: dict[str, Any] = entry
            return found
    return None


def rss_bytes(pid: int) -> int:
    """VmRSS of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # fields[0] is the state (field 3), so utime (14) and stime (15) are at 11 and 12
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_total = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_total / 2**30, 1),
        "python": sys.version.split()[0],
        "kernel": os.uname().release,
    }

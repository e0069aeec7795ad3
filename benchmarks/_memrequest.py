"""``mem-request``: what one legal request costs the broker in memory, and what it gives back.

Issue 13.2's three requests, each the largest nsqd's default 5 MiB --max-body-size allows:

- ``tcp-mpub``: one TCP ``MPUB`` of 1,048,575 one-byte messages;
- ``http-mpub``: ``POST /mpub`` of 2,621,440 one-byte lines;
- ``http-mpub-defer``: the same with ``defer=3600000`` (an hour: every message deferred).

Each case publishes to a fresh topic (with ``--channels`` channels made first, 1 by default)
and reads the broker's ``/proc/<pid>/status``: VmRSS before, the peak while the request runs
(VmHWM, reset through ``/proc/<pid>/clear_refs`` first when that is allowed, and VmRSS sampled
every few milliseconds), VmRSS once answered, after ``POST /topic/delete`` and ``--settle``
seconds, and after ``POST /debug/freememory`` as well.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Callable, Sequence

from benchmarks import _wire
from benchmarks._common import MIB, unique
from benchmarks._report import Report
from benchmarks._target import Target, http_post, rss_bytes, topic_stats

MAX_BODY = 5 * 1024 * 1024  # nsqd's default --max-body-size
CASES = ("tcp-mpub", "http-mpub", "http-mpub-defer")
DEFER_MS = 3_600_000


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current VmRSS (Linux 4.0+, needs the right to write clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


class _PeakSampler:
    """Samples VmRSS in a thread while a request runs; the highest seen."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def tcp_mpub(address: tuple[str, int], topic: str, count: int) -> None:
    """One MPUB of ``count`` one-byte messages, waiting for its OK."""
    inner = _wire.U32.pack(count) + b"\x00\x00\x00\x01x" * count
    command = b"MPUB " + topic.encode() + b"\n" + _wire.U32.pack(len(inner)) + inner
    sock = _wire.connect(address, timeout=600)
    try:
        reader = _wire.FrameReader(sock)
        sock.sendall(_wire.identify(client_id="mem-request"))
        reader.expect_identify()
        sock.sendall(command)
        reader.expect_ok()
    finally:
        sock.close()


def http_mpub(address: tuple[str, int], topic: str, count: int, defer_ms: int = 0) -> None:
    """``POST /mpub`` of ``count`` one-byte lines (``x\\n`` each), waiting for its answer."""
    path = f"/mpub?topic={topic}" + (f"&defer={defer_ms}" if defer_ms else "")
    connection = http.client.HTTPConnection(*address, timeout=600)
    try:
        connection.request("POST", path, b"x\n" * count)
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"/mpub answered {response.status}: {answer[:200]!r}")


def _held(target: Target, topic: str) -> int:
    """Messages the topic's first channel holds (depth plus deferred), or the topic's depth."""
    assert target.http is not None
    stats = topic_stats(target.http, topic) or {}
    channels = stats.get("channels") or []
    if not channels:
        return int(stats.get("depth", 0))
    first = channels[0]
    return int(first.get("depth", 0)) + int(first.get("deferred_count", 0))


def _request(
    case: str, target: Target, topic: str, messages: int
) -> tuple[int, Callable[[], None]]:
    assert target.http is not None
    http = target.http
    if case == "tcp-mpub":
        count = messages or (MAX_BODY - 4) // 5
        return count, lambda: tcp_mpub(target.tcp, topic, count)
    count = messages or MAX_BODY // 2
    defer_ms = DEFER_MS if case == "http-mpub-defer" else 0
    return count, lambda: http_mpub(http, topic, count, defer_ms)


def mem_request(
    target: Target,
    cases: Sequence[str] = CASES,
    channels: int = 1,
    settle: float = 5.0,
    messages: int = 0,
) -> Report:
    """Run each case in turn against the broker; report RSS before, at peak, once answered,
    after the topic's deletion, and after /debug/freememory (all in MiB).

    ``messages`` (0: the most one request may carry) sets every case's message count."""
    if target.pid is None or target.http is None:
        raise SystemExit("mem-request reads /proc and uses HTTP: use --start-broker")
    pid, http = target.pid, target.http
    report = Report("mem-request")
    for case in cases:
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}: one of {', '.join(CASES)}")
        topic = unique("mem_request")
        http_post(http, f"/topic/create?topic={topic}")
        for number in range(channels):
            http_post(http, f"/channel/create?topic={topic}&channel=ch{number}")
        with contextlib.suppress(OSError):
            http_post(http, "/debug/freememory")
        time.sleep(0.5)
        before = rss_bytes(pid)
        peak_reset = reset_peak(pid)
        count, send = _request(case, target, topic, messages)
        began = time.monotonic()
        with _PeakSampler(pid) as sampler:
            send()
        seconds = time.monotonic() - began
        answered = rss_bytes(pid)
        hwm = status_kib(pid, "VmHWM") * 1024 if peak_reset else 0
        peak = max(sampler.peak, hwm, answered)
        held = _held(target, topic)
        http_post(http, f"/topic/delete?topic={topic}", timeout=120)
        time.sleep(settle)
        deleted = rss_bytes(pid)
        with contextlib.suppress(OSError):
            http_post(http, "/debug/freememory", timeout=120)
        time.sleep(1.0)
        freed = rss_bytes(pid)
        figures = {
            "before": before,
            "peak": peak,
            "answered": answered,
            "deleted": deleted,
            "freed": freed,
        }
        report.add(
            f"{case}: {count:,} one-byte messages ({held:,} held) answered in {seconds:.1f}s; "
            + ", ".join(f"{name} {value / MIB:.1f}" for name, value in figures.items())
            + f" MiB RSS; growth at peak {(peak - before) / MIB:.1f} MiB, "
            f"left after delete {(deleted - before) / MIB:.1f} MiB"
            + ("" if peak_reset else " (VmHWM not resettable: peak sampled)")
        )
        key = case.replace("-", "_")
        report.metrics[f"{key}_messages"] = count
        report.metrics[f"{key}_seconds"] = round(seconds, 2)
        for name, value in figures.items():
            report.metrics[f"{key}_{name}_mib"] = round(value / MIB, 1)
        report.metrics[f"{key}_growth_mib"] = round((peak - before) / MIB, 1)
        report.metrics[f"{key}_left_mib"] = round((deleted - before) / MIB, 1)
    return report

"""Run load-generator workers in separate processes with a common start signal.

Each worker sets up (connects, identifies, subscribes), reports ready, waits for the start
signal, runs, and sends back a dict. Timestamps are ``time.monotonic()``, a system-wide clock on
Linux, so the parent can combine windows measured in different processes.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

Result = dict[str, Any]
Go = Callable[[], None]
Worker = Callable[..., Result]

_CTX = mp.get_context("fork")  # no resource-tracker process left behind, unlike "spawn"


class WorkerFailed(RuntimeError):
    pass


def _child(worker: Worker, kwargs: dict[str, Any], index: int, out: Any, start: Any) -> None:
    began: list[float] = []

    def go() -> None:
        out.put(("ready", index, None))
        if not start.wait(120):
            raise WorkerFailed("no start signal within 120 s")
        began.extend((time.process_time(), time.monotonic()))

    try:
        result = worker(go=go, **kwargs)
    except BaseException:
        out.put(("error", index, traceback.format_exc()))
        return
    if began:  # the worker's own CPU use after the start signal, to show it is not the limit
        result["cpu_s"] = time.process_time() - began[0]
        result["wall_s"] = time.monotonic() - began[1]
    out.put(("done", index, result))


def generator_cpu(results: Sequence[Result]) -> float:
    """The workers' CPU time over their run, as % of one core (summed over processes)."""
    cpu = sum(float(r.get("cpu_s", 0.0)) for r in results)
    wall = max((float(r.get("wall_s", 0.0)) for r in results), default=0.0)
    return cpu / wall * 100 if wall else 0.0


def shared_counter() -> Any:
    """A counter the workers of one run share (``.value`` under ``.get_lock()``)."""
    return _CTX.Value("q", 0)


def run_workers(
    worker: Worker,
    kwargs_list: Sequence[dict[str, Any]],
    timeout: float,
    on_start: Callable[[], None] | None = None,
) -> list[Result]:
    """Start one process per kwargs, start them together, and return their results in order."""
    return run_jobs([(worker, kwargs) for kwargs in kwargs_list], timeout, on_start)


def run_jobs(
    jobs: Sequence[tuple[Worker, dict[str, Any]]],
    timeout: float,
    on_start: Callable[[], None] | None = None,
) -> list[Result]:
    """Start one process per (worker, kwargs), start them together, return results in order.

    ``on_start`` runs in this process right after the start signal (to measure the broker while
    the workers run).
    """
    out = _CTX.Queue()
    start = _CTX.Event()
    procs = [
        _CTX.Process(target=_child, args=(worker, kwargs, i, out, start), daemon=True)
        for i, (worker, kwargs) in enumerate(jobs)
    ]
    results: list[Result | None] = [None] * len(procs)
    try:
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + 60
        ready = 0
        while ready < len(procs):
            kind, index, payload = _get(out, deadline, "setting up")
            if kind == "ready":
                ready += 1
            elif kind == "error":
                raise WorkerFailed(f"worker {index} failed:\n{payload}")
            else:  # finished without waiting for the start signal
                results[index] = payload
                ready += 1
        start.set()
        deadline = time.monotonic() + timeout
        if on_start is not None:
            on_start()
        while any(r is None for r in results):
            kind, index, payload = _get(out, deadline, "running")
            if kind == "error":
                raise WorkerFailed(f"worker {index} failed:\n{payload}")
            if kind == "done":
                results[index] = payload
        return [r for r in results if r is not None]
    finally:
        for proc in procs:
            proc.join(5)
        for proc in procs:  # only the processes started here, by their own handle
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def _get(out: Any, deadline: float, what: str) -> tuple[str, int, Any]:
    try:
        item: tuple[str, int, Any] = out.get(timeout=max(0.1, deadline - time.monotonic()))
    except queue.Empty:
        raise WorkerFailed(f"workers timed out while {what}") from None
    return item


def split(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal non-negative shares."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]

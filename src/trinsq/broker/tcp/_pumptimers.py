"""One task wakes every connection's pump when its next heartbeat or output flush is due.

A pump used to wait for its wake-up inside a cancel scope of its own, one per wait: with
10,000 heartbeating clients that is 10,000 deadlines registered with trio and removed again
for every heartbeat, which cost more than the heartbeat. Here a pump waits on its event
alone, and tells this scheduler when it next has something due; the scheduler's one task
sleeps until the earliest due time of all connections (a heap) and wakes the pumps due.

Entries are never removed: a connection that changed its mind (a flush done early, a new
heartbeat interval) is woken once for nothing, which its pump handles by looking at its own
clock before it acts; one that went away cancelled its timer, so its entries wake nobody and
keep nothing of it alive.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import trio

__all__ = ["PumpTimer", "PumpTimers"]


class PumpTimer:
    """One connection's wake-up with :class:`PumpTimers`: at most one pending due time that
    counts (the earliest asked for), and nothing of the connection kept once cancelled."""

    __slots__ = ("_wake", "due")

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake: Callable[[], None] | None = wake
        self.due = math.inf  # the entry that will wake the connection

    def cancel(self) -> None:
        """The connection ended: its entries still in the heap wake nobody, and hold nothing."""
        self._wake = None

    def fire(self, due: float) -> None:
        if due == self.due:  # else an entry superseded by an earlier one
            self.due = math.inf
            if self._wake is not None:
                self._wake()


class PumpTimers:
    """Fires each :class:`PumpTimer` once trio's clock reaches the due time it asked for."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, PumpTimer]] = []
        self._order = itertools.count()
        self._changed = trio.Event()

    def schedule(self, timer: PumpTimer, due: float) -> None:
        """Wake ``timer`` at ``due``, unless an earlier wake-up is pending already."""
        if due >= timer.due:
            return
        timer.due = due
        heap = self._heap
        if not heap or due < heap[0][0]:
            self._changed.set()
        heapq.heappush(heap, (due, next(self._order), timer))

    async def run(self) -> None:
        """Serve the timers until cancelled.

        Cancellation: the only way this returns.
        """
        heap = self._heap
        heappop = heapq.heappop
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                due, _, timer = heappop(heap)
                timer.fire(due)
            self._changed = trio.Event()
            with trio.move_on_at(heap[0][0] if heap else math.inf):
                await self._changed.wait()

"""One task wakes every connection's pump when its next heartbeat or output flush is due.

A pump used to wait for its wake-up inside a cancel scope of its own, one per wait: with
10,000 heartbeating clients that is 10,000 deadlines registered with trio and removed again
for every heartbeat, which cost more than the heartbeat. Here a pump waits on its event
alone, and tells this scheduler when it next has something due; the scheduler's one task
sleeps until the earliest due time of all connections (a heap) and wakes the pumps due.

Entries are never removed: a connection that changed its mind (a flush done early, a new
heartbeat interval) or went away is woken once for nothing, or not at all, which each pump
handles by looking at its own clock before it acts.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import trio

__all__ = ["PumpTimers"]


class PumpTimers:
    """Calls ``fire(due)`` once trio's clock reaches ``due``, for each :meth:`schedule`."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._order = itertools.count()
        self._changed = trio.Event()

    def schedule(self, due: float, fire: Callable[[float], None]) -> None:
        heap = self._heap
        if not heap or due < heap[0][0]:
            self._changed.set()
        heapq.heappush(heap, (due, next(self._order), fire))

    async def run(self) -> None:
        """Serve the timers until cancelled.

        Cancellation: the only way this returns.
        """
        heap = self._heap
        heappop = heapq.heappop
        while True:
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                due, _, fire = heappop(heap)
                fire(due)
            self._changed = trio.Event()
            with trio.move_on_at(heap[0][0] if heap else math.inf):
                await self._changed.wait()

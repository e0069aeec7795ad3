"""One task runs every channel's timers (message timeouts, deferred delivery).

nsqd scans random channels every 100 ms; here each channel asks to be called at its next due
time and a single task sleeps until the earliest one, so precision does not degrade with the
number of channels and an idle broker does no work.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import trio

from .core._channel import Channel

__all__ = ["DeadlineScheduler"]


class DeadlineScheduler:
    """Calls ``channel.on_due(due)`` once trio's clock reaches ``due``.

    Args:
        after_due: called after each round of due channels (the storage commits what their
            requeues wrote).
    """

    def __init__(self, after_due: Callable[[], object] = lambda: None) -> None:
        self._after_due = after_due
        self._heap: list[tuple[float, int, Channel]] = []
        self._order = itertools.count()
        self._changed = trio.Event()

    def schedule(self, channel: Channel, due: float) -> None:
        earliest = self._heap[0][0] if self._heap else math.inf
        heapq.heappush(self._heap, (due, next(self._order), channel))
        if due < earliest:
            self._changed.set()

    async def run(self) -> None:
        """Serve timers until cancelled.

        Cancellation: the only way this returns.
        """
        heap = self._heap
        while True:
            now = trio.current_time()
            if heap and heap[0][0] <= now:
                while heap and heap[0][0] <= now:
                    due, _, channel = heapq.heappop(heap)
                    channel.on_due(due)
                self._after_due()
            self._changed = trio.Event()
            with trio.move_on_at(heap[0][0] if heap else math.inf):
                await self._changed.wait()

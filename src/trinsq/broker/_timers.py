"""One task runs every channel's timers (message timeouts, deferred delivery).

nsqd scans random channels every 100 ms; here each channel asks to be called at its next due
time and a single task sleeps until the earliest one, so precision does not degrade with the
number of channels and an idle broker does no work.

The timers hold their channels weakly: a deleted channel (and all it held) goes at once, not
when its last timer comes due, perhaps an hour later; the entries it leaves are swept out once
they are many.
"""

from __future__ import annotations

import heapq
import itertools
import math
import weakref
from collections.abc import Callable

import trio

from .core._channel import Channel

__all__ = ["DeadlineScheduler"]

# Entries of deleted channels are swept out once there are this many and they are half the heap.
_SWEEP_MIN = 1024


class DeadlineScheduler:
    """Calls ``channel.on_due(due)`` once trio's clock reaches ``due``.

    Args:
        after_due: called after each round of due channels (the storage commits what their
            requeues wrote).
    """

    def __init__(self, after_due: Callable[[], object] = lambda: None) -> None:
        self._after_due = after_due
        self._heap: list[tuple[float, int, weakref.ref[Channel]]] = []
        self._order = itertools.count()
        self._changed = trio.Event()
        self._dropped = 0  # channels gone since the last sweep, each with one entry or more

    def __len__(self) -> int:
        """Entries waiting, some perhaps of channels gone."""
        return len(self._heap)

    def _channel_gone(self, ref: weakref.ref[Channel]) -> None:
        self._dropped += 1

    def schedule(self, channel: Channel, due: float) -> None:
        heap = self._heap
        if self._dropped >= _SWEEP_MIN and 2 * self._dropped >= len(heap):
            heap[:] = [entry for entry in heap if entry[2]() is not None]  # run() holds it
            heapq.heapify(heap)
            self._dropped = 0
        earliest = heap[0][0] if heap else math.inf
        ref = weakref.ref(channel, self._channel_gone)
        heapq.heappush(heap, (due, next(self._order), ref))
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
                    due, _, ref = heapq.heappop(heap)
                    channel = ref()
                    if channel is not None:
                        channel.on_due(due)
                self._after_due()
            self._changed = trio.Event()
            with trio.move_on_at(heap[0][0] if heap else math.inf):
                await self._changed.wait()

"""End-to-end processing latency: nsqd's sliding window of quantile summaries
(nsqd/internal/quantile, github.com/bmizerany/perks).

nsqd keeps, per channel, two perks CKMS "targeted" streams with epsilon 0.01, each covering
half of --e2e-processing-latency-window-time; a FIN inserts ``now - message timestamp`` in ns.
When the current half is older than half the window the streams swap and the new current one
is cleared; queries merge both, and a topic's value merges all of its channels.

The summary here is our own: a Greenwald-Khanna style ``(value, g, delta)`` list with exact
rank bounds, compressed with CKMS' rule under a uniform invariant ``g + delta <= 2 * eps * n``.
That gives every quantile (so every configured target) a rank error of at most
``eps * n = 0.01 * n``, the same bound perks targets for each quantile, and unlike perks the
bound survives merging (rank bounds from both sides are added, see ``_merge``). Memory: about
70 tuples on continuous data, a few hundred with heavy ties; inserts are buffered and folded in
batches of 500 as perks does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs

__all__ = ["EPSILON", "E2eLatency", "LatencyStream", "QuantileSummary", "aggregate"]

EPSILON: Final = 0.01  # perks' default epsilon
_BUFFER_SIZE: Final = 500  # perks folds its insert buffer at this size


@attrs.frozen
class E2eLatency:
    """nsqd's quantile.Result; ``percentiles`` is None when latency is not tracked."""

    count: int = 0
    percentiles: list[dict[str, float]] | None = None


_Tuples = tuple[list[float], list[int], list[int]]  # values, g, delta (parallel lists)


def _merge(ours: _Tuples, theirs: _Tuples) -> _Tuples:
    """Merge two sorted tuple lists into one, keeping each tuple's rank bounds valid.

    A tuple's minimum rank is the sum of the ``g`` up to and including it, its maximum rank
    that plus ``delta``. Placed among the other side's tuples, a tuple has at least as many of
    their elements before it as the previous one's minimum rank (kept by summing ``g``), and
    at most the next one's maximum rank less one: its ``delta`` grows by that next tuple's
    ``g + delta - 1``. Raw values are tuples ``(v, 1, 0)`` and so add nothing to the others.
    """
    our_values, our_g, our_delta = ours
    their_values, their_g, their_delta = theirs
    values: list[float] = []
    widths: list[int] = []
    deltas: list[int] = []
    i = j = 0
    mine, yours = len(our_values), len(their_values)
    while i < mine or j < yours:
        if j >= yours or (i < mine and our_values[i] <= their_values[j]):
            extra = their_g[j] + their_delta[j] - 1 if j < yours else 0
            values.append(our_values[i])
            widths.append(our_g[i])
            deltas.append(our_delta[i] + extra)
            i += 1
        else:
            extra = our_g[i] + our_delta[i] - 1 if i < mine else 0
            values.append(their_values[j])
            widths.append(their_g[j])
            deltas.append(their_delta[j] + extra)
            j += 1
    return values, widths, deltas


class QuantileSummary:
    """An epsilon-approximate quantile summary of a stream of numbers, mergeable.

    ``query(q)`` returns a value whose rank is within ``EPSILON * count`` of ``ceil(q *
    count)``; exact while fewer than ``1 / (2 * EPSILON)`` values have been folded in.
    """

    __slots__ = ("_buffer", "_count", "_deltas", "_values", "_widths")

    def __init__(self) -> None:
        self._values: list[float] = []
        self._widths: list[int] = []
        self._deltas: list[int] = []
        self._count = 0  # values folded into the tuples
        self._buffer: list[float] = []

    @property
    def count(self) -> int:
        return self._count + len(self._buffer)

    @property
    def size(self) -> int:
        """Tuples held (the memory used), after folding in buffered values."""
        self._fold_buffer()
        return len(self._values)

    def insert(self, value: float) -> None:
        self._buffer.append(value)
        if len(self._buffer) >= _BUFFER_SIZE:
            self._fold_buffer()

    def reset(self) -> None:
        self._values, self._widths, self._deltas = [], [], []
        self._count = 0
        self._buffer.clear()

    def merge(self, other: QuantileSummary) -> None:
        """Fold ``other``'s values into this summary (``other`` keeps them too)."""
        other._fold_buffer()
        self._fold_buffer()
        self._fold((other._values, other._widths, other._deltas), other._count)

    def query(self, quantile: float) -> float:
        """The value at ``quantile`` (0 < quantile <= 1); 0 when empty, as perks answers."""
        self._fold_buffer()
        if not self._values:
            return 0.0
        target = max(math.ceil(quantile * self._count), 1)
        best_value, best_error = self._values[0], math.inf
        rank = 0
        for value, width, delta in zip(self._values, self._widths, self._deltas, strict=True):
            rank += width
            if rank - target >= best_error:
                break  # ranks only grow from here: no later tuple can be closer
            error = max(target - rank, rank + delta - target)
            if error < best_error:
                best_value, best_error = value, error
        return float(best_value)

    def _fold_buffer(self) -> None:
        if self._buffer:
            ordered = sorted(self._buffer)
            ones = [1] * len(ordered)
            self._buffer.clear()
            self._fold((ordered, ones, [0] * len(ordered)), len(ordered))

    def _fold(self, theirs: _Tuples, count: int) -> None:
        self._values, self._widths, self._deltas = _merge(
            (self._values, self._widths, self._deltas), theirs
        )
        self._count += count
        self._compress()

    def _compress(self) -> None:
        """Merge each tuple into its successor while the successor's rank span stays within
        ``2 * EPSILON * count``. The first tuple (the minimum, exact) and the last (the
        maximum, exact) are never absorbed, so ranks at both ends stay known."""
        limit = 2 * EPSILON * self._count
        values, widths, deltas = self._values, self._widths, self._deltas
        if len(values) < 3:
            return
        # Walk from the top down, collecting survivors in reverse.
        kept_values, kept_widths, kept_deltas = [values[-1]], [widths[-1]], [deltas[-1]]
        for index in range(len(values) - 2, 0, -1):
            width = widths[index]
            if width + kept_widths[-1] + kept_deltas[-1] <= limit:
                kept_widths[-1] += width
            else:
                kept_values.append(values[index])
                kept_widths.append(width)
                kept_deltas.append(deltas[index])
        kept_values.append(values[0])
        kept_widths.append(widths[0])
        kept_deltas.append(deltas[0])
        kept_values.reverse()
        kept_widths.reverse()
        kept_deltas.reverse()
        self._values, self._widths, self._deltas = kept_values, kept_widths, kept_deltas


class LatencyStream:
    """One channel's latency window (nsqd's quantile.Quantile).

    Args:
        percentiles: the quantiles to report, each in (0, 1]; reported in descending order,
            as nsqd's flag parsing sorts them.
        window: --e2e-processing-latency-window-time in seconds; data older than this (give
            or take half of it) is dropped.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        percentiles: Sequence[float],
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.percentiles = sorted((float(p) for p in percentiles), reverse=True)
        self.window = window
        self._half = window / 2
        self.clock = clock
        self._moved = clock()  # when the current half started
        self._current = QuantileSummary()
        self._previous = QuantileSummary()

    def insert(self, latency_ns: float) -> None:
        self._rotate()
        self._current.insert(latency_ns)

    def merge(self, other: LatencyStream) -> None:
        """Add ``other``'s live data: current half into current, previous into previous
        (nsqd pairs the halves the same way), keeping the later window start."""
        self._rotate()
        other._rotate()
        self._current.merge(other._current)
        self._previous.merge(other._previous)
        self._moved = max(self._moved, other._moved)

    def summary(self) -> QuantileSummary:
        """Both halves merged: what queries see."""
        self._rotate()
        merged = QuantileSummary()
        merged.merge(self._current)
        merged.merge(self._previous)
        return merged

    def result(self) -> E2eLatency:
        summary = self.summary()
        return E2eLatency(
            count=summary.count,
            percentiles=[
                {"quantile": quantile, "value": summary.query(quantile)}
                for quantile in self.percentiles
            ],
        )

    def _rotate(self) -> None:
        now = self.clock()
        elapsed = now - self._moved
        if elapsed <= self._half:
            return
        if elapsed <= 2 * self._half:
            # nsqd's moveWindow: the current half becomes the previous one, the old one clears.
            self._previous, self._current = self._current, self._previous
            self._current.reset()
            self._moved += self._half
            return
        # Both halves are stale (or the window is zero): step on as nsqd's loop would.
        self._previous.reset()
        self._current.reset()
        if self._half > 0:
            self._moved += (math.ceil(elapsed / self._half) - 1) * self._half
        else:
            self._moved = now


def aggregate(streams: Iterable[LatencyStream | None]) -> E2eLatency:
    """A topic's latency: all of its channels' streams merged (nsqd's
    AggregateChannelE2eProcessingLatency); empty when none of them tracks latency."""
    merged: LatencyStream | None = None
    for stream in streams:
        if stream is None:
            continue
        if merged is None:
            merged = LatencyStream(stream.percentiles, stream.window, stream.clock)
        merged.merge(stream)
    return E2eLatency() if merged is None else merged.result()

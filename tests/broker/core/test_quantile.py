"""The e2e latency summary and window: accuracy against exact ranks, memory, swap, merge."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable

import pytest

from trinsq.broker.core._quantile import (
    EPSILON,
    E2eLatency,
    LatencyStream,
    QuantileSummary,
    aggregate,
)

QUANTILES = [1.0, 0.999, 0.99, 0.95, 0.5, 0.25, 0.01, 0.001]


def rank_error(ordered: list[float], quantile: float, value: float) -> int:
    """How far ``value``'s rank(s) in ``ordered`` lie from nearest-rank ``ceil(q * n)``."""
    low = bisect.bisect_left(ordered, value) + 1
    high = bisect.bisect_right(ordered, value)
    assert low <= high, f"{value} was never inserted"
    target = max(math.ceil(quantile * len(ordered)), 1)
    return 0 if low <= target <= high else min(abs(target - low), abs(target - high))


def summary_of(values: list[float]) -> QuantileSummary:
    summary = QuantileSummary()
    for value in values:
        summary.insert(value)
    return summary


def assert_within_bound(summary: QuantileSummary, values: list[float]) -> None:
    ordered = sorted(values)
    assert summary.count == len(values)
    for quantile in QUANTILES:
        error = rank_error(ordered, quantile, summary.query(quantile))
        assert error <= EPSILON * len(values), (quantile, error)


Generator = Callable[[random.Random, int], list[float]]
DATA: dict[str, Generator] = {
    "uniform": lambda rng, n: [rng.random() for _ in range(n)],
    "lognormal": lambda rng, n: [rng.lognormvariate(15, 2) for _ in range(n)],
    "ascending": lambda rng, n: [float(i) for i in range(n)],
    "descending": lambda rng, n: [float(n - i) for i in range(n)],
    "few_values": lambda rng, n: [float(rng.randrange(5)) for _ in range(n)],
}


@pytest.mark.parametrize("kind", DATA)
def test_targets_within_perks_error_and_memory_bounded(kind: str) -> None:
    rng = random.Random(kind)
    values = DATA[kind](rng, 200_000)
    summary = summary_of(values)
    assert_within_bound(summary, values)
    # 1 / (2 * EPSILON) tuples at best; the CKMS rule keeps it a small multiple of that.
    assert summary.size < 600


def test_small_streams_are_exact() -> None:
    rng = random.Random(1)
    values = [float(rng.randrange(1_000_000)) for _ in range(49)]
    summary = summary_of(values)
    ordered = sorted(values)
    for quantile in QUANTILES:
        assert summary.query(quantile) == ordered[max(math.ceil(quantile * 49), 1) - 1]
    assert summary.query(1.0) == max(values)


def test_maximum_is_exact_however_large_the_stream() -> None:
    rng = random.Random(2)
    values = [rng.expovariate(1) for _ in range(50_000)]
    assert summary_of(values).query(1.0) == max(values)


def test_empty_summary_answers_zero() -> None:
    summary = QuantileSummary()
    assert summary.count == 0
    assert summary.query(0.99) == 0.0


def test_merge_keeps_the_bound_and_leaves_the_source() -> None:
    rng = random.Random(3)
    parts = [
        [rng.expovariate(1 / (i + 1)) for _ in range(rng.randrange(1, 30_000))] for i in range(12)
    ]
    summaries = [summary_of(part) for part in parts]
    merged = QuantileSummary()
    for summary in summaries:
        merged.merge(summary)
    everything = [value for part in parts for value in part]
    assert_within_bound(merged, everything)
    # Pairwise merges (a tree) too: each level adds its rank bounds, the bound still holds.
    while len(summaries) > 1:
        pair = QuantileSummary()
        pair.merge(summaries.pop())
        pair.merge(summaries.pop())
        summaries.insert(0, pair)
    assert_within_bound(summaries[0], everything)
    assert_within_bound(summary_of(parts[0]), parts[0])


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_window_swaps_halves_and_forgets_old_data() -> None:
    clock = FakeClock()
    stream = LatencyStream([0.5, 1.0], window=10, clock=clock)
    stream.insert(5)
    clock.now += 5  # exactly half a window: still the first half
    stream.insert(7)
    assert stream.result().count == 2
    clock.now += 1  # the first half moves to "previous"; both still count
    stream.insert(9)
    assert stream.result() == E2eLatency(
        count=3, percentiles=[{"quantile": 1.0, "value": 9.0}, {"quantile": 0.5, "value": 7.0}]
    )
    clock.now += 5  # the first half (5, 7) is dropped
    assert stream.result().count == 1
    clock.now += 100  # everything is stale
    assert stream.result() == E2eLatency(
        count=0, percentiles=[{"quantile": 1.0, "value": 0.0}, {"quantile": 0.5, "value": 0.0}]
    )
    stream.insert(3)  # and the window goes on in step
    clock.now += 4
    assert stream.result().count == 1


def test_zero_window_keeps_only_the_present() -> None:
    clock = FakeClock()
    stream = LatencyStream([1.0], window=0, clock=clock)
    stream.insert(1)
    assert stream.result().count == 1
    clock.now += 0.001
    assert stream.result().count == 0


def test_percentiles_reported_in_descending_order() -> None:
    stream = LatencyStream([0.5, 1.0, 0.99], window=600)
    quantiles = [item["quantile"] for item in stream.result().percentiles or []]
    assert quantiles == [1.0, 0.99, 0.5]


def test_aggregate_merges_channels() -> None:
    clock = FakeClock()
    first = LatencyStream([1.0, 0.5], window=10, clock=clock)
    second = LatencyStream([1.0, 0.5], window=10, clock=clock)
    for value in (1, 2, 3):
        first.insert(value)
    clock.now += 6  # second's data lands in a later half than first's
    for value in (10, 20):
        second.insert(value)
    assert aggregate([first, None, second]) == E2eLatency(
        count=5, percentiles=[{"quantile": 1.0, "value": 20.0}, {"quantile": 0.5, "value": 3.0}]
    )
    assert first.result().count == 3  # the channels keep their own data
    assert aggregate([None]) == aggregate([]) == E2eLatency(count=0, percentiles=None)

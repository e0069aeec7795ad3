"""``--rate``'s schedule, on a clock the test owns."""

from __future__ import annotations

import pytest

from trinsq.tools.pub._throttle import Throttle


def _send_times(throttle: Throttle, count: int, start: float) -> list[float]:
    """When each of ``count`` messages goes, each sent as soon as allowed."""
    now, times = start, []
    for _ in range(count):
        now += throttle.delay(now)
        throttle.spend(now)
        times.append(now)
    return times


def test_one_message_at_once_then_one_per_interval() -> None:
    throttle = Throttle(4, now=100.0)
    assert _send_times(throttle, 5, 100.0) == pytest.approx([100.0, 100.25, 100.5, 100.75, 101.0])


def test_a_quiet_second_allows_a_burst_of_rate_and_no_more() -> None:
    throttle = Throttle(10, now=0.0)
    throttle.spend(0.0)
    # ten seconds idle: the balance is capped at one second's worth
    times = _send_times(throttle, 12, 10.0)
    assert times[:10] == pytest.approx([10.0] * 10)
    assert times[10:] == pytest.approx([10.1, 10.2])


def test_sustained_rate_is_the_rate() -> None:
    throttle = Throttle(1000, now=0.0)
    times = _send_times(throttle, 5001, 0.0)
    assert times[-1] == pytest.approx(5.0)


def test_a_rate_below_one_is_no_throttle() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Throttle(0, now=0.0)

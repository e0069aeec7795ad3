"""Backoff durations, requeue delays and giving up, as go-nsq computes them."""

from __future__ import annotations

import random

import pytest

from trinsq.client._backoff import BackoffPolicy, BackoffStrategy, gives_up, requeue_delay


def test_exponential_durations_double_from_the_multiplier_and_are_capped() -> None:
    policy = BackoffPolicy(multiplier=0.5, max_duration=5.0)
    rng = random.Random(1)
    assert [policy.duration(level, rng) for level in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_the_level_stops_rising_where_its_duration_would_pass_the_cap() -> None:
    policy = BackoffPolicy(multiplier=1.0, max_duration=10.0)
    assert [policy.may_enter(level) for level in range(1, 5)] == [True, True, True, False]


def test_max_duration_zero_means_no_backoff() -> None:
    assert not BackoffPolicy(multiplier=1.0, max_duration=0.0).may_enter(1)


def test_full_jitter_is_uniform_below_the_exponential() -> None:
    policy = BackoffPolicy(multiplier=1.0, max_duration=100.0, strategy=BackoffStrategy.FULL_JITTER)
    rng = random.Random(7)
    samples = [policy.duration(3, rng) for _ in range(2000)]
    assert all(0.0 <= sample < 8.0 for sample in samples)
    assert len(set(samples)) > 1900
    assert 3.5 < sum(samples) / len(samples) < 4.5


def test_full_jitter_is_capped_too() -> None:
    policy = BackoffPolicy(multiplier=1.0, max_duration=2.0, strategy=BackoffStrategy.FULL_JITTER)
    rng = random.Random(3)
    assert max(policy.duration(10, rng) for _ in range(200)) == 2.0


def test_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        BackoffPolicy(multiplier=-1.0)


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(0, 0.0), (1, 90.0), (2, 180.0), (10, 900.0), (11, 900.0), (1000, 900.0)],
)
def test_requeue_delay_grows_with_attempts_up_to_the_max(attempts: int, expected: float) -> None:
    assert requeue_delay(attempts, default_delay=90.0, max_delay=900.0) == expected


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "expected"),
    [(5, 5, False), (6, 5, True), (1, 1, False), (2, 1, True), (65535, 0, False)],
)
def test_gives_up_past_max_attempts(attempts: int, max_attempts: int, expected: bool) -> None:
    assert gives_up(attempts, max_attempts) is expected

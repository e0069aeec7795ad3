"""How long a consumer waits after failures, as go-nsq's consumer does: the backoff duration of a
backoff level, the delay a requeued message is given, and when a message is given up.

All durations are seconds (floats). Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import enum
import random

import attrs

__all__ = ["BackoffPolicy", "BackoffStrategy", "gives_up", "requeue_delay"]


class BackoffStrategy(enum.Enum):
    """go-nsq's ``backoff_strategy`` option."""

    #: ``multiplier * 2 ** level`` (go-nsq's default, ``ExponentialStrategy``).
    EXPONENTIAL = "exponential"
    #: A uniformly random duration in ``[0, multiplier * 2 ** level)`` (``FullJitterStrategy``).
    FULL_JITTER = "full_jitter"


@attrs.frozen
class BackoffPolicy:
    """The duration of each backoff level.

    Args:
        multiplier: go-nsq's ``backoff_multiplier``: the unit the exponential counts in.
        max_duration: go-nsq's ``max_backoff_duration``: no level waits longer, and a level whose
            duration would exceed it is never entered (0 turns backoff off).
        strategy: exponential, or exponential with full jitter.
    """

    multiplier: float = 1.0
    max_duration: float = 120.0
    strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL

    def __attrs_post_init__(self) -> None:
        if self.multiplier < 0 or self.max_duration < 0:
            raise ValueError("backoff durations must not be negative")

    def nominal(self, level: int) -> float:
        """The un-jittered duration of ``level`` (``multiplier * 2 ** level``), not capped."""
        return self.multiplier * (2.0 ** min(level, 1000))

    def duration(self, level: int, rng: random.Random) -> float:
        """How long level ``level`` (1, 2, ...) waits, capped at ``max_duration``."""
        nominal = self.nominal(level)
        if self.strategy is BackoffStrategy.FULL_JITTER:
            nominal = rng.random() * nominal
        return min(nominal, self.max_duration)

    def may_enter(self, level: int) -> bool:
        """Whether the counter may rise to ``level``: go-nsq stops raising it once the next
        level's duration would exceed ``max_duration`` (so 0 means no backoff at all)."""
        return self.nominal(level) <= self.max_duration


def requeue_delay(attempts: int, default_delay: float, max_delay: float) -> float:
    """The delay of a requeue the caller did not give one: ``default_delay`` times the
    message's attempts, at most ``max_delay`` (go-nsq's linear requeue delay)."""
    return min(default_delay * max(attempts, 0), max_delay)


def gives_up(attempts: int, max_attempts: int) -> bool:
    """Whether a message delivered ``attempts`` times is past ``max_attempts`` (0: never)."""
    return max_attempts > 0 and attempts > max_attempts

"""``--rate``: at most ``rate`` messages a second (sans-IO; the caller owns the clock).

to_nsq v1.3.0 keeps a balance that starts at 1, gains one every 1/rate seconds up to at most
``rate`` (one second's worth) and loses one per message. This is that balance as a token
bucket on a continuous clock: a burst of at most ``rate`` after a quiet second, ``rate`` a
second sustained. (to_nsq waits one interval when the balance is spent and then publishes
anyway, so it can fall behind its own balance; here a message waits until it is covered.)
"""

from __future__ import annotations

__all__ = ["Throttle"]


class Throttle:
    """When the next message may go, given ``rate`` per second (``rate >= 1``)."""

    def __init__(self, rate: int, now: float) -> None:
        if rate < 1:
            raise ValueError("a throttle needs a rate of at least 1 a second")
        self.rate = rate
        self._balance = 1.0
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._balance = min(float(self.rate), self._balance + (now - self._at) * self.rate)
            self._at = now

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next message may go (0: at once)."""
        self._refill(now)
        if self._balance >= 1:
            return 0.0
        return (1 - self._balance) / self.rate

    def spend(self, now: float) -> None:
        """A message went at ``now``."""
        self._refill(now)
        self._balance -= 1

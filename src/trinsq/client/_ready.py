"""A consumer's RDY bookkeeping across its nsqd connections, modelled on go-nsq's consumer.go.

The coordinator decides what RDY count each connection should have and when; it never does I/O
and never reads a clock. Every method takes ``now`` (seconds on any monotonic clock) and returns
the RDY commands to send, as ``(connection key, count)`` pairs in order. The I/O layer calls
:meth:`ReadyCoordinator.tick` when :meth:`ReadyCoordinator.deadline` passes.

What it does, as go-nsq does:

- ``max_in_flight`` is spread over the connections: each gets ``max_in_flight / connections``
  (at least 1, rounded down), never more than the server's ``max_rdy_count``, and the sum of RDY
  counts never exceeds ``max_in_flight`` (a request that would is truncated, or refused and
  retried 5 s later when the connection has RDY 0).
- With more connections than ``max_in_flight``, every ``redistribute_interval`` connections
  idle for ``low_rdy_idle_timeout`` (or holding RDY for ``low_rdy_timeout``) give their RDY
  back, and the free RDY goes, 1 each, to connections chosen at random.
- Backoff: a requeue with backoff raises the backoff level; every connection goes to RDY 0 and,
  after the level's duration, one connection chosen at random gets RDY 1 to test the waters. A
  finish lowers the level (at 0 every connection returns to its share); a failure raises it.
  Signals that arrive while a backoff duration is running are ignored.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable
from typing import Final, Generic, TypeVar

import attrs

from ._backoff import BackoffPolicy

__all__ = ["DEFAULT_MAX_RDY", "RdyCommand", "ReadyCoordinator", "ReadyTimings"]

K = TypeVar("K", bound=Hashable)

#: What go-nsq assumes when IDENTIFY answers without a ``max_rdy_count``.
DEFAULT_MAX_RDY: Final = 2500
#: How long a refused RDY on a starved connection waits before it is asked again (go-nsq).
_RETRY_DELAY: Final = 5.0
#: How long the coordinator waits to test again when no connection could take the RDY 1.
_RESUME_RETRY: Final = 1.0

RdyCommand = tuple[K, int]


@attrs.frozen
class ReadyTimings:
    """go-nsq's RDY timing options, in seconds."""

    redistribute_interval: float = 5.0
    low_rdy_idle_timeout: float = 10.0
    low_rdy_timeout: float = 30.0


@attrs.define
class _Connection:
    max_rdy: int
    last_message: float
    rdy: int = 0
    last_rdy: float = -math.inf
    in_flight: int = 0
    retry_at: float | None = None
    retry_count: int = 0


class ReadyCoordinator(Generic[K]):
    """RDY state of one consumer over any number of connections keyed by ``K``."""

    def __init__(
        self,
        max_in_flight: int,
        backoff: BackoffPolicy,
        *,
        now: float,
        timings: ReadyTimings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_in_flight < 0:
            raise ValueError("max_in_flight must not be negative")
        self._max_in_flight = max_in_flight
        self._policy = backoff
        self._timings = timings or ReadyTimings()
        self._rng = rng or random.Random()
        self._connections: dict[K, _Connection] = {}
        self._total_rdy = 0
        self._backoff_level = 0
        self._backoff_until: float | None = None
        self._need_redistribute = False
        self._next_redistribute = now + self._timings.redistribute_interval
        self._stopped = False
        self._timer_set = False

    # ----------------------------------------------------------------- state, for callers
    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    @property
    def total_rdy(self) -> int:
        """The sum of the RDY counts last sent on every connection."""
        return self._total_rdy

    @property
    def backoff_level(self) -> int:
        return self._backoff_level

    @property
    def in_backoff(self) -> bool:
        """Whether failures have the consumer throttled (level above 0)."""
        return self._backoff_level > 0

    @property
    def backoff_until(self) -> float | None:
        """When the running backoff duration ends (then one connection gets RDY 1), if any."""
        return self._backoff_until

    @property
    def connections(self) -> list[K]:
        return list(self._connections)

    def rdy(self, key: K) -> int:
        """The RDY count last sent on ``key``."""
        return self._connections[key].rdy

    def in_flight(self, key: K) -> int:
        return self._connections[key].in_flight

    def per_connection(self) -> int:
        """Each connection's share of ``max_in_flight`` (go-nsq's ``perConnMaxInFlight``)."""
        count = max(len(self._connections), 1)
        share = self._max_in_flight / count
        return int(min(max(1.0, share), float(self._max_in_flight)))

    def is_starved(self) -> bool:
        """Whether some connection holds nearly its whole RDY count in flight."""
        for connection in self._connections.values():
            threshold = int(connection.rdy * 0.85)
            if connection.in_flight >= threshold and connection.in_flight > 0:
                return True
        return False

    def take_timer_change(self) -> bool:
        """Whether a backoff duration or a retry was scheduled since the last call (the
        :meth:`deadline` may have come closer)."""
        changed, self._timer_set = self._timer_set, False
        return changed

    def deadline(self) -> float:
        """The next time :meth:`tick` has work to do (never, once stopped)."""
        if self._stopped:
            return math.inf
        deadlines = [self._next_redistribute]
        if self._backoff_until is not None:
            deadlines.append(self._backoff_until)
        deadlines.extend(c.retry_at for c in self._connections.values() if c.retry_at is not None)
        return min(deadlines)

    # ----------------------------------------------------------------- events
    def add_connection(self, key: K, *, max_rdy: int | None, now: float) -> list[RdyCommand[K]]:
        """A connection subscribed; ``max_rdy`` is its IDENTIFY ``max_rdy_count`` (None: the
        server did not say). Others lower their share first, then the new one gets its own."""
        if key in self._connections:
            raise ValueError(f"connection {key!r} already added")
        self._connections[key] = _Connection(
            max_rdy=DEFAULT_MAX_RDY if max_rdy is None else max_rdy, last_message=now
        )
        out: list[RdyCommand[K]] = []
        for other in list(self._connections):
            if other != key:
                self._maybe_update(other, now, out)
        self._maybe_update(key, now, out)
        return out

    def remove_connection(self, key: K, now: float) -> list[RdyCommand[K]]:
        """``key`` is gone; its RDY is freed, and moved to another connection when that is
        needed (go-nsq leaves that to the next redistribution; this does it at once)."""
        connection = self._connections.pop(key, None)
        if connection is None:
            return []
        self._total_rdy -= connection.rdy
        left = len(self._connections)
        had_rdy = connection.retry_at is not None or connection.rdy > 0
        if had_rdy and (left == self._max_in_flight or self.in_backoff):
            self._need_redistribute = True
        out: list[RdyCommand[K]] = []
        if self._need_redistribute and not self._stopped:
            self._redistribute(now, out)
        elif not self.in_backoff and self._backoff_until is None:
            # Fewer connections: each remaining one may take a larger share.
            for other in list(self._connections):
                self._maybe_update(other, now, out)
        return out

    def message_received(self, key: K, now: float) -> None:
        connection = self._connections.get(key)
        if connection is not None:
            connection.in_flight += 1
            connection.last_message = now

    def message_finished(self, key: K, now: float) -> list[RdyCommand[K]]:
        """A message from ``key`` was finished: a success, which lowers the backoff level."""
        self._settle(key)
        return self._signal(key, _RESUME, now)

    def message_requeued(self, key: K, *, backoff: bool, now: float) -> list[RdyCommand[K]]:
        """A message from ``key`` was requeued; ``backoff`` says whether it counts as a
        failure that raises the backoff level (otherwise a running backoff just continues)."""
        self._settle(key)
        return self._signal(key, _BACKOFF if backoff else _CONTINUE, now)

    def message_dropped(self, key: K) -> None:
        """A message from ``key`` will get no answer (its connection went away)."""
        self._settle(key)

    def set_max_in_flight(self, max_in_flight: int, now: float) -> list[RdyCommand[K]]:
        """Change ``max_in_flight`` (0 pauses) and update every connection to match."""
        if max_in_flight < 0:
            raise ValueError("max_in_flight must not be negative")
        out: list[RdyCommand[K]] = []
        if max_in_flight == self._max_in_flight:
            return out
        self._max_in_flight = max_in_flight
        for key in list(self._connections):
            if self.in_backoff and self._total_rdy > max_in_flight:
                # Paused while backing off: the test RDY goes too (go-nsq leaves it).
                self._update(key, 0, now, out)
            else:
                self._maybe_update(key, now, out)
        return out

    def stop(self) -> None:
        """The consumer is stopping: no more RDY is sent (CLS does the rest)."""
        self._stopped = True
        self._backoff_until = None
        for connection in self._connections.values():
            connection.retry_at = None

    def tick(self, now: float) -> list[RdyCommand[K]]:
        """Do what is due at ``now``: end a backoff duration, retry refused RDY, redistribute."""
        out: list[RdyCommand[K]] = []
        if self._stopped:
            return out
        if self._backoff_until is not None and now >= self._backoff_until:
            self._resume(now, out)
        for key, connection in list(self._connections.items()):
            if connection.retry_at is not None and now >= connection.retry_at:
                connection.retry_at = None
                self._update(key, connection.retry_count, now, out)
        if now >= self._next_redistribute:
            self._next_redistribute = now + self._timings.redistribute_interval
            self._redistribute(now, out)
        return out

    # ----------------------------------------------------------------- internals
    def _settle(self, key: K) -> None:
        connection = self._connections.get(key)
        if connection is not None and connection.in_flight > 0:
            connection.in_flight -= 1

    def _signal(self, key: K, signal: int, now: float) -> list[RdyCommand[K]]:
        out: list[RdyCommand[K]] = []
        if self._stopped or self._backoff_until is not None:
            # A duration is running: many failures or successes at once must not swing the
            # level straight to its maximum or back to 0.
            return out
        updated = False
        if signal == _RESUME and self._backoff_level > 0:
            self._backoff_level -= 1
            updated = True
        elif signal == _BACKOFF and self._policy.may_enter(self._backoff_level + 1):
            self._backoff_level += 1
            updated = True
        if self._backoff_level == 0 and updated:
            share = self.per_connection()
            for other in list(self._connections):
                self._update(other, share, now, out)
        elif self._backoff_level > 0:
            for other in list(self._connections):
                self._update(other, 0, now, out)
            self._backoff_until = now + self._policy.duration(self._backoff_level, self._rng)
            self._timer_set = True
        return out

    def _resume(self, now: float, out: list[RdyCommand[K]]) -> None:
        """A backoff duration ended: one connection, chosen at random, gets RDY 1."""
        candidates = list(self._connections)
        if not candidates:
            self._backoff_until = now + _RESUME_RETRY
            self._timer_set = True
            return
        choice = candidates[self._rng.randrange(len(candidates))]
        if not self._update(choice, 1, now, out):
            self._backoff_until = now + _RESUME_RETRY
            self._timer_set = True
            return
        self._backoff_until = None

    def _maybe_update(self, key: K, now: float, out: list[RdyCommand[K]]) -> None:
        if self.in_backoff or self._backoff_until is not None or self._stopped:
            return
        self._update(key, self.per_connection(), now, out)

    def _update(self, key: K, count: int, now: float, out: list[RdyCommand[K]]) -> bool:
        """go-nsq's ``updateRDY``: bound ``count`` and send it. False when it was refused."""
        connection = self._connections.get(key)
        if connection is None or self._stopped:
            return False
        count = min(count, connection.max_rdy)
        connection.retry_at = None
        # Never more than max_in_flight over all connections: truncate where possible, which
        # lets a new connection take part of what is left.
        possible = self._max_in_flight - self._total_rdy + connection.rdy
        if 0 < possible < count:
            count = possible
        elif possible <= 0 < count:
            # Left at 0 it would starve: ask again later (any other update cancels this).
            connection.retry_at = now + _RETRY_DELAY
            self._timer_set = True
            connection.retry_count = count
            if connection.rdy == 0:
                return False
            # It holds RDY the others need (max_in_flight was lowered): it gives it all up,
            # where go-nsq would leave it above max_in_flight.
            count = 0
        self._send(key, connection, count, now, out)
        return True

    def _send(
        self, key: K, connection: _Connection, count: int, now: float, out: list[RdyCommand[K]]
    ) -> None:
        if count == 0 and connection.rdy == 0:
            return
        self._total_rdy += count - connection.rdy
        previous = connection.rdy
        connection.rdy = count
        if count > 0:
            connection.last_rdy = now
        if count != previous:
            out.append((key, count))

    def _redistribute(self, now: float, out: list[RdyCommand[K]]) -> None:
        """go-nsq's ``redistributeRDY``: with more connections than ``max_in_flight`` (or in
        backoff with several), move RDY from idle connections to others chosen at random."""
        if self._backoff_until is not None or not self._connections:
            return
        if len(self._connections) > self._max_in_flight:
            self._need_redistribute = True
        if self.in_backoff and len(self._connections) > 1:
            self._need_redistribute = True
        if not self._need_redistribute:
            return
        self._need_redistribute = False
        possible: list[K] = []
        for key, connection in self._connections.items():
            if connection.rdy > 0 and (
                now - connection.last_message > self._timings.low_rdy_idle_timeout
                or now - connection.last_rdy > self._timings.low_rdy_timeout
            ):
                self._update(key, 0, now, out)
            possible.append(key)
        limit = 1 if self.in_backoff else self._max_in_flight
        available = limit - self._total_rdy
        while possible and available > 0:
            available -= 1
            key = possible.pop(self._rng.randrange(len(possible)))
            self._update(key, 1, now, out)


_RESUME: Final = 0
_BACKOFF: Final = 1
_CONTINUE: Final = 2

"""nsq_stat's table, sans-IO: a channel's totals summed over nodes, and the rows of rates and
counts printed at each poll.

The layout is nsq_stat v1.3.0's, character for character: the two header lines before the first
poll and again every 25 polls, then one row per poll after the first. Rates are per second over
the nominal ``--interval`` (not the measured time between polls) and truncated toward zero, as
Go's ``int64(float64(delta) / interval.Seconds())`` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

__all__ = ["HEADER_EVERY", "ChannelTotals", "StatReport", "format_header", "format_row"]

HEADER_EVERY: Final = 25

_RULE: Final = (
    "------rate------+----------------depth----------------+--------------metadata---------------"
)
_COLUMNS: Final = ("ingress", "egress", "total", "mem", "disk", "inflt", "def", "req", "t-o")


@attrs.frozen
class ChannelTotals:
    """One channel's counters summed over every node that has it (clusterinfo's ChannelStats)."""

    depth: int = 0
    memory_depth: int = 0
    backend_depth: int = 0
    in_flight_count: int = 0
    deferred_count: int = 0
    requeue_count: int = 0
    timeout_count: int = 0
    message_count: int = 0
    client_count: int = 0

    @classmethod
    def sum(cls, nodes: Iterable[ChannelTotals]) -> ChannelTotals:
        fields = [field.name for field in attrs.fields(cls)]
        totals = dict.fromkeys(fields, 0)
        for node in nodes:
            for name in fields:
                totals[name] += getattr(node, name)
        return cls(**totals)


def format_header() -> str:
    """The two header lines, each ending in a newline."""
    ingress, egress, total, mem, disk, inflt, deferred, req, timed_out = _COLUMNS
    columns = (
        f"{ingress:>7} {egress:>7} | {total:>7} {mem:>7} {disk:>7} {inflt:>5} {deferred:>5} | "
        f"{req:>7} {timed_out:>7} {'msgs':>12} {'clients':>7}"
    )
    return f"{_RULE}\n{columns}\n"


def _per_second(delta: int, interval: float) -> int:
    return int(float(delta) / interval)  # int() truncates toward zero, as Go's int64() does


def format_row(previous: ChannelTotals, current: ChannelTotals, interval: float) -> str:
    """One poll's line: rates since ``previous``, then ``current``'s counts."""
    received = current.message_count - previous.message_count
    ingress = _per_second(received, interval)
    # what left the channel: what came in, less what the depth grew by
    egress = _per_second(received - (current.depth - previous.depth), interval)
    c = current
    return (
        f"{ingress:7d} {egress:7d} | {c.depth:7d} {c.memory_depth:7d} {c.backend_depth:7d} "
        f"{c.in_flight_count:5d} {c.deferred_count:5d} | {c.requeue_count:7d} "
        f"{c.timeout_count:7d} {c.message_count:12d} {c.client_count:7d}\n"
    )


@attrs.define
class StatReport:
    """What to print after each poll: feed it each poll's totals in order."""

    interval: float
    _polls: int = 0
    _previous: ChannelTotals | None = None

    def poll(self, totals: ChannelTotals) -> str:
        """The text for this poll: a header every 25 polls (from the first), and a row for
        every poll but the first, which only sets the baseline."""
        text = format_header() if self._polls % HEADER_EVERY == 0 else ""
        self._polls += 1
        if self._previous is not None:
            text += format_row(self._previous, totals, self.interval)
        self._previous = totals
        return text

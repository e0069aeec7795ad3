"""What a channel needs from the world around it: its consumers and its timers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._channel import Channel

__all__ = ["Consumer", "Scheduler"]


class Consumer(Protocol):
    """What a channel needs from a subscribed client."""

    @property
    def id(self) -> int: ...

    def wake(self) -> None:
        """Something the pump waits for changed: messages arrived, or a slot freed."""

    def message_timed_out(self) -> None:
        """One of this client's in-flight messages timed out and was requeued."""

    def close(self) -> None:
        """The channel is going away: end this client's connection."""

    def in_flight_dropped(self) -> None:
        """The channel was emptied: this client has nothing in flight any more."""


class Scheduler(Protocol):
    def schedule(self, channel: Channel, due: float) -> None:
        """Call ``channel.on_due(due)`` at monotonic time ``due``."""

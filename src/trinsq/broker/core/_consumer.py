"""What a channel needs from a subscribed client."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Consumer"]


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

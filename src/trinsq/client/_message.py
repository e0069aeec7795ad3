"""A message a consumer received, and how it is answered (go-nsq's message.go)."""

from __future__ import annotations

from typing import Protocol

import trio

__all__ = ["Message", "MessageOwner"]


class MessageOwner(Protocol):
    """What a message answers through: the connection that delivered it."""

    @property
    def live(self) -> bool:
        """Whether answers can still reach nsqd."""
        ...

    def answer_finish(self, message: Message) -> None: ...

    def answer_requeue(self, message: Message, delay: float | None, backoff: bool) -> None: ...

    def answer_touch(self, message: Message) -> None: ...


class Message:
    """One delivery of a message; answer it once with :meth:`finish` or :meth:`requeue`
    (:meth:`touch` before that to keep it in flight longer). Answers after the first are
    ignored, as go-nsq ignores them. An answer is queued on its connection and written with
    the others queued meanwhile: the methods never block (they are cancellation points)."""

    __slots__ = ("_owner", "_responded", "attempts", "body", "id", "nsqd_address", "timestamp")

    def __init__(
        self,
        owner: MessageOwner,
        *,
        id: bytes,
        body: bytes,
        timestamp: int,
        attempts: int,
        nsqd_address: str,
    ) -> None:
        self._owner = owner
        self._responded = False
        #: The 16-byte message ID, as nsqd made it (hex ASCII).
        self.id = id
        self.body = body
        #: When nsqd stamped the message, in nanoseconds since the epoch.
        self.timestamp = timestamp
        #: How many times nsqd has delivered it, this delivery included.
        self.attempts = attempts
        #: The ``host:port`` of the nsqd that delivered it.
        self.nsqd_address = nsqd_address

    def __repr__(self) -> str:
        return (
            f"<Message {self.id.decode('ascii', 'replace')} attempts={self.attempts} "
            f"from {self.nsqd_address} body={self.body[:32]!r}>"
        )

    @property
    def owner(self) -> MessageOwner:
        """The connection it came from."""
        return self._owner

    @property
    def responded(self) -> bool:
        """Whether it has been finished or requeued."""
        return self._responded

    def take_response(self) -> bool:
        """Mark it answered; False when it already was."""
        if self._responded:
            return False
        self._responded = True
        return True

    async def finish(self) -> None:
        """FIN: the message is done with and nsqd forgets it."""
        self._owner.answer_finish(self)
        await trio.lowlevel.checkpoint_if_cancelled()

    async def requeue(self, delay: float | None = None, backoff: bool = True) -> None:
        """REQ: nsqd delivers it again after ``delay`` seconds. Without a delay, go-nsq's:
        ``default_requeue_delay`` times the attempts, at most ``max_requeue_delay``.
        ``backoff`` counts it as a failure that slows the consumer down (see the config's
        ``backoff_multiplier`` and ``max_backoff_duration``)."""
        self._owner.answer_requeue(self, delay, backoff)
        await trio.lowlevel.checkpoint_if_cancelled()

    async def touch(self) -> None:
        """TOUCH: reset the message's timeout at nsqd."""
        self._owner.answer_touch(self)
        await trio.lowlevel.checkpoint_if_cancelled()

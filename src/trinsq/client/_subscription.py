"""A consumer's connection to one nsqd: SUB on a :class:`~._connection.Connection`, then the
messages, CLOSE_WAIT and errors that arrive on it, and what the consumer knows of it (messages
in flight, the largest RDY granted, whether it is closing).
"""

from __future__ import annotations

import logging
from typing import Protocol

import trio

from ._connection import Connection
from ._errors import ConnectionClosedError, ProtocolError
from ._message import Message
from ._protocol import (
    CLOSE_WAIT,
    ErrorReply,
    Event,
    MessageFrame,
    Response,
    encode_cls,
    encode_rdy,
    encode_touch,
)

__all__ = ["Requeue", "Subscription", "SubscriptionOwner"]

log = logging.getLogger("trinsq.client")


#: How a message was answered: None for FIN, else REQ's ``(delay or None, backoff)``.
Requeue = tuple[float | None, bool] | None


class SubscriptionOwner(Protocol):
    """The consumer, told what happens on a subscribed connection."""

    def on_message(self, subscription: Subscription, frame: MessageFrame) -> None: ...

    def on_close_wait(self, subscription: Subscription) -> None: ...

    def answered(self, subscription: Subscription, message: Message, requeue: Requeue) -> None:
        """A message from ``subscription`` was answered (the first time)."""
        ...


class Subscription:
    """One nsqd connection of a consumer; :meth:`on_event` is the connection's event handler,
    and the messages it delivers answer through it (it is their :class:`MessageOwner`)."""

    def __init__(self, address: str, owner: SubscriptionOwner) -> None:
        self.address = address
        self._owner = owner
        self.connection: Connection | None = None
        self._subscribed = trio.Event()
        self._refusal: ProtocolError | None = None
        #: Messages received and not yet answered.
        self.in_flight = 0
        #: The largest RDY count sent, which bounds what nsqd may have in flight here.
        self.max_rdy_sent = 0
        #: CLS sent: no more RDY goes out.
        self.closing = False
        #: nsqd answered CLS: no more messages come.
        self.close_waited = False

    def __repr__(self) -> str:
        return f"<Subscription {self.address}>"

    @property
    def live(self) -> bool:
        """Whether answers can still be sent on it."""
        return self.connection is not None and not self.connection.closed

    async def subscribe(self, connection: Connection, sub: bytes) -> None:
        """Send ``sub`` (an encoded SUB) and wait for nsqd's answer (the caller bounds the
        wait).

        Raises:
            ProtocolError: nsqd refused (``BadTopicError``, ``UnauthorizedError``...).
        """
        self.connection = connection
        connection.send_nowait(sub)
        await self._subscribed.wait()
        if self._refusal is not None:
            raise self._refusal

    def send(self, data: bytes) -> bool:
        """Queue a command; False when the connection has ended (nothing is sent)."""
        if not self.live:
            return False
        assert self.connection is not None
        self.connection.send_nowait(data)
        return True

    def send_rdy(self, count: int) -> None:
        if not self.closing and self.send(encode_rdy(count)):
            self.max_rdy_sent = max(self.max_rdy_sent, count)

    def start_close(self) -> None:
        """CLS: ask nsqd to stop sending; it answers CLOSE_WAIT, answers still go out."""
        if not self.closing:
            self.closing = True
            self.send(encode_cls())

    def close(self) -> None:
        """End the connection now."""
        if self.connection is not None:
            self.connection.close()

    async def close_when_written(self) -> None:
        """End the connection once every answer queued has been written."""
        if self.connection is not None:
            await self.connection.drain()
            self.connection.close()

    # MessageOwner: a message's answers, passed to the consumer the first time.
    def answer_finish(self, message: Message) -> None:
        if message.take_response():
            self._owner.answered(self, message, None)

    def answer_requeue(self, message: Message, delay: float | None, backoff: bool) -> None:
        if message.take_response():
            self._owner.answered(self, message, (delay, backoff))

    def answer_touch(self, message: Message) -> None:
        if not message.responded:
            self.send(encode_touch(message.id))

    def on_event(self, event: Event) -> None:
        if isinstance(event, MessageFrame):
            self.in_flight += 1
            if self.in_flight > self.max_rdy_sent:
                raise ConnectionClosedError(
                    f"{self.address}: nsqd sent more messages than RDY {self.max_rdy_sent}"
                )
            self._owner.on_message(self, event)
        elif isinstance(event, Response):
            if not self._subscribed.is_set():
                self._subscribed.set()  # OK to SUB
            elif event.data == CLOSE_WAIT:
                self.close_waited = True
                self._owner.on_close_wait(self)
        elif isinstance(event, ErrorReply):
            if not self._subscribed.is_set():
                self._refusal = event.error
                self._subscribed.set()
            else:
                # Fatal ones are followed by nsqd closing the connection.
                log.warning("(%s) %s", self.address, event.error)

"""Publishing: :func:`open_producer` and :class:`Producer` (go-nsq producer.go, plus a pool).

Pipelining: every call queues its command on the one live connection and waits for its own
answer. nsqd answers a connection's commands in order, so the answers are matched to the
waiting calls first in, first out; commands queued by many callers at once go out in one
write (see _connection.py), so concurrent publishers do not cost a round trip each.

Pool and failover: the producer keeps one connection, to the first of ``addresses`` that
accepts it. When it is lost, the calls waiting on it fail with ``ConnectionClosedError``
(their outcome is unknown: nsqd may have stored the message), a call still waiting to queue
its command (nothing sent) moves to the next connection, and the producer connects again at
once, trying the next address first. When a whole round of addresses fails, calls made
meanwhile fail with that ``ConnectError`` (or, when every nsqd answered and refused, with
the typed error, e.g. ``AuthFailedError``) and the next round waits, exponentially longer
each time (``backoff_multiplier`` * 2^n, at most ``max_backoff_duration``).

Errors per call: an error frame fails the call it answers with its typed ``ProtocolError``
(nsqd then closes the connection if the error is fatal, failing the calls queued behind it
with ``ConnectionClosedError``). A bad topic name or an empty body fails before anything is
written, so it never costs the shared connection.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import outcome
import trio

from ..common._running import single_errors
from ._config import ClientConfig
from ._connection import Connection, run_connection, split_address
from ._errors import ConnectError, ConnectionClosedError, InvalidError, NSQError, ProtocolError
from ._protocol import ErrorReply, Event, Response, encode_dpub, encode_mpub, encode_pub

__all__ = ["Producer", "open_producer"]

log = logging.getLogger("trinsq.client")


class _Call:
    """One call waiting for its answer; ``task`` is None once it gave up (cancelled)."""

    __slots__ = ("task",)

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task: trio.lowlevel.Task | None = task

    def resolve(self, result: outcome.Outcome[None]) -> None:
        task = self.task
        if task is not None:
            self.task = None
            trio.lowlevel.reschedule(task, result)


class _Link:
    """One connection and the calls waiting on it, oldest first."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.pending: deque[_Call] = deque()
        self.fatal: ProtocolError | None = None  # the fatal error nsqd closes the connection after

    def on_event(self, event: Event) -> None:
        if isinstance(event, Response | ErrorReply):
            if not self.pending:
                log.warning("nsqd sent an answer nobody asked for: %r", event)
                return
            call = self.pending.popleft()
            if isinstance(event, Response):
                call.resolve(outcome.Value(None))
                return
            call.resolve(outcome.Error(event.error))
            if event.error.fatal and self.connection is not None:
                self.fatal = event.error
                # nsqd closes after a fatal error, running nothing queued behind it: no new
                # call goes this way, the calls behind fail as the connection ends.
                self.connection.close()
        # A producer's connection is not subscribed: no messages come.

    def fail_all(self, error: ConnectionClosedError) -> None:
        pending, self.pending = self.pending, deque()
        for call in pending:
            call.resolve(outcome.Error(ConnectionClosedError(str(error))))


class Producer:
    """Publishes to nsqd; made by :func:`open_producer`. Safe to share between tasks."""

    def __init__(self, addresses: Sequence[str], config: ClientConfig) -> None:
        if not addresses:
            raise ValueError("a producer needs at least one nsqd address")
        for address in addresses:
            split_address(address)  # a typo fails here, not as "unreachable" later
        self.addresses = tuple(addresses)
        self.config = config.with_ssl_context()
        self._link: _Link | None = None
        self._changed = trio.Event()
        self._round_error: NSQError | None = None  # set while backing off
        self._closed = False
        self.connects = 0  # connections made, the first included

    @property
    def address(self) -> str | None:
        """The nsqd address of the live connection, if any."""
        link = self._link
        return None if link is None or link.connection is None else link.connection.address

    # -- publishing ------------------------------------------------------------------------------

    async def ping(self) -> None:
        """Wait until a connection is up (go-nsq's ``Ping``: connect if not connected).

        Raises:
            ConnectError: no nsqd reachable in this round.
        """
        link = self._link
        if link is None or link.connection is None or link.connection.closed:
            await self._wait_for_link()

    async def publish(self, topic: str, body: bytes) -> None:
        """PUB one message.

        Raises:
            ProtocolError: nsqd refused it (``BadTopicError``, ``BadMessageError``,
                ``PubFailedError`` ...).
            ConnectionClosedError: no answer (``ConnectError``: no nsqd reachable).
        """
        await self._call(encode_pub(topic, body))

    async def multi_publish(self, topic: str, bodies: Sequence[bytes]) -> None:
        """MPUB several messages at once (all stored or none)."""
        await self._call(encode_mpub(topic, bodies))

    async def deferred_publish(self, topic: str, body: bytes, delay: float) -> None:
        """DPUB: deliver ``body`` after ``delay`` seconds."""
        if delay < 0:
            raise InvalidError("E_INVALID", f"DPUB timeout {int(delay * 1000)} out of range")
        await self._call(encode_dpub(topic, body, delay))

    async def _call(self, data: bytes) -> None:
        retried = False
        while True:
            link = self._link
            if link is None or link.connection is None or link.connection.closed:
                link = await self._wait_for_link()
            connection = link.connection
            assert connection is not None
            try:
                await connection.send(data)
            except ConnectionClosedError:
                # It ended before the command was queued: nothing was sent, so the command
                # may go to the next connection (once: a server that keeps stalling fails it).
                if retried:
                    raise
                retried = True
                continue
            break
        # send returns right after queueing the bytes, with no checkpoint in between: no
        # answer can be read before this call is in line for it.
        link.pending.append(_Call(trio.lowlevel.current_task()))
        await trio.lowlevel.wait_task_rescheduled(_abort_call(link.pending[-1]))

    async def _wait_for_link(self) -> _Link:
        while True:
            link = self._link
            if link is not None and link.connection is not None and not link.connection.closed:
                return link
            if self._round_error is not None:
                raise self._round_error
            if self._closed:
                raise ConnectionClosedError("the producer is closed")
            await self._changed.wait()

    def _set_state(self, link: _Link | None, round_error: NSQError | None) -> None:
        self._link = link
        self._round_error = round_error
        self._changed.set()
        self._changed = trio.Event()

    # -- the connection's upkeep -----------------------------------------------------------------

    async def _maintain(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Keep one connection up, failing over between addresses, backing off when none
        answers."""
        first, failures = 0, 0
        count = len(self.addresses)
        task_status.started()
        async with trio.open_nursery() as nursery:
            while True:
                errors: list[str] = []
                refusals: list[ProtocolError] = []
                for step in range(count):
                    index = (first + step) % count
                    address = self.addresses[index]
                    link = _Link()
                    try:
                        connection: Connection = await nursery.start(
                            run_connection, address, self.config, link.on_event
                        )
                    except NSQError as error:
                        errors.append(f"{address}: {error}")
                        if isinstance(error, ProtocolError):
                            refusals.append(error)
                        continue
                    link.connection = connection
                    self.connects += 1
                    failures = 0
                    self._set_state(link, None)
                    lost = None
                    try:
                        lost = await connection.wait_closed()
                    finally:
                        self._set_state(None, None)
                        if link.fatal is not None:
                            why = f"{address}: closed after {link.fatal.code}"
                            lost = ConnectionClosedError(why)
                        link.fail_all(lost or ConnectionClosedError(f"{address}: closed"))
                    log.info("nsqd %s: connection lost (%s), connecting again", address, lost)
                    first = index + 1  # fail over: the next address first
                    break
                else:
                    failures += 1
                    delay = min(
                        self.config.backoff_multiplier * 2 ** (failures - 1),
                        self.config.max_backoff_duration,
                    )
                    failure: NSQError = ConnectError("no nsqd reachable: " + "; ".join(errors))
                    if len(refusals) == count:
                        # Every nsqd answered and refused (AUTH, IDENTIFY): say so, typed.
                        failure = refusals[-1]
                    log.warning("%s; trying again in %.3g s", failure, delay)
                    self._set_state(None, failure)
                    await trio.sleep(delay)
                    self._set_state(None, None)


def _abort_call(call: _Call) -> Callable[[trio.lowlevel.RaiseCancelT], trio.lowlevel.Abort]:
    def abort(_raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        call.task = None  # the answer, when it comes, is dropped
        return trio.lowlevel.Abort.SUCCEEDED

    return abort


@asynccontextmanager
async def open_producer(
    addresses: str | Sequence[str], config: ClientConfig | None = None
) -> AsyncIterator[Producer]:
    """A :class:`Producer` over ``addresses`` ("host:port" of nsqd's TCP port, one or a
    list; the first reachable one is used, the others on failover) for the block.

    Connecting starts at once in the background; a call made before the first connection is
    up waits for it (or for the first round of addresses to fail). Leaving the block closes
    the connection; calls still waiting then fail with ``ConnectionClosedError``.
    """
    producer = Producer(
        (addresses,) if isinstance(addresses, str) else addresses, config or ClientConfig()
    )
    async with single_errors(), trio.open_nursery() as nursery:
        await nursery.start(producer._maintain)
        try:
            yield producer
        finally:
            producer._closed = True
            producer._set_state(None, None)  # wakes the calls waiting for a connection
            nursery.cancel_scope.cancel()

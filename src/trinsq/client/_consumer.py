"""The consumer: messages of one topic/channel from nsqd addresses and/or registries, over Trio
(go-nsq's consumer.go). Its decisions are the sans-IO modules' (RDY in :mod:`._ready`, backoff
and requeue delays in :mod:`._backoff`, discovery in :mod:`._discovery`); this module runs the
connections, the timers and the lookupd polls in one nursery, and hands messages out.

Shape::

    async with open_consumer("topic", "channel", nsqd_tcp_addresses=[...]) as consumer:
        async for message in consumer:           # or: await consumer.run(handler, concurrency=8)
            ...
            await message.finish()

``consumer.stop()`` stops gracefully: CLS on every connection, messages already received are
still handed out, and each connection closes once its messages are answered; then iteration
ends and ``run`` returns. Leaving the block stops too: messages not yet handed out are
requeued at once, those handed out are waited for (up to ``graceful_timeout``), then every
connection closes. Cancelling the block closes everything at once (nsqd requeues what was in
flight when their timeouts pass).
"""

from __future__ import annotations

import inspect
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import Final

import attrs
import trio

from ..common._running import single_errors
from ._backoff import BackoffPolicy, gives_up, requeue_delay
from ._config import ClientConfig
from ._connection import run_connection
from ._discovery import LookupPoller
from ._errors import ConnectError, NSQError
from ._lookupd import RegistryPoller
from ._message import Message
from ._protocol import MessageFrame, encode_fin, encode_req, encode_sub
from ._ready import RdyCommand, ReadyCoordinator, ReadyTimings
from ._subscription import Requeue, Subscription

__all__ = ["Consumer", "ConsumerStats", "GiveUpHook", "Handler", "StreamFactory", "open_consumer"]

log = logging.getLogger("trinsq.client")

#: Called with a message delivered more than ``max_attempts`` times, before it is finished.
GiveUpHook = Callable[[Message], Awaitable[object] | object]
#: Handles one message; returning finishes it, raising requeues it (with backoff).
Handler = Callable[[Message], Awaitable[object]]
#: Opens the transport to an nsqd ``host:port`` instead of TCP (tests, custom transports).
StreamFactory = Callable[[str], Awaitable[trio.abc.Stream]]

_GRACEFUL_TIMEOUT: Final = 30.0
#: Messages handed out in a row without letting other tasks run.
_BATCH: Final = 64


@attrs.define
class ConsumerStats:
    """Counts since the consumer started (go-nsq's ``ConsumerStats``)."""

    received: int = 0
    finished: int = 0
    requeued: int = 0
    given_up: int = 0
    connections: int = 0


class Consumer:
    """Made by :func:`open_consumer`; see the module docstring."""

    def __init__(
        self,
        topic: str,
        channel: str,
        config: ClientConfig,
        nursery: trio.Nursery,
        *,
        on_give_up: GiveUpHook | None,
        graceful_timeout: float,
        stream_factory: StreamFactory | None,
        rng: random.Random,
    ) -> None:
        self.topic = topic
        self.channel = channel
        self.config = config
        self.stats = ConsumerStats()
        self._nursery = nursery
        self._on_give_up = on_give_up
        self._graceful_timeout = graceful_timeout
        self._stream_factory = stream_factory
        self._sub = encode_sub(topic, channel)  # checks the names before anything connects
        policy = BackoffPolicy(
            config.backoff_multiplier, config.max_backoff_duration, config.backoff_strategy
        )
        timings = ReadyTimings(
            config.rdy_redistribute_interval, config.low_rdy_idle_timeout, config.low_rdy_timeout
        )
        self._ready = ReadyCoordinator[Subscription](
            config.max_in_flight, policy, now=trio.current_time(), timings=timings, rng=rng
        )
        self._subscriptions: set[Subscription] = set()
        self._addresses: dict[str, bool] = {}  # address -> direct; connected or connecting
        self._send_messages, self._messages = trio.open_memory_channel[Message](math.inf)
        self._stopping = False
        self._stop_requested = trio.Event()
        self._timer_wakeup = trio.Event()
        self._timer_deadline = math.inf
        self._registries: RegistryPoller | None = None
        self._ended = trio.Event()
        self._handed_in_a_row = 0

    # ------------------------------------------------------------------ public
    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def max_in_flight(self) -> int:
        return self._ready.max_in_flight

    def set_max_in_flight(self, max_in_flight: int) -> None:
        """Change how many messages may be in flight over all connections (0 pauses)."""
        self._dispatch(self._ready.set_max_in_flight(max_in_flight, trio.current_time()))

    def is_starved(self) -> bool:
        """Whether a connection holds nearly its whole RDY count in flight (go-nsq)."""
        return self._ready.is_starved()

    @property
    def connected_addresses(self) -> list[str]:
        return sorted(s.address for s in self._subscriptions)

    def stop(self) -> None:
        """Begin a graceful stop (idempotent); see the module docstring."""
        if self._stopping:
            return
        self._stopping = True
        self._ready.stop()
        self._stop_requested.set()
        if self._registries is not None:
            self._registries.stop()
        for subscription in list(self._subscriptions):
            subscription.start_close()
        self._maybe_end()
        self._nursery.start_soon(self._stop_deadline)

    async def _stop_deadline(self) -> None:
        """A stop takes ``graceful_timeout`` at most (go-nsq's 30 s): connections whose nsqd
        never answered CLS, or whose messages are still unanswered, are closed then (nsqd
        delivers those messages again)."""
        await trio.sleep(self._graceful_timeout)
        for subscription in list(self._subscriptions):
            subscription.close()

    def __aiter__(self) -> Consumer:
        return self

    async def __anext__(self) -> Message:
        while True:
            item = None
            if self._handed_in_a_row < _BATCH:
                # Messages already here are handed out without a scheduling round each, so the
                # answers to a batch go out in one write; cancellation still reaches the
                # caller, and other tasks run at least every _BATCH messages.
                await trio.lowlevel.checkpoint_if_cancelled()
                try:
                    item = self._messages.receive_nowait()
                    self._handed_in_a_row += 1
                except trio.WouldBlock:
                    pass
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    raise StopAsyncIteration from None
            if item is None:
                self._handed_in_a_row = 0
                try:
                    item = await self._messages.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    raise StopAsyncIteration from None
            if item.owner.live:
                return item
            # Its connection is gone: nsqd delivers it again, no answer could reach it.

    async def run(self, handler: Handler, concurrency: int = 1) -> None:
        """Hand messages to ``handler``, up to ``concurrency`` at a time, until the consumer
        has stopped and every message is handled. A handler that returns finishes the message
        (unless it answered it itself); one that raises requeues it with backoff."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(self._worker, handler)

    # ------------------------------------------------------------------ handing out
    async def _worker(self, handler: Handler) -> None:
        async for message in self:
            try:
                await handler(message)
            except Exception:
                log.exception("handler failed for message %s", _show(message.id))
                if not message.responded:
                    await message.requeue()
            else:
                if not message.responded:
                    await message.finish()

    def on_message(self, subscription: Subscription, frame: MessageFrame) -> None:
        self.stats.received += 1
        self._ready.message_received(subscription, trio.current_time())
        message = Message(
            subscription,
            id=frame.id,
            body=frame.body,
            timestamp=frame.timestamp,
            attempts=frame.attempts,
            nsqd_address=subscription.address,
        )
        if gives_up(frame.attempts, self.config.max_attempts):
            self.stats.given_up += 1
            self._nursery.start_soon(self._give_up, message)
            return
        self._send_messages.send_nowait(message)

    async def _give_up(self, message: Message) -> None:
        log.warning("msg %s attempted %d times, giving up", _show(message.id), message.attempts)
        if self._on_give_up is not None:
            try:
                result = self._on_give_up(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("give-up hook failed for message %s", _show(message.id))
        await message.finish()

    def on_close_wait(self, subscription: Subscription) -> None:
        if subscription.in_flight <= 0:
            self._nursery.start_soon(subscription.close_when_written)

    def answered(self, subscription: Subscription, message: Message, requeue: Requeue) -> None:
        """A message from ``subscription`` was answered: FIN, or REQ when ``requeue`` is
        ``(delay or None, backoff)``."""
        if requeue is None:
            command = encode_fin(message.id)
        else:
            delay = requeue[0]
            if delay is None:
                config = self.config
                delay = requeue_delay(
                    message.attempts, config.default_requeue_delay, config.max_requeue_delay
                )
            command = encode_req(message.id, delay)
        if not subscription.send(command):
            return  # the connection is gone; nsqd requeues the message itself
        subscription.in_flight -= 1
        now = trio.current_time()
        if requeue is None:
            self.stats.finished += 1
            self._dispatch(self._ready.message_finished(subscription, now))
        else:
            self.stats.requeued += 1
            commands = self._ready.message_requeued(subscription, backoff=requeue[1], now=now)
            self._dispatch(commands)
        if subscription.close_waited and subscription.in_flight == 0:
            self._nursery.start_soon(subscription.close_when_written)

    # ------------------------------------------------------------------ RDY and its timer
    def _dispatch(self, commands: list[RdyCommand[Subscription]]) -> None:
        for subscription, count in commands:
            subscription.send_rdy(count)
        if self._ready.take_timer_change() and self._ready.deadline() < self._timer_deadline:
            self._timer_wakeup.set()

    async def _timer_loop(self) -> None:
        while True:
            self._timer_deadline = self._ready.deadline()
            self._timer_wakeup = trio.Event()
            with trio.move_on_at(self._timer_deadline):
                await self._timer_wakeup.wait()
            self._dispatch(self._ready.tick(trio.current_time()))

    # ------------------------------------------------------------------ connections
    async def connect(self, address: str) -> None:
        """Connect to the nsqd at ``address`` and subscribe (raises if that fails), then keep
        it connected (reconnecting every ``lookupd_poll_interval``) until the consumer stops.

        Raises:
            RuntimeError: the consumer is stopping.
        """
        if self._stopping:
            raise RuntimeError("consumer stopped")
        if address in self._addresses:
            return
        self._addresses[address] = True
        try:
            await self._nursery.start(self._serve_address, address, True)
        except BaseException:
            self._addresses.pop(address, None)
            raise

    # The registry poller's view (see _lookupd.Producers).
    def discovered(self) -> list[str]:
        return [address for address, direct in self._addresses.items() if not direct]

    def is_direct(self, address: str) -> bool:
        return self._addresses.get(address) is True

    async def add_producer(self, address: str) -> None:
        if address not in self._addresses and not self._stopping:
            self._addresses[address] = False
            await self._nursery.start(self._serve_address, address, False)

    async def _serve_address(
        self,
        address: str,
        direct: bool,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Keep one address connected: once for a discovered one (the next poll finds it
        again), until the consumer stops for a direct one. Started once the first attempt
        has subscribed (a direct address's first failure is raised) or failed."""
        started = False

        def mark_started() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        try:
            while not self._stopping and self._addresses.get(address) is direct:
                try:
                    await self._connect_once(address, mark_started)
                except (NSQError, OSError, ValueError) as error:
                    if direct and not started:
                        raise
                    log.error("(%s) error connecting to nsqd - %s", address, error)
                mark_started()
                if not direct:
                    return
                with trio.move_on_after(self.config.lookupd_poll_interval):
                    await self._stop_requested.wait()
        finally:
            if self._addresses.get(address) is direct:
                del self._addresses[address]
            if self._registries is not None and not self._stopping:
                self._registries.recheck()
            self._maybe_end()

    async def _connect_once(self, address: str, subscribed: Callable[[], None]) -> None:
        subscription = Subscription(address, self)
        stream = None if self._stream_factory is None else await self._stream_factory(address)
        async with single_errors(), trio.open_nursery() as nursery:
            connection = await nursery.start(
                partial(run_connection, address, self.config, subscription.on_event, stream=stream)
            )
            try:
                with trio.fail_after(self.config.read_timeout):
                    await subscription.subscribe(connection, self._sub)
            except trio.TooSlowError:
                connection.close()
                raise ConnectError(f"{address}: no answer to SUB") from None
            except BaseException:
                connection.close()
                raise
            if self._stopping or self._addresses.get(address) is None:
                connection.close()
                return
            self._attach(subscription)
            subscribed()
            try:
                await connection.wait_closed()
            finally:
                self._detach(subscription)

    def _attach(self, subscription: Subscription) -> None:
        assert subscription.connection is not None
        max_rdy = subscription.connection.negotiated.max_rdy_count
        if max_rdy is not None and max_rdy < self._ready.max_in_flight:
            log.warning(
                "(%s) max RDY count %d < consumer max in flight %d, truncation possible",
                subscription.address,
                max_rdy,
                self._ready.max_in_flight,
            )
        self._subscriptions.add(subscription)
        self.stats.connections = len(self._subscriptions)
        self._dispatch(
            self._ready.add_connection(subscription, max_rdy=max_rdy, now=trio.current_time())
        )

    def _detach(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        self.stats.connections = len(self._subscriptions)
        self._dispatch(self._ready.remove_connection(subscription, trio.current_time()))
        log.info("(%s) disconnected, %d left", subscription.address, len(self._subscriptions))

    def drop_producer(self, address: str) -> None:
        """A registry no longer lists ``address``: close its connection gracefully."""
        if self._addresses.get(address) is not False:
            return
        del self._addresses[address]
        for subscription in list(self._subscriptions):
            if subscription.address == address:
                # Its RDY share goes to the others now; messages still coming are answered.
                self._dispatch(self._ready.remove_connection(subscription, trio.current_time()))
                subscription.start_close()

    def _maybe_end(self) -> None:
        """Once stopping with no connection left, no message can come: iteration ends."""
        if self._stopping and not self._subscriptions and not self._addresses:
            self._send_messages.close()
            self._ended.set()

    # ------------------------------------------------------------------ stopping
    async def _close(self) -> None:
        self.stop()
        # Nobody takes what is still queued: it goes back to nsqd now.
        while True:
            try:
                message = self._messages.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            await message.requeue(0.0, backoff=False)
        with trio.move_on_after(self._graceful_timeout):
            await self._ended.wait()


def _show(message_id: bytes) -> str:
    return message_id.decode("ascii", "replace")


@asynccontextmanager
async def open_consumer(
    topic: str,
    channel: str,
    *,
    nsqd_tcp_addresses: Iterable[str] = (),
    lookupd_http_addresses: Iterable[str] = (),
    config: ClientConfig | None = None,
    on_give_up: GiveUpHook | None = None,
    graceful_timeout: float = _GRACEFUL_TIMEOUT,
    stream_factory: StreamFactory | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[Consumer]:
    """A consumer of ``topic``/``channel`` for the block.

    Direct ``nsqd_tcp_addresses`` are connected before the block starts (the first failure
    raises); ``lookupd_http_addresses`` are asked at once, then polled every
    ``lookupd_poll_interval`` (with jitter) for producers to connect to and to drop.
    ``on_give_up`` is called (awaited if it returns an awaitable) for a message delivered more
    than ``max_attempts`` times, which is then finished without being handed out.
    ``graceful_timeout`` bounds a stop: connections still open that long after it are closed.
    ``stream_factory``, if given, opens each nsqd's transport instead of a TCP connection
    (memory streams in tests); ``rng`` makes the jitter and random choices repeatable.

    Raises:
        BadTopicError, BadChannelError: invalid names (before anything connects).
        ConnectError, ProtocolError: a direct nsqd could not be connected or subscribed.
        ValueError: no address given, or an unusable lookupd address.
        OSError: a TLS certificate or CA file cannot be read.
    """
    nsqd = list(dict.fromkeys(nsqd_tcp_addresses))
    lookupd = list(lookupd_http_addresses)
    if not nsqd and not lookupd:
        raise ValueError("open_consumer needs nsqd_tcp_addresses or lookupd_http_addresses")
    config = (config or ClientConfig()).with_ssl_context()  # one TLS context for all
    rng = rng or random.Random()
    async with single_errors(), trio.open_nursery() as nursery:
        consumer = Consumer(
            topic,
            channel,
            config,
            nursery,
            on_give_up=on_give_up,
            graceful_timeout=graceful_timeout,
            stream_factory=stream_factory,
            rng=rng,
        )
        if lookupd:
            poller = LookupPoller(
                lookupd,
                topic,
                interval=config.lookupd_poll_interval,
                jitter=config.lookupd_poll_jitter,
                now=trio.current_time(),
                rng=rng,
            )
            consumer._registries = RegistryPoller(poller, config, consumer)
        nursery.start_soon(consumer._timer_loop)
        try:
            for address in nsqd:
                await consumer.connect(address)
            if consumer._registries is not None:
                await nursery.start(consumer._registries.run)
            yield consumer
        except BaseException:
            nursery.cancel_scope.cancel()
            raise
        await consumer._close()
        nursery.cancel_scope.cancel()

"""Drive the real pynsq ``Reader``/``Writer`` against a broker running in the test's Trio run.

pynsq is built on Tornado, i.e. on an asyncio event loop. A scenario is an ``async def`` that
runs on a fresh Tornado ``IOLoop`` (with its own asyncio loop) in a Trio worker thread, while
the broker keeps serving in the test's Trio loop::

    async with pynsq_against(broker) as pynsq:
        deliveries = await pynsq.run(scenario)

Inside the scenario, :class:`Session` creates readers and writers, publishes and waits for
things with Tornado/asyncio primitives only. It can also look at the broker: ``in_trio`` runs
a function in the Trio thread (so it sees a consistent graph) and ``broker_until`` waits there
for a condition on the broker, which :class:`BrokerProbe` checks after every Trio task step
(no polling).

What makes a scenario fail, besides its own assertions: an exception in a message handler, an
ERROR logged by pynsq, Tornado or asyncio while the scenario runs (pynsq reports error frames
such as ``E_FIN_FAILED`` only through its log), or exceeding its time limit. When it ends,
every reader and writer is closed and the loop is closed, so nothing outlives the test; the
Trio side then waits until the broker has seen every pynsq connection go.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import nsq
import trio
from tornado.ioloop import IOLoop

from trinsq import RunningBroker

__all__ = ["BrokerProbe", "Delivery", "PynsqDriver", "Session", "pynsq_against"]

T = TypeVar("T")
Scenario = Callable[["Session"], Awaitable[T]]

# Loggers whose ERROR records mean the client saw something wrong.
_WATCHED_LOGGERS = ("nsq", "tornado", "asyncio")


@dataclass(frozen=True)
class Delivery:
    """One message as a pynsq handler saw it.

    Attributes:
        at: ``time.monotonic()`` in the pynsq thread when the handler was called.
        timestamp: the message's timestamp field (ns since the epoch, set by the broker).
    """

    body: bytes
    attempts: int
    id: bytes
    timestamp: int
    at: float


# -- the Trio side --------------------------------------------------------------------------------


class BrokerProbe(trio.abc.Instrument):
    """Looks at the broker after every Trio task step.

    Every change to the broker's graph happens inside some task step, so a check made after
    each step sees every state the broker passes through: :meth:`track_in_flight` records the
    largest in-flight table a channel ever has, and :meth:`until` wakes as soon as a condition
    holds.
    """

    def __init__(self, broker: RunningBroker) -> None:
        self.broker = broker
        self.in_flight_peaks: dict[tuple[str, str], int] = {}
        self._waiters: list[tuple[Callable[[], bool], trio.Event]] = []

    def track_in_flight(self, topic: str, channel: str) -> None:
        """Start recording the peak ``len(in_flight)`` of ``topic``/``channel`` (0 until it
        exists)."""
        self.in_flight_peaks[(topic, channel)] = 0

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.in_flight_peaks:
            topics = self.broker.topics
            for key, peak in self.in_flight_peaks.items():
                topic = topics.get(key[0])
                channel = None if topic is None else topic.channels.get(key[1])
                if channel is not None and len(channel.in_flight) > peak:
                    self.in_flight_peaks[key] = len(channel.in_flight)
        for predicate, event in self._waiters:
            if not event.is_set() and predicate():
                event.set()

    async def until(
        self, predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "a condition"
    ) -> None:
        """Return once ``predicate()`` is true (checked now and after every task step).

        Raises:
            AssertionError: not true within ``timeout`` seconds.
        """
        if predicate():
            return
        waiter = (predicate, trio.Event())
        self._waiters.append(waiter)
        try:
            with trio.move_on_after(timeout):
                await waiter[1].wait()
                return
        finally:
            self._waiters.remove(waiter)
        raise AssertionError(f"broker: timed out after {timeout}s waiting for {what}")


@dataclass
class PynsqDriver:
    """Runs pynsq scenarios against one broker; see :func:`pynsq_against`."""

    broker: RunningBroker
    probe: BrokerProbe

    async def run(self, scenario: Scenario[T], *, timeout: float = 15.0) -> T:
        """Run ``scenario`` on a fresh pynsq loop in a worker thread and return its result.

        Once it returns, waits until the broker has noticed every pynsq connection close.

        Raises:
            whatever the scenario raised, or AssertionError for the failures listed in the
            module docstring.
        """
        result = await trio.to_thread.run_sync(
            partial(_run_in_thread, self.broker.tcp_address, self.probe, scenario, timeout)
        )
        await self.probe.until(
            lambda: not self.broker.server.clients, what="the pynsq connections to end"
        )
        return result


@asynccontextmanager
async def pynsq_against(broker: RunningBroker) -> AsyncIterator[PynsqDriver]:
    """A :class:`PynsqDriver` for ``broker``, with its :class:`BrokerProbe` installed."""
    probe = BrokerProbe(broker)
    trio.lowlevel.add_instrument(probe)
    try:
        yield PynsqDriver(broker, probe)
    finally:
        trio.lowlevel.remove_instrument(probe)


# -- the pynsq side -------------------------------------------------------------------------------


class _ErrorLog(logging.Handler):
    """Collects ERROR records logged from one thread."""

    def __init__(self, session: Session) -> None:
        super().__init__(logging.ERROR)
        self.session = session
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and self.session.watching:
            self.session.fail(f"{record.name} logged: {record.getMessage()}")


class _Reader(nsq.Reader):  # type: ignore[misc]  # pynsq is untyped
    """pynsq's Reader, plus a future that resolves when nsqd has answered its SUB with OK."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _on_connection_ready(self, conn: nsq.AsyncConn, **kwargs: Any) -> None:
        # The Reader sends SUB in this callback; the next response on the connection is its
        # reply (heartbeats are not "response" events).
        conn.on("response", self._on_sub_response)
        super()._on_connection_ready(conn, **kwargs)

    def _on_sub_response(self, conn: nsq.AsyncConn, data: bytes, **kwargs: Any) -> None:
        if self.subscribed.done():
            return
        if data == b"OK":
            self.subscribed.set_result(None)
        else:
            self.subscribed.set_exception(AssertionError(f"SUB answered {data!r}"))


class _Writer(nsq.Writer):  # type: ignore[misc]  # pynsq is untyped
    """pynsq's Writer, plus a future that resolves when its connection is ready."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _on_connection_ready(self, conn: nsq.AsyncConn, **kwargs: Any) -> None:
        super()._on_connection_ready(conn, **kwargs)
        if not self.ready.done():
            self.ready.set_result(None)


@dataclass
class Session:
    """What a scenario works with, on the pynsq thread's loop.

    Attributes:
        address: the broker's ``host:port``.
        failures: problems seen so far; the first one ends the scenario.
        watching: whether ERROR logs count as failures (not while tearing down, when pynsq
            logs one for every connection it closes itself).
    """

    address: str
    probe: BrokerProbe
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    failures: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    watching: bool = True
    readers: list[_Reader] = field(default_factory=list)
    writers: list[_Writer] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    # -- failures and waiting ---------------------------------------------------------------------

    def fail(self, problem: str, error: BaseException | None = None) -> None:
        self.failures.append(problem)
        if error is not None:
            self.errors.append(error)
        self.notify()

    def notify(self) -> None:
        """Something a waiter may be waiting for changed."""
        self._changed.set()

    def raise_failures(self) -> None:
        if not self.failures:
            return
        summary = "pynsq scenario failed:\n  " + "\n  ".join(self.failures)
        if self.errors:
            raise AssertionError(summary) from self.errors[0]
        raise AssertionError(summary)

    async def until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,
        what: str = "a condition",
        state: Callable[[], object] | None = None,
    ) -> None:
        """Wait until ``predicate()`` holds; it is re-checked whenever :meth:`notify` is called
        (every delivery recorded with :meth:`record` does).

        Raises:
            AssertionError: on a failure, or not true within ``timeout`` seconds (showing
                ``state()`` if given).
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self.raise_failures()
                    if predicate():
                        return
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            detail = "" if state is None else f"; state: {state()!r}"
            raise AssertionError(
                f"pynsq: timed out after {timeout}s waiting for {what}{detail}"
            ) from None

    async def wait(self, future: asyncio.Future[T], *, timeout: float = 5.0, what: str = "") -> T:
        """The result of ``future``, giving up on a failure or after ``timeout`` seconds."""
        future.add_done_callback(lambda _: self.notify())
        await self.until(future.done, timeout=timeout, what=what or repr(future))
        return future.result()

    # -- the broker, from this thread -------------------------------------------------------------

    def in_trio(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the Trio thread (blocking this loop) and return its result."""
        return trio.from_thread.run_sync(fn)

    def broker_until(
        self, predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "a condition"
    ) -> None:
        """Block this loop until ``predicate()`` (evaluated in the Trio thread) holds."""
        trio.from_thread.run(partial(self.probe.until, predicate, timeout=timeout, what=what))

    # -- clients ----------------------------------------------------------------------------------

    def record(self, message: nsq.Message, into: list[Delivery]) -> Delivery:
        """Append ``message`` to ``into`` as a :class:`Delivery` and wake waiters."""
        delivery = Delivery(
            body=message.body,
            attempts=message.attempts,
            id=message.id,
            timestamp=message.timestamp,
            at=time.monotonic(),
        )
        into.append(delivery)
        self.notify()
        return delivery

    def reader(
        self,
        topic: str,
        channel: str,
        handler: Callable[[nsq.Message], bool | None],
        **kwargs: Any,
    ) -> _Reader:
        """A pynsq Reader connected straight to the broker; ``kwargs`` go to ``nsq.Reader``.

        Exceptions from ``handler`` fail the scenario (pynsq itself only logs them).
        """

        def guarded(message: nsq.Message) -> bool | None:
            try:
                return handler(message)
            except BaseException as error:
                self.fail(f"handler raised {error!r} for {message.body!r}", error)
                raise

        reader = _Reader(
            topic=topic,
            channel=channel,
            message_handler=guarded,
            nsqd_tcp_addresses=[self.address],
            **kwargs,
        )
        self.readers.append(reader)
        return reader

    async def subscribed(self, *readers: _Reader) -> None:
        """Wait until each reader's SUB has been answered (so its channel exists)."""
        for reader in readers:
            await self.wait(reader.subscribed, what=f"{reader.name} to subscribe")

    async def writer(self, **kwargs: Any) -> _Writer:
        """A pynsq Writer to the broker, once its connection is ready."""
        writer = _Writer([self.address], **kwargs)
        self.writers.append(writer)
        await self.wait(writer.ready, what="the writer to connect")
        return writer

    def publish(self, writer: _Writer, command: str, *args: Any) -> asyncio.Future[bytes]:
        """Send ``writer.<command>(*args)`` (pub, mpub or dpub); the future gets nsqd's reply
        (or an AssertionError for an error reply)."""
        future: asyncio.Future[bytes] = self.loop.create_future()

        def answered(conn: object, data: object) -> None:
            if future.done():
                return
            if isinstance(data, nsq.Error):
                future.set_exception(AssertionError(f"{command} {args[0]} answered {data}"))
            else:
                assert isinstance(data, bytes)
                future.set_result(data)

        getattr(writer, command)(*args, callback=answered)
        return future

    async def replies(self, futures: Iterable[asyncio.Future[bytes]]) -> list[bytes]:
        return [await self.wait(future, what="a publish reply") for future in futures]

    async def pub(self, writer: _Writer, topic: str, body: bytes) -> bytes:
        return await self.wait(self.publish(writer, "pub", topic, body), what="PUB reply")

    async def mpub(self, writer: _Writer, topic: str, bodies: list[bytes]) -> bytes:
        return await self.wait(self.publish(writer, "mpub", topic, bodies), what="MPUB reply")

    async def dpub(self, writer: _Writer, topic: str, delay_ms: int, body: bytes) -> bytes:
        future = self.publish(writer, "dpub", topic, delay_ms, body)
        return await self.wait(future, what="DPUB reply")

    # -- teardown ---------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every reader and writer and wait for their sockets to close."""
        self.watching = False
        closed: list[asyncio.Future[None]] = []
        conns = [conn for reader in self.readers for conn in reader.conns.values()]
        conns += [conn for writer in self.writers for conn in writer.conns.values()]
        for conn in conns:
            if conn.closed():
                continue
            done: asyncio.Future[None] = self.loop.create_future()
            conn.on("close", partial(_resolve, done))
            closed.append(done)
        for reader in self.readers:
            if reader.redist_periodic is not None:
                reader.close()  # closes its connections, stops its periodic callbacks
            reader.http_client.close()
        for conn in conns:
            if not conn.closed():
                conn.close()
        if closed:
            await asyncio.wait(closed, timeout=2.0)


def _resolve(future: asyncio.Future[None], **kwargs: Any) -> None:
    if not future.done():
        future.set_result(None)


def _run_in_thread(address: str, probe: BrokerProbe, scenario: Scenario[T], timeout: float) -> T:
    """Run ``scenario`` on a new IOLoop in this (worker) thread; close everything after."""
    io_loop = IOLoop(make_current=False)

    async def main() -> T:
        session = Session(address, probe)
        error_log = _ErrorLog(session)
        loggers = [logging.getLogger(name) for name in _WATCHED_LOGGERS]
        session.loop.set_exception_handler(
            lambda loop, context: session.fail(
                f"asyncio: {context.get('message')} {context.get('exception')!r}",
                context.get("exception"),
            )
        )
        for logger in loggers:
            logger.addHandler(error_log)
        try:
            try:
                async with asyncio.timeout(timeout):
                    result = await scenario(session)
            except TimeoutError:
                session.fail(f"the scenario did not finish within {timeout}s")
                raise AssertionError(session.failures[-1]) from None
            finally:
                await session.aclose()
        finally:
            for logger in loggers:
                logger.removeHandler(error_log)
        session.raise_failures()  # e.g. an error logged after the scenario's last wait
        return result

    try:
        result: T = io_loop.run_sync(main, timeout=timeout + 5.0)
        return result
    finally:
        io_loop.close(all_fds=True)

"""``trinsq to-file``'s I/O on trio: one consumer per topic (``trinsq.client``), each feeding
its :class:`FileLogger` through a router task, as nsq_to_file v1.3.0 does
(apps/nsq_to_file/file_logger.go's router, topic_discoverer.go).

Per topic, the router takes, in arrival order, the consumer's messages, the
``--sync-interval`` ticks, SIGHUP and the stop, and hands them to the file logger off the event
loop (its calls block on the disk), a batch of whatever has arrived at a time. A message is
finished only once it is synced, in nsq_to_file's moments: ``--max-in-flight`` written, a
rotation, a tick, SIGHUP, the stop, or the consumer being starved. SIGHUP syncs and closes each
topic's file (the next message opens the next one); SIGINT or SIGTERM stops every consumer,
syncs what was written, finishes it, and once every connection has closed, closes and moves the
files and exits 0. A disk error is fatal, as in nsq_to_file: a FATAL line and exit status 1.

One difference: while stopping, what was written is synced after every batch (nsq_to_file
waits for its next trigger), so the connections can close without waiting for a timeout.
"""

from __future__ import annotations

import logging
import math
import signal
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import NoReturn

import trio

from trinsq.client import ClientConfig, Consumer, Message, NSQError, open_consumer
from trinsq.common._httpclient import HttpClientError, get_json_url
from trinsq.common._logging import configure_logging
from trinsq.tools.tofile._filelogger import FileLogger
from trinsq.tools.tofile._flags import USER_AGENT
from trinsq.tools.tofile._naming import FilenameFormatError
from trinsq.tools.tofile._options import ToFileOptions
from trinsq.tools.tofile._topics import (
    TOPICS_TARGET,
    TopicListError,
    is_topic_allowed,
    lookupd_topics,
)

__all__ = ["run_to_file"]

log = logging.getLogger("trinsq.tools.to_file")


class _Event(Enum):
    TICK = "tick"  # --sync-interval
    HUP = "hup"  # SIGHUP: sync and close the file
    TERM = "term"  # stopping: sync now
    END = "end"  # the consumer has stopped: sync, close, done


class _DiskFailure(Exception):
    """The disk refused; nsq_to_file exits with status 1."""


def _now() -> datetime:
    """Local time with its zone, as Go's ``time.Now()`` formats it."""
    return datetime.now().astimezone()


class _Router:
    """One topic's consumer and files."""

    def __init__(self, logger: FileLogger, consumer: Consumer, options: ToFileOptions) -> None:
        self._logger = logger
        self._consumer = consumer
        self._options = options
        self._label = f"[{consumer.topic}/{consumer.channel}]"
        # Unbounded, yet bounded in practice: messages by the consumer's RDY, the rest by time
        # and signals; a sender never waits on the disk.
        self._send, self._events = trio.open_memory_channel[Message | _Event](math.inf)
        self._written: list[Message] = []  # in write order, not yet synced
        self._ticks = trio.CancelScope()

    def hup(self) -> None:
        self._send.send_nowait(_Event.HUP)

    def term(self) -> None:
        self._ticks.cancel()
        self._consumer.stop()
        self._send.send_nowait(_Event.TERM)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._feed)
            nursery.start_soon(self._tick)
            await self._route()
            nursery.cancel_scope.cancel()

    async def _feed(self) -> None:
        async for message in self._consumer:
            self._send.send_nowait(message)
        self._send.send_nowait(_Event.END)

    async def _tick(self) -> None:
        with self._ticks:
            interval = self._options.sync_interval
            deadline = trio.current_time()
            while True:  # a ticker: a slow round does not push the next one back
                deadline += interval
                await trio.sleep_until(deadline)
                self._send.send_nowait(_Event.TICK)

    async def _route(self) -> None:
        while True:
            batch = [await self._events.receive()]
            while True:
                try:
                    batch.append(self._events.receive_nowait())
                except trio.WouldBlock:
                    break
            self._written.extend(item for item in batch if isinstance(item, Message))
            synced, done = await trio.to_thread.run_sync(self._apply, batch)
            if self._written and (self._consumer.stopping or self._consumer.is_starved()):
                synced += await trio.to_thread.run_sync(self._sync)
            await self._finish(synced)
            if done:
                return

    async def _finish(self, count: int) -> None:
        """FIN the first ``count`` messages written: they are on disk."""
        done, self._written = self._written[:count], self._written[count:]
        for message in done:
            await message.finish()

    def _sync(self) -> int:
        try:
            return self._logger.sync_records()
        except OSError as error:
            self._fatal("failed syncing messages", error)

    def _apply(self, batch: Sequence[Message | _Event]) -> tuple[int, bool]:
        """The batch, on the disk (in a worker thread): how many messages are now synced, and
        whether the router is done."""
        logger = self._logger
        synced = 0
        now = _now()  # the batch arrived together: one moment for its names and rotations
        try:
            for item in batch:
                if isinstance(item, Message):
                    if logger.handle_message(item.body, now):
                        synced += logger.sync_records()
                elif item is _Event.TICK:
                    synced += logger.tick(now)
                elif item is _Event.TERM:
                    synced += logger.sync_records()
                else:  # HUP, END
                    synced += logger.stop()
                    if item is _Event.END:
                        return synced, True
        except OSError as error:
            self._fatal("writing message to disk", error)
        return synced, False

    def _fatal(self, what: str, error: OSError) -> NoReturn:
        log.critical("%s %s: %s", self._label, what, error)
        raise _DiskFailure(str(error)) from error


class _ToFile:
    """The topics being logged (nsq_to_file's TopicDiscoverer) and the signals' effects."""

    def __init__(self, options: ToFileOptions, nursery: trio.Nursery) -> None:
        self._options = options
        self._nursery = nursery
        self._topics: set[str] = set()
        self._routers: list[_Router] = []
        self._stopping = False
        self._discovery = trio.CancelScope()

    def update_topics(self, topics: Sequence[str]) -> None:
        for topic in topics:
            if topic in self._topics:
                continue
            if not is_topic_allowed(self._options.topic_pattern, topic):
                log.warning(
                    "skipping topic %s (doesn't match pattern %s)",
                    topic,
                    self._options.topic_pattern,
                )
                continue
            self._topics.add(topic)
            self._nursery.start_soon(self._log_topic, topic)

    async def _log_topic(self, topic: str) -> None:
        options = self._options
        opened = False
        try:
            logger = FileLogger(options, topic)
            # refused values (a negative --max-in-flight) leave the topic out, as go-nsq's
            # config check does in nsq_to_file
            config = ClientConfig(
                **{
                    **options.config_values,  # --consumer-opt; the flags below win
                    "max_in_flight": options.max_in_flight,
                    "user_agent": USER_AGENT,
                }
            )
            async with open_consumer(
                topic,
                options.channel,
                nsqd_tcp_addresses=options.nsqd_tcp_address,
                lookupd_http_addresses=options.lookupd_http_address,
                config=config,
            ) as consumer:
                opened = True
                router = _Router(logger, consumer, options)
                self._routers.append(router)
                if self._stopping:
                    router.term()
                await router.run()
        except (FilenameFormatError, NSQError, OSError, ValueError) as error:
            if opened:
                raise
            # as nsq_to_file: the topic is left out, the others go on
            log.error("couldn't create logger for new topic %s: %s", topic, error)

    async def discover(self) -> None:
        """nsq_to_file's topic discovery: the --topic list once, or, without one, the
        registries' topics every --topic-refresh (the first after one period)."""
        options = self._options
        self.update_topics(options.topic)
        if options.topic or options.topic_refresh <= 0:
            return  # Go's time.Tick gives no ticks for a period <= 0
        with self._discovery:
            while True:
                await trio.sleep(options.topic_refresh)
                try:
                    topics = await self._lookupd_topics()
                except TopicListError as error:
                    log.error("could not retrieve topic list: %s", error)
                    continue
                self.update_topics(topics)

    async def _lookupd_topics(self) -> list[str]:
        addresses = self._options.lookupd_http_address
        answers: list[object] = [None] * len(addresses)

        async def ask(index: int, address: str) -> None:
            try:
                answers[index] = await get_json_url(
                    f"http://{address}{TOPICS_TARGET}",
                    connect_timeout=self._options.http_client_connect_timeout,
                    request_timeout=self._options.http_client_request_timeout,
                )
            except HttpClientError as error:
                answers[index] = error

        async with trio.open_nursery() as nursery:
            for index, address in enumerate(addresses):
                nursery.start_soon(ask, index, address)
        return lookupd_topics(answers)

    def hup(self) -> None:
        for router in self._routers:
            router.hup()

    def term(self) -> None:
        self._stopping = True
        self._discovery.cancel()
        for router in self._routers:
            router.term()


async def _main(options: ToFileOptions) -> int:
    status = 0
    with trio.open_signal_receiver(signal.SIGHUP, signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with trio.open_nursery() as nursery:
                to_file = _ToFile(options, nursery)
                nursery.start_soon(to_file.discover)
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        to_file.hup()
                    else:
                        to_file.term()
                        break
        except* _DiskFailure:
            status = 1  # already logged
    return status


def run_to_file(options: ToFileOptions) -> int:
    """Log the topics to files until SIGINT or SIGTERM; the exit status (0, or 1 when the
    disk failed)."""
    configure_logging(options.log_level, options.log_prefix)
    return trio.run(_main, options)

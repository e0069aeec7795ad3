"""``trinsq tail``'s I/O: one :func:`trinsq.client.open_consumer` per topic, each message written
to stdout then finished, a graceful stop on SIGINT or SIGTERM.

nsq_tail exits from inside its handler after the ``-n``-th message, before finishing it; here
that message is finished first, and everything else handed out and not shown is requeued, so a
tail that stops leaves nothing waiting on nsqd's message timeout. On a signal, as go-nsq's
``Stop`` does, the consumers send CLS and what was already delivered is still shown and
finished; a second signal stops at once. Output is unbuffered, one write per message, as Go's
``os.Stdout`` is.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import BinaryIO, TextIO

import trio

from trinsq.client import ClientConfig, Consumer, Message, NSQError, open_consumer
from trinsq.tools._golog import go_log_line
from trinsq.tools.tail._flags import TailOptions
from trinsq.tools.tail._lines import TopicTail, tail_line

__all__ = ["run_tail"]

log = logging.getLogger("trinsq.tools.tail")


class _Tail:
    """The running consumers and why they stop."""

    def __init__(self, options: TailOptions, out: BinaryIO, err: TextIO) -> None:
        self.options = options
        self.out = out
        self.err = err
        self.consumers: list[Consumer] = []
        self.stopping = False  # a signal: show what was delivered, then end
        self.done = False  # -n reached, or stdout failed: show nothing more
        self.status = 0

    def stop(self) -> None:
        self.stopping = True
        for consumer in self.consumers:
            consumer.stop()

    def finish_early(self, status: int = 0) -> None:
        self.done = True
        self.status = self.status or status
        self.stop()

    def write(self, line: bytes) -> bool:
        try:
            self.out.write(line)
            self.out.flush()
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            self.fatal(f"ERROR: failed to write to os.Stdout - write /dev/stdout: {reason}")
            return False
        return True

    def fatal(self, text: str) -> None:
        """nsq_tail's ``log.Fatal`` line (the stop and exit status are the caller's)."""
        self.err.write(go_log_line(text) + "\n")
        self.err.flush()

    async def consume(
        self, topic: str, config: ClientConfig, *, task_status: trio.TaskStatus[None]
    ) -> None:
        """One topic's consumer, started once connected (its failure to start is raised)."""
        async with open_consumer(
            topic,
            self.options.channel,
            nsqd_tcp_addresses=self.options.nsqd_tcp_address,
            lookupd_http_addresses=self.options.lookupd_http_address,
            config=config,
        ) as consumer:
            self.consumers.append(consumer)
            if self.stopping:
                consumer.stop()
            task_status.started()
            await self.show(consumer)

    async def show(self, consumer: Consumer) -> None:
        topic = TopicTail(consumer.topic, self.options.n)
        prefix = consumer.topic if self.options.print_topic else None
        async for message in consumer:
            if self.done:
                await _give_back(message)
                continue
            if not self.write(tail_line(message.body, prefix)):
                await _give_back(message)
                self.finish_early(1)
                continue
            await message.finish()
            if topic.show():
                self.finish_early()

    async def watch_signals(self, signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
        async for _ in signals:
            if self.stopping:
                scope.cancel()  # a second signal: do not wait for nsqd
                return
            self.stop()


async def _give_back(message: Message) -> None:
    """Requeue a message that will not be shown, so nsqd delivers it again at once."""
    await message.requeue(0.0, backoff=False)


async def _tail(options: TailOptions, config: ClientConfig, out: BinaryIO, err: TextIO) -> int:
    tail = _Tail(options, out, err)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tail.watch_signals, signals, nursery.cancel_scope)
            async with trio.open_nursery() as consumers:
                for topic in options.topic:
                    log.info("Adding consumer for topic: %s", topic)
                    try:
                        await consumers.start(tail.consume, topic, config)
                    except (NSQError, OSError, ValueError) as exc:  # nsq_tail's log.Fatal
                        tail.fatal(str(exc))
                        tail.finish_early(1)
                        break
            nursery.cancel_scope.cancel()
    return tail.status


def _log_to(err: TextIO) -> None:
    """The client's log lines on stderr, as go-nsq's logger writes them (nsq_tail gives it
    ``log.New(os.Stderr, "", log.LstdFlags)``)."""
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y/%m/%d %H:%M:%S"))
    for name in ("trinsq.client", "trinsq.tools.tail"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def run_tail(options: TailOptions, out: BinaryIO | None = None, err: TextIO | None = None) -> int:
    """Show the topics' messages until ``-n`` of one topic's or a signal; the exit status.

    Returns:
        0 after ``-n`` messages or a signal, 1 when a consumer cannot start or stdout fails.
    """
    err = err or sys.stderr
    _log_to(err)
    config = options.client_config()  # checked by TailOptions.problem
    return trio.run(_tail, options, config, out or sys.stdout.buffer, err)

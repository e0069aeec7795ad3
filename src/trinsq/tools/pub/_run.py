"""``trinsq pub`` running: stdin, split into messages, published to every nsqd given.

As to_nsq does, each message goes to each nsqd in turn, one at a time and in order (every
nsqd gets its own producer, not a failover pool), and the first publish that fails ends the
run with its error as a fatal log line (status 1). End of input ends the run once everything
read is published (status 0). SIGINT or SIGTERM stops the reading at once; the messages
already read are still published, a piece with no delimiter after it yet is not (it was cut
short), and the run ends with status 0. A second signal gives up on the rest (status 1).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack

import trio

from trinsq.client import ClientConfig, NSQError, Producer, open_producer
from trinsq.common._running import single_errors
from trinsq.tools._golog import go_log_line
from trinsq.tools.pub._flags import PubOptions
from trinsq.tools.pub._pieces import PieceSplitter
from trinsq.tools.pub._throttle import Throttle

__all__ = ["publish_stream", "run_pub"]

_READ_SIZE = 65536


class _StdinError(Exception):
    """stdin cannot be read; ``str()`` says so as Go's os.File does."""

    @classmethod
    def from_read_error(cls, error: trio.BrokenResourceError) -> _StdinError:
        cause = error.__cause__
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(error)
        return cls(f"read /dev/stdin: {reason.lower()}")


class _Stopper:
    """The signal side: the first signal stops the reading, the second everything."""

    def __init__(self) -> None:
        self.signalled = 0
        self.reading: trio.CancelScope | None = None
        self.everything = trio.CancelScope()

    async def watch(self, signals: AsyncIterator[int] | None) -> None:
        if signals is None:
            await trio.sleep_forever()
            return
        async for _ in signals:
            self.signalled += 1
            if self.signalled == 1:
                if self.reading is not None:
                    self.reading.cancel()
            else:
                self.everything.cancel()


async def _publish_each(
    producers: Sequence[Producer], topic: str, body: bytes, throttle: Throttle | None
) -> None:
    if throttle is not None:
        await trio.sleep(throttle.delay(trio.current_time()))
        throttle.spend(trio.current_time())
    for producer in producers:
        await producer.publish(topic, body)


async def _pump(
    stdin: trio.abc.ReceiveStream,
    stopper: _Stopper,
    splitter: PieceSplitter,
    producers: Sequence[Producer],
    topic: str,
    throttle: Throttle | None,
) -> None:
    """Read, split and publish until end of input or the first signal."""
    while True:
        data = b""
        with trio.CancelScope() as stopper.reading:
            if stopper.signalled:
                stopper.reading.cancel()
            try:
                data = bytes(await stdin.receive_some(_READ_SIZE))
            except trio.BrokenResourceError as exc:
                raise _StdinError.from_read_error(exc) from exc
        stopper.reading = None
        if data or stopper.signalled:
            pieces = splitter.feed(data)  # after a signal: whole pieces only
        else:
            last = splitter.finish()
            pieces = [] if last is None else [last]
        for piece in pieces:
            await _publish_each(producers, topic, piece, throttle)
        if stopper.signalled or not data:
            return


async def publish_stream(
    options: PubOptions,
    config: ClientConfig,
    stdin: trio.abc.ReceiveStream,
    signals: AsyncIterator[int] | None = None,
) -> int:
    """Publish ``stdin`` as ``options`` say, stopping on ``signals``; the exit status.

    Fatal errors are written to stderr as to_nsq's log lines.
    """
    splitter = PieceSplitter(options.delimiter_byte)
    throttle = None
    if options.rate >= 1:
        throttle = Throttle(options.rate, trio.current_time())
        notice = f"Throttling messages rate to max:{options.rate}/second"
        print(go_log_line(notice), file=sys.stderr)
    stopper = _Stopper()
    try:
        with stopper.everything:
            async with single_errors(), trio.open_nursery() as nursery:
                nursery.start_soon(stopper.watch, signals)
                async with AsyncExitStack() as stack:
                    producers = [
                        await stack.enter_async_context(open_producer(address, config))
                        for address in options.addresses
                    ]
                    await _pump(stdin, stopper, splitter, producers, options.topic, throttle)
                nursery.cancel_scope.cancel()
    except NSQError as exc:  # a publish failed
        print(go_log_line(str(exc)), file=sys.stderr)
        return 1
    except _StdinError as exc:
        print(go_log_line(str(exc)), file=sys.stderr)
        return 1
    if stopper.everything.cancelled_caught:
        return 1
    return 0


async def _main(options: PubOptions, config: ClientConfig) -> int:
    if sys.stdin is None:  # started with stdin closed (fd 0 may be another file by now)
        print(go_log_line("read /dev/stdin: bad file descriptor"), file=sys.stderr)
        return 1
    # a copy: closing the stream leaves the process's stdin as it was
    async with trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())) as stdin:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            return await publish_stream(options, config, stdin, signals)


def run_pub(options: PubOptions) -> int:
    """Run ``trinsq pub`` with checked options (see :meth:`PubOptions.problem`) until stdin
    ends or a signal; the exit status."""
    # A failed publish ends the run with its own fatal line; the client's notes on the way
    # there (reconnecting, backing off) would only say it twice.
    logging.getLogger("trinsq.client").setLevel(logging.ERROR)
    return trio.run(_main, options, options.client_config())

"""An embedded broker's clients over in-memory streams, and what virtual time needs of it.

``MemoryClient.connect(broker)`` hands the broker one end of a
``trio.testing.memory_stream_pair()`` (or of a ``lockstep_stream_pair()``, which has no buffer
at all) through ``BrokerServer.accept_stream``, which serves it as if its TCP listener had
accepted it, in the broker's own nursery: no socket is involved, and the connection ends when
the broker shuts down.

Under ``MockClock(autojump_threshold=0)`` the clock jumps to the next deadline as soon as no
task can run, including while a task waits for a worker thread. The broker hands disk work to
threads (nsqd.dat rewrites, fsyncs), so a jump could happen in the middle of it and the order
of events would depend on how fast the disk is. :func:`run_broker_threads_inline` runs that
work on the event loop instead, so it takes no virtual time at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import attrs
import trio
import trio.testing

from tests.support import StreamClient
from trinsq import RunningBroker
from trinsq.protocol import Frame, FrameType

__all__ = ["BrokerThreads", "MemoryClient", "connect_in_memory", "run_broker_threads_inline"]

T = TypeVar("T")

_client_numbers = itertools.count(1)


def connect_in_memory(broker: RunningBroker, *, lockstep: bool = False) -> trio.abc.Stream:
    """A new client connection to ``broker`` over memory streams; returns the client's end.

    The broker serves the other end (as ``memory:<n>``) until either side closes it or the
    broker shuts down.
    """
    make_pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
    ours, theirs = make_pair()
    broker.server.accept_stream(theirs, f"memory:{next(_client_numbers)}")
    return ours


class MemoryClient(StreamClient[trio.abc.Stream]):
    """A raw V2 client over an in-memory stream, with helpers for waits in virtual time.

    A consumer waiting minutes of virtual time must answer heartbeats as a real client does,
    or the broker drops it after two intervals: the helpers answer each with a NOP.
    """

    @classmethod
    async def connect(
        cls, broker: RunningBroker, *, magic: bytes = b"  V2", lockstep: bool = False
    ) -> MemoryClient:
        client = cls(connect_in_memory(broker, lockstep=lockstep))
        if magic:
            await client.send(magic)
        return client

    async def next_frame_answering_heartbeats(self, timeout: float) -> Frame:
        """The next frame that is not a heartbeat, NOP-ing the heartbeats before it."""
        with trio.fail_after(timeout):
            while True:
                frame = await self.read_frame(timeout=timeout, skip_heartbeats=False)
                if not frame.is_heartbeat:
                    return frame
                await self.send(b"NOP\n")

    async def next_message(self, timeout: float) -> tuple[int, int, bytes, bytes]:
        """The next message as (timestamp_ns, attempts, id, body), answering heartbeats."""
        frame = await self.next_frame_answering_heartbeats(timeout)
        assert frame.frame_type == FrameType.MESSAGE, frame
        return frame.message_fields()

    async def answer_heartbeats_until(self, deadline: float) -> None:
        """Stay connected until trio's clock reaches ``deadline``; any frame other than a
        heartbeat fails the test."""
        with trio.move_on_at(deadline):
            frame = await self.next_frame_answering_heartbeats(timeout=float("inf"))
            raise AssertionError(f"unexpected frame before {deadline}: {frame}")


@attrs.define
class BrokerThreads:
    """What went to ``trio.to_thread.run_sync`` while :func:`run_broker_threads_inline` was
    in force, by function name."""

    inline: list[str] = attrs.Factory(list)  # trinsq's own work, run on the event loop
    threaded: list[str] = attrs.Factory(list)  # anything else, left to a real thread


@contextmanager
def run_broker_threads_inline() -> Iterator[BrokerThreads]:
    """Run the functions trinsq hands to worker threads on the event loop instead.

    The broker calls ``trio.to_thread.run_sync`` through the module attribute, so replacing
    it here reaches every call. Only trinsq's own functions are run inline; other callers
    (tests/deadlines.py's watchdog, which must keep real time) still get a thread.
    """
    real_run_sync = trio.to_thread.run_sync
    threads = BrokerThreads()

    async def run_sync(sync_fn: Callable[..., T], *args: object, **options: Any) -> T:
        name = getattr(sync_fn, "__qualname__", repr(sync_fn))
        if getattr(sync_fn, "__module__", "").startswith("trinsq."):
            threads.inline.append(name)
            await trio.lowlevel.checkpoint()  # a schedule point, as the real one has
            return sync_fn(*args)
        threads.threaded.append(name)
        return await real_run_sync(sync_fn, *args, **options)

    trio.to_thread.run_sync = run_sync
    try:
        yield threads
    finally:
        trio.to_thread.run_sync = real_run_sync

"""An embedded broker's clients over in-memory streams.

``MemoryClient.connect(broker)`` hands the broker one end of a
``trio.testing.memory_stream_pair()`` (or of a ``lockstep_stream_pair()``, which has no buffer
at all) through ``BrokerServer.accept_stream``, which serves it as if its TCP listener had
accepted it, in the broker's own nursery: no socket is involved, and the connection ends when
the broker shuts down.
"""

from __future__ import annotations

import itertools

import trio
import trio.testing

from trinsq import RunningBroker
from trinsq.protocol import Frame, FrameType

from .support import StreamClient

__all__ = ["MemoryClient", "connect_in_memory"]

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

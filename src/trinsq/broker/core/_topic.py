"""A topic: fans every published message out to all of its channels (nsqd/topic.go).

nsqd runs one pump goroutine per topic; here the fan-out happens synchronously inside the
publish call, so a publish costs no task switch. Messages wait in the topic only while it
cannot deliver: no channels yet, paused, or not started.

A published message is written once, as a frame in the topic's blocks, which its channels
share (see _frames.py): queued, deferred (one entry per publish step, see _deferred.py), and
held by the topic itself (as :class:`HeldRun` entries that remember the delay). Only messages
read back from the backend are :class:`Message` objects, copied per channel.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs

from ._backend import Backend
from ._channel import Channel
from ._frames import (
    Block,
    FrameRuns,
    FrameWriter,
    Run,
    frame_id,
    frame_timestamp,
    run_end,
    run_offsets,
    run_records,
)
from ._message import Message, MessageIdFactory, record_header

__all__ = ["BACKLOG_STEP", "HeldRun", "Topic"]

# Held messages move to the channels in steps of at most this many message copies (one per
# channel), a few milliseconds of work, so a large backlog on disk is drained with the event
# loop free in between rather than read at once.
BACKLOG_STEP: Final = 4096


def _no_backlog_task(topic: Topic) -> None:
    pass


class HeldRun(Run):
    """Frames the topic holds until it can deliver, published with a delay of ``defer_ms``
    (0: none), which each channel applies when it receives them, as nsqd does."""

    __slots__ = ("defer_ms",)

    def __init__(self, block: Block, start: int, end: int, count: int, defer_ms: int) -> None:
        super().__init__(block, start, end, count)
        self.defer_ms = defer_ms


@attrs.define(eq=False)
class Topic:
    """One topic and its channels.

    Attributes:
        started: nsqd holds delivery until a new topic has learnt its channels (from
            nsqd.dat or nsqlookupd); until then publishes wait in the topic.
        queue: frames held until the topic can deliver, oldest first; ``queued`` messages.
    """

    name: str
    ephemeral: bool
    mem_queue_size: int
    backend: Backend
    ids: MessageIdFactory
    new_channel: Callable[[Topic, str], Channel]
    # Called when more is held than one step delivers; the server then drains the rest.
    on_backlog: Callable[[Topic], None] = _no_backlog_task
    channels: dict[str, Channel] = attrs.field(factory=dict)
    paused: bool = False
    started: bool = True
    exiting: bool = False
    queue: deque[HeldRun] = attrs.field(factory=deque)
    queued: int = 0
    message_count: int = 0
    message_bytes: int = 0
    frames: FrameWriter = attrs.field(factory=FrameWriter)

    @property
    def depth(self) -> int:
        return self.queued + self.backend.depth

    @property
    def backend_depth(self) -> int:
        return self.backend.depth

    @property
    def can_deliver(self) -> bool:
        return self.started and not self.paused and bool(self.channels)

    def publish(
        self, ids: Sequence[bytes], bodies: Sequence[bytes], timestamp: int, defer_ms: int = 0
    ) -> None:
        """Accept newly published messages made of ``ids`` and ``bodies``, deferred by
        ``defer_ms`` (0: not deferred)."""
        self.message_count += len(bodies)
        self.message_bytes += sum(map(len, bodies))
        if self.can_deliver:
            self._fan_out_frames(self.frames.write(ids, bodies, timestamp), defer_ms)
            return
        room = self.mem_queue_size - self.queued
        room = room if room > 0 else 0  # not max(): a builtin call costs ~1k instructions here
        if room:
            for run in self.frames.write(ids[:room], bodies[:room], timestamp):
                self._hold(*run, defer_ms)
        if len(bodies) > room:  # the rest to the backend, as records made here at once
            header = record_header(timestamp)
            self.backend.put_records(
                [
                    header + message_id + body
                    for message_id, body in zip(ids[room:], bodies[room:], strict=True)
                ]
            )
            if defer_ms > 0:  # with its due time (nsqd loses the delay here, #1375)
                self.backend.defer_many(ids[room:], timestamp + defer_ms * 1_000_000)

    def _hold(self, block: Block, start: int, end: int, count: int, defer_ms: int) -> None:
        queue = self.queue
        self.queued += count
        if queue:
            last = queue[-1]
            if last.block is block and last.end == start and last.defer_ms == defer_ms:
                last.end = end
                last.count += count
                return
        queue.append(HeldRun(block, start, end, count, defer_ms))

    def _fan_out_frames(self, runs: FrameRuns, defer_ms: int) -> None:
        for channel in self.channels.values():
            if defer_ms > 0:
                channel.defer_frames(runs, defer_ms)
            else:
                channel.put_frames(runs)

    def _fan_out(self, messages: list[Message]) -> None:
        """Messages read back from the backend, to every channel."""
        if all(message.pin is None for message in messages):
            # Held since published, never delivered: frames like a new publish, deferred
            # ones by what is left of their delay (the same for a whole publish, mostly).
            for defer_ms, same in itertools.groupby(messages, key=lambda m: max(m.defer_ms, 0)):
                group = list(same)
                runs = self.frames.write(
                    [message.id for message in group],
                    [message.body for message in group],
                    [message.timestamp for message in group],
                )
                self._fan_out_frames(runs, defer_ms)
            return
        channels = list(self.channels.values())
        # Copy before any channel sees the messages: a channel changes its own copy (a
        # deferred one has its delay consumed), and the others must get them untouched.
        copies = [[message.copy_for_channel() for message in messages] for _ in channels[1:]]
        for channel, batch in zip(channels, [messages, *copies], strict=True):
            channel.put_messages(batch)

    @property
    def has_backlog(self) -> bool:
        return self.queued > 0 or self.backend.depth > 0

    def deliver_backlog(self, copies: int = BACKLOG_STEP) -> bool:
        """Move held messages to the channels, as many as ``copies`` message copies allow (at
        least one); return whether more remain and can be moved now (not when none could be
        read from disk: the storage calls :meth:`retry_backlog` later)."""
        if not self.can_deliver:
            return False
        limit = step = max(1, copies // max(1, len(self.channels)))
        queue = self.queue
        while queue and limit > 0:
            held = queue[0]
            block, start, count = held.block, held.start, held.count
            if count <= limit:
                queue.popleft()
                end = held.end
            else:  # the step ends inside this run
                count = limit
                end = held.start = run_end(block, start, count)
                held.count -= count
            self.queued -= count
            limit -= count
            self._fan_out_frames([(block, start, end, count)], held.defer_ms)
        if limit > 0:
            batch = self.backend.pop_many(limit)
            if batch:
                self._fan_out(batch)
            elif limit == step:  # nothing moved: none held in memory, none read from disk
                return False
        return self.has_backlog

    def _deliver_backlog(self) -> None:
        if self.deliver_backlog():
            self.on_backlog(self)

    def retry_backlog(self) -> None:
        """Its disk queue failed a read (out of descriptors...): try again."""
        self._deliver_backlog()

    def get_channel(self, name: str) -> Channel:
        """Return the named channel, creating it (and delivering any backlog to it)."""
        channel = self.channels.get(name)
        if channel is None:
            channel = self.new_channel(self, name)
            self.channels[name] = channel
            self._deliver_backlog()
        return channel

    def start(self) -> None:
        self.started = True
        self._deliver_backlog()

    def pause(self) -> None:
        self.paused = True

    def unpause(self) -> None:
        self.paused = False
        self._deliver_backlog()

    def empty(self) -> None:
        """Drop what waits in the topic itself; channels keep theirs (HTTP /topic/empty)."""
        self.queue.clear()
        self.queued = 0
        self.backend.empty()

    def remove_channel(self, name: str) -> Channel | None:
        """Take a channel out of the topic, closing its clients and dropping its messages."""
        channel = self.channels.pop(name, None)
        if channel is not None:
            channel.close_clients()
            channel.empty()
        return channel

    def persist(self, now_ns: int) -> None:
        """At shutdown: hand everything held in memory to the backend, a deferred message
        with its due time (nsqd loses the delay here, #1375)."""
        backend = self.backend
        for held in self.queue:
            block, start, end = held.block, held.start, held.end
            if held.defer_ms > 0:
                # Due at publish time plus the delay: the same for each publish's messages.
                delay_ns = held.defer_ms * 1_000_000
                offsets = run_offsets(block, start, end)
                for timestamp, same in itertools.groupby(
                    offsets, key=lambda offset: frame_timestamp(block, offset)
                ):
                    ids = [frame_id(block, offset) for offset in same]
                    backend.defer_many(ids, timestamp + delay_ns)
            backend.put_records(run_records(block, start, end))
        self.queue.clear()
        self.queued = 0

    def close_all(self) -> Iterable[Channel]:
        """Mark the topic exiting and close every channel's clients."""
        self.exiting = True
        channels = list(self.channels.values())
        for channel in channels:
            channel.close_clients()
        return channels

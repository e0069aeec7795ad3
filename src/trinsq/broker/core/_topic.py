"""A topic: fans every published message out to all of its channels (nsqd/topic.go).

nsqd runs one pump goroutine per topic; here the fan-out happens synchronously inside the
publish call, so a publish costs no task switch. Messages wait in the topic only while it
cannot deliver: no channels yet, paused, or not started.

A published message is written once, as a frame in the topic's blocks, which its channels
share (see _frames.py); one held by the topic waits as such a frame too, so a first channel
takes over the backlog as runs without touching a message. A deferred one is a
:class:`Message` copied per channel.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs

from ._backend import Backend
from ._channel import Channel
from ._frames import FrameWriter, Run, append_run, run_end, run_records
from ._message import Message, MessageIdFactory, record_header

__all__ = ["BACKLOG_STEP", "Topic"]

# Held messages move to the channels in steps of at most this many message copies (one per
# channel), a few milliseconds of work, so a large backlog on disk is drained with the event
# loop free in between rather than read at once.
BACKLOG_STEP: Final = 4096


def _no_backlog_task(topic: Topic) -> None:
    pass


@attrs.define(eq=False)
class Topic:
    """One topic and its channels.

    Attributes:
        started: nsqd holds delivery until a new topic has learnt its channels (from
            nsqd.dat or nsqlookupd); until then publishes wait in the topic.
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
    queue: deque[Run | Message] = attrs.field(factory=deque)
    queued: int = 0  # messages in ``queue`` (a run holds many)
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

    def put_messages(self, messages: list[Message]) -> None:
        """Accept published messages: fan out now, or hold them until the topic can deliver."""
        self.message_count += len(messages)
        self.message_bytes += sum(len(message.body) for message in messages)
        if self.can_deliver:
            self._fan_out(messages)
            return
        for message in messages:
            if self.queued < self.mem_queue_size:
                self.queue.append(message)
                self.queued += 1
            else:
                self._spill(message)

    def publish(self, ids: Sequence[bytes], bodies: Sequence[bytes], timestamp: int) -> None:
        """Accept newly published messages (not deferred) made of ``ids`` and ``bodies``."""
        self.message_count += len(bodies)
        self.message_bytes += sum(map(len, bodies))
        if self.can_deliver:
            runs = self.frames.write(ids, bodies, timestamp)
            for channel in self.channels.values():
                channel.put_frames(runs)
            return
        room = max(self.mem_queue_size - self.queued, 0)
        if room:
            for block, start, end, count in self.frames.write(ids[:room], bodies[:room], timestamp):
                append_run(self.queue, block, start, end, count)
                self.queued += count
        if len(bodies) > room:  # the rest to the backend, as records made here at once
            header = record_header(timestamp)
            self.backend.put_records(
                [
                    header + message_id + body
                    for message_id, body in zip(ids[room:], bodies[room:], strict=True)
                ]
            )

    def _fan_out(self, messages: list[Message]) -> None:
        if all(message.defer_ms <= 0 and message.pin is None for message in messages):
            # Held since published, never delivered: frames like a new publish.
            runs = self.frames.write(
                [message.id for message in messages],
                [message.body for message in messages],
                [message.timestamp for message in messages],
            )
            for channel in self.channels.values():
                channel.put_frames(runs)
            return
        channels = list(self.channels.values())
        # Copy before any channel sees the messages: a channel changes its own copy (a
        # deferred one has its delay consumed), and the others must get them untouched.
        copies = [[message.copy_for_channel() for message in messages] for _ in channels[1:]]
        for channel, batch in zip(channels, [messages, *copies], strict=True):
            channel.put_messages(batch)

    @property
    def has_backlog(self) -> bool:
        return bool(self.queue) or self.backend.depth > 0

    def deliver_backlog(self, copies: int = BACKLOG_STEP) -> bool:
        """Move held messages to the channels, as many as ``copies`` message copies allow (at
        least one); return whether more remain."""
        if not self.can_deliver:
            return False
        limit = max(1, copies // max(1, len(self.channels)))
        queue = self.queue
        while queue and limit > 0:
            entry = queue[0]
            if isinstance(entry, Run):
                # Frames go to every channel as they are: one run, no message touched.
                count = min(entry.count, limit)
                if count == entry.count:
                    queue.popleft()
                    end = entry.end
                else:
                    end = run_end(entry.block, entry.start, count)
                runs = [(entry.block, entry.start, end, count)]
                entry.start, entry.count = end, entry.count - count
                for channel in self.channels.values():
                    channel.put_frames(runs)
            else:
                batch: list[Message] = []
                while queue and len(batch) < limit and not isinstance(queue[0], Run):
                    batch.append(queue.popleft())  # type: ignore[arg-type]
                count = len(batch)
                self._fan_out(batch)
            self.queued -= count
            limit -= count
        if limit > 0:
            spilled = self.backend.pop_many(limit)
            if spilled:
                self._fan_out(spilled)
        return self.has_backlog

    def _deliver_backlog(self) -> None:
        if self.deliver_backlog():
            self.on_backlog(self)

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

    def _spill(self, message: Message) -> None:
        """Into the backend, a DPUB with its due time (nsqd loses the delay here, #1375)."""
        if message.defer_ms > 0:
            due_ns = message.timestamp + message.defer_ms * 1_000_000
            self.backend.defer_until(message.id, due_ns)
        self.backend.put(message)

    def persist(self, now_ns: int) -> None:
        """At shutdown: hand everything held in memory to the backend."""
        for entry in self.queue:
            if isinstance(entry, Run):
                self.backend.put_records(run_records(entry.block, entry.start, entry.end))
            else:
                self._spill(entry)
        self.queue.clear()
        self.queued = 0

    def close_all(self) -> Iterable[Channel]:
        """Mark the topic exiting and close every channel's clients."""
        self.exiting = True
        channels = list(self.channels.values())
        for channel in channels:
            channel.close_clients()
        return channels

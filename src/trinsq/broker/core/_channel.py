"""A channel: its queue, in-flight and deferred tables, and its consumers (nsqd/channel.go).

Pure model code, no trio: time comes from an injected clock, timers are requested through an
injected scheduler, and consumers are woken through :class:`Consumer`. Delivery is pull-based:
a consumer's pump calls :meth:`Channel.take_into` for as many messages as its RDY window
allows, in one call, and parks in :attr:`Channel.waiting` when there is nothing to take.

The queue holds runs of the topic's message frames (see _frames.py), copied into the
consumer's output buffer a run at a time, and :class:`Message` objects (requeued, timed out,
held by the topic before it could deliver, read from disk), in FIFO order. In flight, each
message is one small record (see _inflight.py).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Protocol

import attrs

from ...protocol import append_message_frame
from ._backend import Backend
from ._consumer import Consumer
from ._deferred import DeferredMessages, put_deferred_records
from ._frames import (
    Block,
    FrameRuns,
    Run,
    append_run,
    decode_frames,
    run_end,
    run_messages,
    run_records,
)
from ._inflight import (
    DELIVERED_AT,
    OWNER,
    Deadlines,
    InFlight,
    in_flight_message,
    in_flight_timestamp,
    take_run,
    take_run_sampled,
)
from ._message import Message
from ._quantile import LatencyStream

__all__ = ["Channel", "ChannelError", "Consumer", "Scheduler"]  # Consumer from _consumer


class Scheduler(Protocol):
    def schedule(self, channel: Channel, due: float) -> None:
        """Call ``channel.on_due(due)`` at monotonic time ``due``."""


class ChannelError(Exception):
    """A FIN/REQ/TOUCH/SUB the channel refuses; the text is nsqd's."""


@attrs.define(eq=False)
class Channel:
    """A channel of a topic. Every message published to the topic gets a copy here.

    Attributes:
        queue: runs of frames and messages, oldest first; ``queued`` messages in all.
        in_flight: delivered and not yet FIN'd/REQ'd/timed out, by message id.
        deferred: waiting for their due time (DPUB, REQ with a delay), by message id.
        waiting: consumers whose pumps are parked until a message arrives (FIFO, so load
            is shared round-robin among idle consumers).
    """

    topic_name: str
    name: str
    ephemeral: bool
    mem_queue_size: int
    max_msg_timeout: float
    max_channel_consumers: int
    backend: Backend
    clock: Callable[[], float]
    scheduler: Scheduler
    paused: bool = False
    exiting: bool = False
    queue: deque[Run | Message] = attrs.field(factory=deque)
    queued: int = 0
    in_flight: dict[bytes, InFlight] = attrs.field(factory=dict)
    clients: dict[int, Consumer] = attrs.field(factory=dict)
    waiting: dict[Consumer, None] = attrs.field(factory=dict)
    message_count: int = 0
    requeue_count: int = 0
    timeout_count: int = 0
    deadlines: Deadlines = attrs.field(factory=Deadlines)
    deferrals: DeferredMessages = attrs.field(factory=DeferredMessages)
    _scheduled: float | None = None
    wall_clock_ns: Callable[[], int] = time.time_ns
    # End-to-end latency of finished messages, when --e2e-processing-latency-percentile is set.
    e2e: LatencyStream | None = None
    # randrange(100) as nsqd's rand.Int31n(100), injectable so tests can fix the draws.
    random_percent: Callable[[], int] = attrs.field(default=lambda: random.randrange(100))

    # -- stats -----------------------------------------------------------------------------------

    @property
    def deferred(self) -> Mapping[bytes, Message]:
        return self.deferrals.messages

    @property
    def depth(self) -> int:
        """Queued messages, memory plus backend; in-flight and deferred are not counted."""
        return self.queued + self.backend.depth

    @property
    def backend_depth(self) -> int:
        return self.backend.depth

    def queued_messages(self) -> list[Message]:
        """What the memory queue holds, as messages (attempts 0 for frames never delivered)."""
        messages: list[Message] = []
        for entry in self.queue:
            if isinstance(entry, Run):
                messages += run_messages(entry.block, entry.start, entry.end)
            else:
                messages.append(entry)
        return messages

    # -- putting messages in -------------------------------------------------------------------

    def put_frames(self, runs: FrameRuns) -> None:
        """Receive newly published messages from the topic, as runs of its frames."""
        total = self._queue_frames(runs)
        self.message_count += total
        self._wake_waiting(total)

    def defer_frames(self, runs: FrameRuns, defer_ms: int) -> None:
        """Receive newly published messages deferred by ``defer_ms``, as runs of the topic's
        frames: they wait as they are, one entry for them all."""
        count = sum(run[3] for run in runs)
        self.message_count += count
        if self.backend.durable_deferral:
            # Crash-safe: the messages and their due time go to disk; each is deferred in
            # memory when a consumer's take reads it back.
            due_ns = self.wall_clock_ns() + defer_ms * 1_000_000
            put_deferred_records(self.backend, runs, due_ns)
            self._wake_waiting(count)
            return
        due = self.clock() + defer_ms / 1000
        self.deferrals.add_frames(runs, due)
        self._reschedule(due)

    def _queue_frames(self, runs: FrameRuns) -> int:
        """Queue runs of frames, what has no room going to the backend; how many messages."""
        total = 0
        for block, start, end, count in runs:
            total += count
            room = count if self.ephemeral and self.waiting else self.mem_queue_size - self.queued
            if room >= count:
                self._append_run(block, start, end, count)
                continue
            # What the memory queue has no room for goes to the backend, in order.
            split = start
            if room > 0:
                split = run_end(block, start, room)
                self._append_run(block, start, split, room)
            self.backend.put_records(run_records(block, split, end))
        return total

    def _append_run(self, block: Block, start: int, end: int, count: int) -> None:
        self.queued += count
        append_run(self.queue, block, start, end, count)

    def put_messages(self, messages: list[Message]) -> None:
        """Receive messages from the topic (each already this channel's own copy)."""
        self.message_count += len(messages)
        backend = self.backend
        queue = self.queue
        room_always = self.ephemeral and bool(self.waiting)
        # What the memory queue has no room for goes to the backend in one call, in order.
        overflow: list[Message] = []
        for message in messages:
            if message.defer_ms <= 0:
                # A pinned message (crash-safe mode) is still on disk: requeue it in memory.
                if message.pin is not None or self.queued < self.mem_queue_size or room_always:
                    queue.append(message)
                    self.queued += 1
                else:
                    overflow.append(message)
            elif backend.durable_deferral:
                # Crash-safe: the message and its due time go to disk; it is deferred in
                # memory when a consumer's take reads it back.
                if overflow:
                    backend.put_many(overflow)
                    overflow = []
                backend.defer_until(message.id, self.wall_clock_ns() + message.defer_ms * 1_000_000)
                backend.put(message)
            else:
                self._defer(message, message.defer_ms / 1000)
        if overflow:
            backend.put_many(overflow)
        self._wake_waiting(len(messages))

    def _enqueue(self, message: Message) -> None:
        # A pinned message (crash-safe mode) is still on disk: requeue it in memory only.
        if (
            message.pin is not None
            or self.queued < self.mem_queue_size
            or (self.ephemeral and self.waiting)
        ):
            self.queue.append(message)
            self.queued += 1
        else:
            self.backend.put(message)

    def _wake_waiting(self, count: int) -> None:
        waiting = self.waiting
        while count > 0 and waiting:
            consumer = next(iter(waiting))
            del waiting[consumer]
            consumer.wake()
            count -= 1

    # -- delivery ------------------------------------------------------------------------------

    def take_into(
        self,
        consumer: Consumer,
        limit: int,
        msg_timeout: float,
        out: bytearray,
        sample_rate: int = 0,
    ) -> int:
        """Append up to ``limit`` queued messages to ``out`` as message frames, marking them
        in flight for ``consumer``; return how many.

        With a ``sample_rate`` of 1..99, each message is kept with that percent chance and
        otherwise discarded for the whole channel, as nsqd does for sampling consumers.
        """
        if self.paused or self.exiting or limit <= 0:
            return 0
        queue = self.queue
        now = self.clock()
        deadline = now + msg_timeout
        owner = consumer.id
        in_flight = self.in_flight
        taken: list[InFlight] = []
        add = taken.append
        wanted = limit
        while wanted > 0:
            if not queue:
                # Backend messages come in batches of at most what is still wanted, so every
                # one popped is used here (taken, deferred, or sampled out).
                spilled = self.backend.pop_many(wanted)
                if not spilled:
                    break
                for message in spilled:
                    if message.defer_ms > 0:  # saved at shutdown while deferred, not yet due
                        self._defer(message, message.defer_ms / 1000)
                    elif not sample_rate or self.random_percent() <= sample_rate:
                        add(self._deliver(message, owner, deadline, now, out))
                        wanted -= 1
                continue
            entry = queue[0]
            if entry.__class__ is not Run:
                queue.popleft()
                self.queued -= 1
                if not sample_rate or self.random_percent() <= sample_rate:
                    add(self._deliver(entry, owner, deadline, now, out))  # type: ignore[arg-type]
                    wanted -= 1
                continue
            block = entry.block
            count = entry.count
            start = entry.start
            used = count if count <= wanted else wanted
            if sample_rate:
                keep = partial(self._sampled_in, sample_rate)
                position, kept = take_run_sampled(
                    block, start, used, (owner, deadline, now), in_flight, taken, out, keep
                )
                wanted -= kept
            else:
                position = take_run(block, start, used, (owner, deadline, now), in_flight, taken)
                out += memoryview(block)[start:position]  # the whole run in one copy
                wanted -= used
            self.queued -= used
            if used == count:
                queue.popleft()
            else:
                entry.start = position
                entry.count = count - used
        if not taken:
            return 0
        self.deadlines.push(deadline, taken)
        self.deadlines.compact(in_flight)
        self._reschedule(deadline)
        return len(taken)

    def _sampled_in(self, sample_rate: int) -> bool:
        return self.random_percent() <= sample_rate

    def _deliver(
        self, message: Message, owner: int, deadline: float, now: float, out: bytearray
    ) -> InFlight:
        message.attempts += 1
        append_message_frame(out, message.timestamp, message.attempts, message.id, message.body)
        record = (message.id, owner, deadline, now, message, -1)
        self.in_flight[message.id] = record
        return record

    def take(
        self, consumer: Consumer, limit: int, msg_timeout: float, sample_rate: int = 0
    ) -> list[Message]:
        """:meth:`take_into`, returning the messages as the consumer reads them."""
        out = bytearray()
        self.take_into(consumer, limit, msg_timeout, out, sample_rate)
        return decode_frames(out)

    def _pop_in_flight(self, owner: int, message_id: bytes) -> InFlight:
        record = self.in_flight.get(message_id)
        if record is None:
            raise ChannelError("ID not in flight")
        if record[OWNER] != owner:
            raise ChannelError("client does not own message")
        del self.in_flight[message_id]
        return record

    def finish(self, owner: int, message_id: bytes) -> None:
        """FIN: the message is done.

        Raises:
            ChannelError: not in flight, or in flight for another client.
        """
        record = self._pop_in_flight(owner, message_id)
        source = record[4]
        if isinstance(source, Message):
            self.backend.release(source)
        if self.e2e is not None:
            self.e2e.insert(self.wall_clock_ns() - in_flight_timestamp(record))

    def finish_many(self, owner: int, message_ids: list[bytes]) -> list[tuple[bytes, ChannelError]]:
        """FIN each of ``message_ids`` in order; the ones that failed, with why."""
        in_flight = self.in_flight
        failed: list[tuple[bytes, ChannelError]] = []
        plain = self.e2e is None
        for message_id in message_ids:
            record = in_flight.get(message_id)
            if record is not None and record[1] == owner and plain and record[5] >= 0:
                del in_flight[message_id]  # the common case: a frame's first delivery
                continue
            try:
                self.finish(owner, message_id)
            except ChannelError as error:
                failed.append((message_id, error))
        return failed

    def requeue(self, owner: int, message_id: bytes, delay: float) -> None:
        """REQ: put the message back now (``delay`` 0) or after ``delay`` seconds.

        Raises:
            ChannelError: as for :meth:`finish`, or ``exiting`` when the channel is closing.
        """
        message = in_flight_message(self._pop_in_flight(owner, message_id))
        self.requeue_count += 1
        if delay <= 0:
            if self.exiting:
                raise ChannelError("exiting")
            self._enqueue(message)
            self._wake_waiting(1)
        else:
            self._defer(message, delay)

    def touch(self, owner: int, message_id: bytes, msg_timeout: float) -> None:
        """TOUCH: restart the message's timeout, but never past --max-msg-timeout since its
        delivery.

        Raises:
            ChannelError: as for :meth:`finish`.
        """
        record = self.in_flight.get(message_id)
        if record is None:
            raise ChannelError("ID not in flight")
        if record[OWNER] != owner:
            raise ChannelError("client does not own message")
        delivered_at = record[DELIVERED_AT]
        deadline = min(self.clock() + msg_timeout, delivered_at + self.max_msg_timeout)
        touched = (message_id, owner, deadline, delivered_at, record[4], record[5])
        self.in_flight[message_id] = touched
        self.deadlines.push(deadline, [touched])
        self.deadlines.compact(self.in_flight)
        self._reschedule(deadline)

    def _defer(self, message: Message, delay: float) -> None:
        due = self.clock() + delay
        if not self.deferrals.add(message, due):
            return
        message.defer_ms = 0
        if message.pin is not None:
            self.backend.defer_until(message.id, self.wall_clock_ns() + round(delay * 1e9))
        self._reschedule(due)

    # -- timers ----------------------------------------------------------------------------------

    def _reschedule(self, due: float) -> None:
        if self._scheduled is None or due < self._scheduled:
            self._scheduled = due
            self.scheduler.schedule(self, due)

    def on_due(self, due: float) -> None:
        """Called by the scheduler: time out expired in-flight messages and release deferred
        ones that are due, then ask to be called again at the next due time."""
        if due != self._scheduled or self.exiting:
            return  # superseded by an earlier request, or going away
        self._scheduled = None
        now = self.clock()
        requeued = 0
        in_flight = self.in_flight
        for record in self.deadlines.expired(now, in_flight):
            del in_flight[record[0]]
            self.timeout_count += 1
            owner = self.clients.get(record[OWNER])
            if owner is not None:
                owner.message_timed_out()
            self._enqueue(in_flight_message(record))
            requeued += 1
        for entry in self.deferrals.pop_due(now):
            if isinstance(entry, Message):
                self._enqueue(entry)
                requeued += 1
            else:
                requeued += self._queue_frames(entry.runs)
        if requeued:
            self._wake_waiting(requeued)
        self._schedule_next()

    def _schedule_next(self) -> None:
        candidates = [self.deadlines.next_due(self.in_flight), self.deferrals.next_due()]
        due = [candidate for candidate in candidates if candidate is not None]
        if due:
            self._reschedule(min(due))

    # -- consumers -----------------------------------------------------------------------------

    def add_client(self, consumer: Consumer) -> None:
        """Raises:
        ChannelError: the channel is exiting, or --max-channel-consumers is reached."""
        if self.exiting:
            raise ChannelError("exiting")
        if consumer.id in self.clients:
            return
        limit = self.max_channel_consumers
        if limit and len(self.clients) >= limit:
            raise ChannelError(
                f"consumers for {self.topic_name}:{self.name} exceeds limit of {limit}"
            )
        self.clients[consumer.id] = consumer

    def remove_client(self, consumer: Consumer) -> None:
        self.clients.pop(consumer.id, None)
        self.waiting.pop(consumer, None)

    # -- admin ---------------------------------------------------------------------------------

    def pause(self) -> None:
        self.paused = True

    def unpause(self) -> None:
        self.paused = False
        for consumer in list(self.clients.values()):
            consumer.wake()

    def retry_backlog(self) -> None:
        """Its disk queue failed a read (out of descriptors...): the consumers waiting for
        messages try again."""
        self._wake_waiting(len(self.waiting))

    def empty(self) -> None:
        """Drop queued, in-flight and deferred messages (HTTP /channel/empty)."""
        self.queue.clear()
        self.queued = 0
        self.backend.empty()
        self.in_flight.clear()
        self.deadlines.clear()
        self.deferrals.clear()
        for consumer in self.clients.values():
            consumer.in_flight_dropped()

    def persist(self, now_ns: int) -> None:
        """At shutdown, as nsqd does: queued, in-flight and deferred messages all go to the
        backend (in-flight ones keep their attempts); deferred ones also keep their due time."""
        backend = self.backend
        for entry in self.queue:
            if isinstance(entry, Run):
                backend.put_records(run_records(entry.block, entry.start, entry.end))
            else:
                backend.put(entry)
        for record in self.in_flight.values():
            backend.put(in_flight_message(record))
        self.deferrals.persist(backend, self.clock(), now_ns)
        self.queue.clear()
        self.queued = 0
        self.in_flight.clear()
        self.deadlines.clear()
        self.deferrals.clear()

    def close_clients(self) -> None:
        """Mark the channel exiting and end every subscriber's connection."""
        self.exiting = True
        for consumer in list(self.clients.values()):
            consumer.close()

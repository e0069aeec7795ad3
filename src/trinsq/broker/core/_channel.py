"""A channel: its queue, in-flight and deferred tables, and its consumers (nsqd/channel.go).

Pure model code, no trio: time comes from an injected clock, timers are requested through an
injected scheduler, and consumers are woken through :class:`Consumer`. Delivery is pull-based:
a consumer's pump calls :meth:`Channel.take` for as many messages as its RDY window allows,
in one call, and parks in :attr:`Channel.waiting` when there is nothing to take.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import attrs

from ._backend import Backend
from ._message import Message
from ._quantile import LatencyStream

__all__ = ["Channel", "ChannelError", "Consumer", "Scheduler"]


class ChannelError(Exception):
    """A FIN/REQ/TOUCH/SUB the channel refuses; the text is nsqd's."""


class Consumer(Protocol):
    """What a channel needs from a subscribed client."""

    @property
    def id(self) -> int: ...

    def wake(self) -> None:
        """Something the pump waits for changed: messages arrived, or a slot freed."""

    def message_timed_out(self) -> None:
        """One of this client's in-flight messages timed out and was requeued."""

    def close(self) -> None:
        """The channel is going away: end this client's connection."""

    def in_flight_dropped(self) -> None:
        """The channel was emptied: this client has nothing in flight any more."""


class Scheduler(Protocol):
    def schedule(self, channel: Channel, due: float) -> None:
        """Call ``channel.on_due(due)`` at monotonic time ``due``."""


# Rebuild a lazily-pruned heap once stale entries outnumber live ones by this factor.
_COMPACT_FACTOR = 2
_COMPACT_MIN = 1024
_sequence = itertools.count()


@attrs.define(eq=False)
class Channel:
    """A channel of a topic. Every message published to the topic gets a copy here.

    Attributes:
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
    queue: deque[Message] = attrs.field(factory=deque)
    in_flight: dict[bytes, Message] = attrs.field(factory=dict)
    deferred: dict[bytes, Message] = attrs.field(factory=dict)
    clients: dict[int, Consumer] = attrs.field(factory=dict)
    waiting: dict[Consumer, None] = attrs.field(factory=dict)
    message_count: int = 0
    requeue_count: int = 0
    timeout_count: int = 0
    _in_flight_heap: list[tuple[float, int, Message]] = attrs.field(factory=list)
    _deferred_heap: list[tuple[float, int, Message]] = attrs.field(factory=list)
    _deferred_due: dict[bytes, float] = attrs.field(factory=dict)
    _scheduled: float | None = None
    wall_clock_ns: Callable[[], int] = time.time_ns
    # End-to-end latency of finished messages, when --e2e-processing-latency-percentile is set.
    e2e: LatencyStream | None = None
    # randrange(100) as nsqd's rand.Int31n(100), injectable so tests can fix the draws.
    random_percent: Callable[[], int] = attrs.field(default=lambda: random.randrange(100))

    # -- stats -----------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Queued messages, memory plus backend; in-flight and deferred are not counted."""
        return len(self.queue) + self.backend.depth

    @property
    def backend_depth(self) -> int:
        return self.backend.depth

    # -- putting messages in -------------------------------------------------------------------

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
                if message.pin is not None or len(queue) < self.mem_queue_size or room_always:
                    queue.append(message)
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
            or len(self.queue) < self.mem_queue_size
            or (self.ephemeral and self.waiting)
        ):
            self.queue.append(message)
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

    def take(
        self, consumer: Consumer, limit: int, msg_timeout: float, sample_rate: int = 0
    ) -> list[Message]:
        """Hand up to ``limit`` queued messages to ``consumer``, marking them in flight.

        With a ``sample_rate`` of 1..99, each message is kept with that percent chance and
        otherwise discarded for the whole channel, as nsqd does for sampling consumers.
        """
        if self.paused or self.exiting:
            return []
        taken: list[Message] = []
        queue = self.queue
        backend = self.backend
        now = self.clock()
        deadline = now + msg_timeout
        owner = consumer.id
        in_flight = self.in_flight
        heap = self._in_flight_heap
        heappush = heapq.heappush
        # Backend messages come in batches of at most what is still wanted, so every one
        # popped is used here (taken, deferred, or sampled out).
        spilled: list[Message] = []
        spilled_at = 0
        while len(taken) < limit:
            if queue:
                message = queue.popleft()
            elif spilled_at < len(spilled):
                message = spilled[spilled_at]
                spilled_at += 1
                if message.defer_ms > 0:  # saved at shutdown while deferred, not yet due
                    self._defer(message, message.defer_ms / 1000)
                    continue
            else:
                spilled = backend.pop_many(limit - len(taken))
                spilled_at = 0
                if not spilled:
                    break
                continue
            if sample_rate and self.random_percent() > sample_rate:
                continue
            message.attempts += 1
            message.owner = owner
            message.delivered_at = now
            message.deadline = deadline
            in_flight[message.id] = message
            # Deadlines mostly grow, so each push stops after one comparison.
            heappush(heap, (deadline, next(_sequence), message))
            taken.append(message)
        if taken:
            self._maybe_compact()
            self._reschedule(deadline)
        return taken

    def _pop_in_flight(self, owner: int, message_id: bytes) -> Message:
        message = self.in_flight.get(message_id)
        if message is None:
            raise ChannelError("ID not in flight")
        if message.owner != owner:
            raise ChannelError("client does not own message")
        del self.in_flight[message_id]
        return message

    def finish(self, owner: int, message_id: bytes) -> Message:
        """FIN: the message is done.

        Raises:
            ChannelError: not in flight, or in flight for another client.
        """
        message = self._pop_in_flight(owner, message_id)
        self.backend.release(message)
        if self.e2e is not None:
            self.e2e.insert(self.wall_clock_ns() - message.timestamp)
        return message

    def requeue(self, owner: int, message_id: bytes, delay: float) -> None:
        """REQ: put the message back now (``delay`` 0) or after ``delay`` seconds.

        Raises:
            ChannelError: as for :meth:`finish`, or ``exiting`` when the channel is closing.
        """
        message = self._pop_in_flight(owner, message_id)
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
        message = self.in_flight.get(message_id)
        if message is None:
            raise ChannelError("ID not in flight")
        if message.owner != owner:
            raise ChannelError("client does not own message")
        deadline = min(self.clock() + msg_timeout, message.delivered_at + self.max_msg_timeout)
        message.deadline = deadline
        heapq.heappush(self._in_flight_heap, (deadline, next(_sequence), message))
        self._maybe_compact()
        self._reschedule(deadline)

    def _defer(self, message: Message, delay: float) -> None:
        if message.id in self.deferred:
            return  # nsqd refuses a second copy of an id ("ID already deferred")
        due = self.clock() + delay
        message.defer_ms = 0
        if message.pin is not None:
            self.backend.defer_until(message.id, self.wall_clock_ns() + round(delay * 1e9))
        self.deferred[message.id] = message
        self._deferred_due[message.id] = due
        heapq.heappush(self._deferred_heap, (due, next(_sequence), message))
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
        heap = self._in_flight_heap
        in_flight = self.in_flight
        while heap and heap[0][0] <= now:
            deadline, _, message = heapq.heappop(heap)
            if in_flight.get(message.id) is not message or message.deadline != deadline:
                continue  # finished, requeued or touched since
            del in_flight[message.id]
            self.timeout_count += 1
            owner = self.clients.get(message.owner)
            if owner is not None:
                owner.message_timed_out()
            self._enqueue(message)
            requeued += 1
        deferred_heap = self._deferred_heap
        while deferred_heap and deferred_heap[0][0] <= now:
            due_at, _, message = heapq.heappop(deferred_heap)
            if self._deferred_due.get(message.id) != due_at:
                continue
            del self.deferred[message.id]
            del self._deferred_due[message.id]
            self._enqueue(message)
            requeued += 1
        if requeued:
            self._wake_waiting(requeued)
        self._schedule_next()

    def _schedule_next(self) -> None:
        heap = self._in_flight_heap
        while heap and self.in_flight.get(heap[0][2].id) is not heap[0][2]:
            heapq.heappop(heap)
        candidates = []
        if heap:
            candidates.append(heap[0][0])
        if self._deferred_heap:
            candidates.append(self._deferred_heap[0][0])
        if candidates:
            self._reschedule(min(candidates))

    def _maybe_compact(self) -> None:
        heap = self._in_flight_heap
        if len(heap) > _COMPACT_MIN and len(heap) > _COMPACT_FACTOR * len(self.in_flight):
            self._in_flight_heap = [
                entry
                for entry in heap
                if self.in_flight.get(entry[2].id) is entry[2] and entry[2].deadline == entry[0]
            ]
            heapq.heapify(self._in_flight_heap)

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

    def empty(self) -> None:
        """Drop queued, in-flight and deferred messages (HTTP /channel/empty)."""
        self.queue.clear()
        self.backend.empty()
        self.in_flight.clear()
        self._in_flight_heap.clear()
        self.deferred.clear()
        self._deferred_due.clear()
        self._deferred_heap.clear()
        for consumer in self.clients.values():
            consumer.in_flight_dropped()

    def persist(self, now_ns: int) -> None:
        """At shutdown, as nsqd does: queued, in-flight and deferred messages all go to the
        backend (in-flight ones keep their attempts); deferred ones also keep their due time."""
        backend = self.backend
        now = self.clock()
        for message in self.queue:
            backend.put(message)
        for message in self.in_flight.values():
            backend.put(message)
        for message_id, message in self.deferred.items():
            due = self._deferred_due[message_id]
            backend.defer_until(message_id, now_ns + max(round((due - now) * 1e9), 0))
            backend.put(message)
        self.queue.clear()
        self.in_flight.clear()
        self._in_flight_heap.clear()
        self.deferred.clear()
        self._deferred_due.clear()
        self._deferred_heap.clear()

    def close_clients(self) -> None:
        """Mark the channel exiting and end every subscriber's connection."""
        self.exiting = True
        for consumer in list(self.clients.values()):
            consumer.close()

"""The broker's topic/channel graph: creation, deletion and ephemeral clean-up (nsqd/nsqd.go).

No trio here; the running server supplies the clock, the timer scheduler and the storage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs

from ...protocol import is_ephemeral
from ..config._options import BrokerOptions
from ._backend import Backend, DiscardBackend, MemoryPersistence, Persistence
from ._channel import Channel, Consumer, Scheduler
from ._message import MessageIdFactory
from ._quantile import LatencyStream
from ._snapshot import ChannelMetadata, TopicMetadata
from ._topic import Topic

__all__ = ["GraphEvents", "NoGraphEvents", "TopicGraph", "channel_queue_name"]


def channel_queue_name(topic: str, channel: str) -> str:
    """nsqd's disk queue name for a channel (nsqd/dqname.go, non-Windows)."""
    return f"{topic}:{channel}"


def _ignore_backlog(topic: Topic) -> None:
    pass


class GraphEvents(Protocol):
    """Told of every topic and channel that comes and goes, ephemeral ones included (what
    nsqd announces to nsqlookupd)."""

    def topic_created(self, topic: Topic) -> None: ...

    def topic_deleted(self, topic_name: str) -> None: ...

    def channel_created(self, topic_name: str, channel_name: str) -> None: ...

    def channel_deleted(self, topic_name: str, channel_name: str) -> None: ...


class NoGraphEvents:
    def topic_created(self, topic: Topic) -> None:
        pass

    def topic_deleted(self, topic_name: str) -> None:
        pass

    def channel_created(self, topic_name: str, channel_name: str) -> None:
        pass

    def channel_deleted(self, topic_name: str, channel_name: str) -> None:
        pass


@attrs.define(eq=False)
class TopicGraph:
    """All topics of one broker, and the rules that tie their lifetimes together.

    Args:
        options: the broker's options (queue sizes, limits, node id).
        clock: monotonic seconds, for timeouts and deferral.
        scheduler: runs channels' timers.
        persistence: where non-ephemeral overflow goes, and who hears of metadata changes.
        on_backlog: told about a topic holding more than one step can deliver at once.
    """

    options: BrokerOptions
    clock: Callable[[], float]
    scheduler: Scheduler
    persistence: Persistence = attrs.field(factory=MemoryPersistence)
    on_backlog: Callable[[Topic], None] = _ignore_backlog
    events: GraphEvents = attrs.field(factory=NoGraphEvents)
    topics: dict[str, Topic] = attrs.field(factory=dict)
    wall_clock_ns: Callable[[], int] = time.time_ns

    def _backend(self, ephemeral: bool, queue_name: str) -> Backend:
        return DiscardBackend() if ephemeral else self.persistence.backend(queue_name)

    def _new_channel(self, topic: Topic, name: str) -> Channel:
        options = self.options
        ephemeral = is_ephemeral(name)
        channel = Channel(
            topic_name=topic.name,
            name=name,
            ephemeral=ephemeral,
            mem_queue_size=options.mem_queue_size,
            max_msg_timeout=options.max_msg_timeout,
            max_channel_consumers=options.max_channel_consumers,
            backend=self._backend(ephemeral, channel_queue_name(topic.name, name)),
            clock=self.clock,
            scheduler=self.scheduler,
        )
        if options.e2e_processing_latency_percentiles:
            channel.e2e = LatencyStream(
                options.e2e_processing_latency_percentiles,
                options.e2e_processing_latency_window_time,
                self.clock,
            )
        if not (ephemeral or topic.ephemeral):
            self.persistence.metadata_changed(topic.name)
        self.events.channel_created(topic.name, name)
        return channel

    def get_topic(self, name: str) -> Topic:
        """Return the named topic, creating it if needed. ``name`` must already be valid."""
        topic = self.topics.get(name)
        if topic is None:
            ephemeral = is_ephemeral(name)
            topic = Topic(
                name=name,
                ephemeral=ephemeral,
                mem_queue_size=self.options.mem_queue_size,
                backend=self._backend(ephemeral, name),
                ids=MessageIdFactory(self.options.node_id, self.wall_clock_ns),
                new_channel=self._new_channel,
                on_backlog=self.on_backlog,
            )
            self.topics[name] = topic
            if not ephemeral:
                self.persistence.metadata_changed(name)
            self.events.topic_created(topic)
        return topic

    def publish(self, topic: Topic, bodies: Sequence[bytes], defer_ms: int = 0) -> bool:
        """Make messages of ``bodies`` and put them into ``topic``.

        Returns False when they could not be written to disk (disk full, I/O error): they
        were not accepted and the publisher must be told so.
        """
        now = self.wall_clock_ns()
        ids = topic.ids.next_ids(len(bodies))
        topic.publish(ids, bodies, now, defer_ms if defer_ms > 0 else 0)
        return self.persistence.commit(keep_failed=False)

    def subscribe(self, topic_name: str, channel_name: str, consumer: Consumer) -> Channel:
        """Add ``consumer`` to the channel, creating topic and channel as needed.

        Raises:
            ChannelError: the channel refused the client (exiting, consumer limit).
        """
        channel = self.get_topic(topic_name).get_channel(channel_name)
        self.persistence.commit(keep_failed=True)  # a first channel receives the backlog
        channel.add_client(consumer)
        return channel

    def unsubscribe(self, channel: Channel, consumer: Consumer) -> None:
        """Remove a departing client; an ephemeral channel goes with its last client, and an
        ephemeral topic with its last channel."""
        channel.remove_client(consumer)
        if channel.ephemeral and not channel.clients and not channel.exiting:
            self.delete_channel(channel.topic_name, channel.name)

    def delete_channel(self, topic_name: str, channel_name: str) -> bool:
        """Delete a channel; returns whether it existed."""
        topic = self.topics.get(topic_name)
        if topic is None:
            return False
        channel = topic.remove_channel(channel_name)
        if channel is None:
            return False
        self.persistence.delete(channel_queue_name(topic_name, channel_name))
        self.events.channel_deleted(topic_name, channel_name)
        if not (channel.ephemeral or topic.ephemeral):
            self.persistence.metadata_changed(topic_name)
        if topic.ephemeral and not topic.channels:
            self.delete_topic(topic_name)
        return True

    def delete_topic(self, name: str) -> bool:
        """Delete a topic and all of its channels; returns whether it existed."""
        topic = self.topics.pop(name, None)
        if topic is None:
            return False
        for channel in topic.close_all():
            channel.empty()
            self.persistence.delete(channel_queue_name(name, channel.name))
            self.events.channel_deleted(name, channel.name)
        topic.channels.clear()
        topic.empty()
        self.persistence.delete(name)
        self.events.topic_deleted(name)
        if not topic.ephemeral:
            self.persistence.metadata_changed(name)
        return True

    # -- nsqd.dat ------------------------------------------------------------------------------

    def metadata(self) -> list[TopicMetadata]:
        """What nsqd.dat records: durable topics and channels, and their paused flags."""
        return [
            metadata for metadata in map(self.topic_metadata, self.topics) if metadata is not None
        ]

    def topic_metadata(self, name: str) -> TopicMetadata | None:
        """One topic as nsqd.dat records it; None if it does not exist or is ephemeral."""
        topic = self.topics.get(name)
        if topic is None or topic.ephemeral:
            return None
        return TopicMetadata(
            topic.name,
            topic.paused,
            tuple(
                ChannelMetadata(channel.name, channel.paused)
                for channel in topic.channels.values()
                if not channel.ephemeral
            ),
        )

    def load(self, topics: list[TopicMetadata]) -> None:
        """Recreate topics and channels from nsqd.dat, as nsqd's LoadMetadata does: a topic
        starts delivering only once all its channels exist, so each gets the backlog."""
        for recorded in topics:
            topic = self.get_topic(recorded.name)
            topic.started = False
            if recorded.paused:
                topic.pause()
            for recorded_channel in recorded.channels:
                channel = topic.get_channel(recorded_channel.name)
                if recorded_channel.paused:
                    channel.pause()
            topic.start()
            self.persistence.commit(keep_failed=True)

    def persist(self) -> None:
        """At shutdown: everything in memory (queued, in flight, deferred) goes to the
        backends, channels first, then each topic's own queue (nsqd's Exit order)."""
        now_ns = self.wall_clock_ns()
        for topic in self.topics.values():
            for channel in topic.channels.values():
                channel.persist(now_ns)
            topic.persist(now_ns)
        self.persistence.commit(keep_failed=True)

    def close(self) -> None:
        """Shutting down: close every client of every channel."""
        for topic in self.topics.values():
            topic.close_all()

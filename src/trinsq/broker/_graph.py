"""The broker's topic/channel graph: creation, deletion and ephemeral clean-up (nsqd/nsqd.go).

No trio here; the running server supplies the clock and the timer scheduler.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from ..protocol import is_ephemeral
from ._backend import Backend, DiscardBackend, OverflowBackend
from ._channel import Channel, Consumer, Scheduler
from ._message import Message, MessageIdFactory
from ._options import BrokerOptions
from ._topic import Topic

__all__ = ["TopicGraph"]


@attrs.define(eq=False)
class TopicGraph:
    """All topics of one broker, and the rules that tie their lifetimes together.

    Args:
        options: the broker's options (queue sizes, limits, node id).
        clock: monotonic seconds, for timeouts and deferral.
        scheduler: runs channels' timers.
    """

    options: BrokerOptions
    clock: Callable[[], float]
    scheduler: Scheduler
    topics: dict[str, Topic] = attrs.field(factory=dict)
    wall_clock_ns: Callable[[], int] = time.time_ns

    def _backend(self, name: str) -> Backend:
        return DiscardBackend() if is_ephemeral(name) else OverflowBackend()

    def _new_channel(self, topic: Topic, name: str) -> Channel:
        options = self.options
        return Channel(
            topic_name=topic.name,
            name=name,
            ephemeral=is_ephemeral(name),
            mem_queue_size=options.mem_queue_size,
            max_msg_timeout=options.max_msg_timeout,
            max_channel_consumers=options.max_channel_consumers,
            backend=self._backend(name),
            clock=self.clock,
            scheduler=self.scheduler,
        )

    def get_topic(self, name: str) -> Topic:
        """Return the named topic, creating it if needed. ``name`` must already be valid."""
        topic = self.topics.get(name)
        if topic is None:
            topic = Topic(
                name=name,
                ephemeral=is_ephemeral(name),
                mem_queue_size=self.options.mem_queue_size,
                backend=self._backend(name),
                ids=MessageIdFactory(self.options.node_id, self.wall_clock_ns),
                new_channel=self._new_channel,
            )
            self.topics[name] = topic
        return topic

    def publish(self, topic: Topic, bodies: list[bytes], defer_ms: int = 0) -> None:
        """Make messages of ``bodies`` and put them into ``topic``."""
        now = self.wall_clock_ns()
        ids = topic.ids.next_ids(len(bodies))
        messages = [
            Message(message_id, body, now, 0, defer_ms)
            for message_id, body in zip(ids, bodies, strict=True)
        ]
        topic.put_messages(messages)

    def subscribe(self, topic_name: str, channel_name: str, consumer: Consumer) -> Channel:
        """Add ``consumer`` to the channel, creating topic and channel as needed.

        Raises:
            ChannelError: the channel refused the client (exiting, consumer limit).
        """
        channel = self.get_topic(topic_name).get_channel(channel_name)
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
        if topic is None or topic.remove_channel(channel_name) is None:
            return False
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
        topic.channels.clear()
        topic.empty()
        return True

    def close(self) -> None:
        """Shutting down: close every client of every channel."""
        for topic in self.topics.values():
            topic.close_all()

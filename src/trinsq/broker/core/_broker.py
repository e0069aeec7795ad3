"""The broker's operations: what TCP clients, the HTTP API and the lookup loop ask of it.

Each operation changes the graph and then commits what it put into disk queues and tells
nsqd.dat's writer and the registries (through the graph's persistence and events) by itself,
so an adapter only translates a request into a call and the call's outcome (or its
:class:`CoreError`) into its own answer. No trio and no I/O here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import attrs

from ...protocol import ClientSettings
from ._channel import Channel, ChannelError
from ._client import Client
from ._graph import TopicGraph
from ._stats import ClientStats, TopicStats, collect_stats
from ._topic import Topic

__all__ = [
    "PUBLISH_STEP",
    "BrokerCore",
    "ChannelNotFound",
    "CoreError",
    "Publication",
    "PublishFailed",
    "TopicExiting",
    "TopicNotFound",
]


# The message copies (one per channel) an adapter has a publication make at a time before
# letting others run: about a millisecond of work.
PUBLISH_STEP: Final = 1024


class CoreError(Exception):
    """An operation was refused; each adapter words it as nsqd does for its protocol."""


class TopicNotFound(CoreError):
    pass


class ChannelNotFound(CoreError):
    pass


class TopicExiting(CoreError):
    """The topic is being deleted or the broker is stopping."""


class PublishFailed(CoreError):
    """The messages could not be written to disk; ``str()`` is the write error."""


@attrs.define(eq=False)
class Publication:
    """A publish carried out in bounded steps, so that a large MPUB (up to a million messages)
    never holds the event loop: each :meth:`step` makes and puts the next messages.

    As in nsqd, whose PutMessages puts them one by one, consumers may get the first messages
    before the last are put, and a step that fails leaves the earlier ones published.
    """

    graph: TopicGraph
    topic: Topic
    bodies: Sequence[bytes]
    defer_ms: int = 0
    published: int = 0

    @property
    def finished(self) -> bool:
        return self.published >= len(self.bodies)

    def step(self, limit: int) -> int:
        """Put the next messages into the topic: as many as ``limit`` copies allow (each
        message makes one copy per channel, the work a step is made of), at least one.
        Returns the copies made.

        Raises:
            TopicExiting: the topic was deleted (or the broker is stopping) since the start.
            PublishFailed: the disk write failed; this step's messages were not accepted.
        """
        if self.topic.exiting:
            raise TopicExiting("exiting")
        fanout = len(self.topic.channels) or 1
        start = self.published
        batch = self.bodies[start : start + (limit // fanout or 1)]
        if batch and not self.graph.publish(self.topic, batch, self.defer_ms):
            raise PublishFailed(self.graph.persistence.write_error)
        self.published = start + len(batch)
        return len(batch) * fanout


@attrs.define(eq=False)
class BrokerCore:
    """The topic/channel graph, the connected clients, and the operations on them.

    Args:
        graph: the topics and channels; its persistence is the broker's storage.
        clients: connected clients by id (what /stats lists).
    """

    graph: TopicGraph
    clients: dict[int, Client] = attrs.field(factory=dict)
    _client_ids: Iterator[int] = attrs.field(factory=lambda: itertools.count(1), init=False)

    @property
    def topics(self) -> dict[str, Topic]:
        return self.graph.topics

    def _commit(self) -> None:
        self.graph.persistence.commit(keep_failed=True)

    # -- clients -------------------------------------------------------------------------------

    def connect(self, remote_address: str, connect_time: float, settings: ClientSettings) -> Client:
        """A new client (with the next id), listed from now on.

        Args:
            remote_address: ``host:port`` of the peer.
            connect_time: Unix seconds.
            settings: its settings until it IDENTIFYs.
        """
        client = Client(next(self._client_ids), remote_address, connect_time, settings)
        self.clients[client.id] = client
        return client

    def disconnect(self, client: Client) -> None:
        """The client is gone: its subscription ends (an ephemeral channel may go with it).
        Idempotent."""
        if self.clients.pop(client.id, None) is None:
            return
        channel = client.channel
        if channel is not None:
            self.graph.unsubscribe(channel, client)

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, topic_name: str, bodies: Sequence[bytes], defer_ms: int = 0) -> Topic:
        """Put messages made of ``bodies`` into the topic, creating it if needed.

        Raises:
            TopicExiting: the topic is being deleted.
            PublishFailed: the disk write failed; none of them was accepted.
        """
        publication = self.start_publish(topic_name, bodies, defer_ms)
        publication.step(len(bodies) * max(1, len(publication.topic.channels)))  # all at once
        return publication.topic

    def start_publish(
        self, topic_name: str, bodies: Sequence[bytes], defer_ms: int = 0
    ) -> Publication:
        """A publish of ``bodies`` to the topic (created if needed), to carry out in steps.

        Raises:
            TopicExiting: the topic is being deleted.
        """
        topic = self.graph.get_topic(topic_name)
        if topic.exiting:
            raise TopicExiting("exiting")
        return Publication(self.graph, topic, bodies, defer_ms)

    # -- topics --------------------------------------------------------------------------------

    def create_topic(self, name: str) -> Topic:
        return self.graph.get_topic(name)

    def topic(self, name: str) -> Topic:
        """Raises: TopicNotFound."""
        topic = self.graph.topics.get(name)
        if topic is None:
            raise TopicNotFound(name)
        return topic

    def delete_topic(self, name: str) -> None:
        """Raises: TopicNotFound."""
        if not self.graph.delete_topic(name):
            raise TopicNotFound(name)

    def empty_topic(self, name: str) -> None:
        """Raises: TopicNotFound."""
        self.topic(name).empty()

    def pause_topic(self, name: str, paused: bool) -> None:
        """Raises: TopicNotFound."""
        topic = self.topic(name)
        if paused:
            topic.pause()
        else:
            topic.unpause()
            self._commit()  # the backlog moved on to the channels
        self.graph.persistence.metadata_changed(name)

    # -- channels ------------------------------------------------------------------------------

    def create_channel(self, topic_name: str, channel_name: str) -> Channel:
        """Raises: TopicNotFound (channels are created only in existing topics here)."""
        channel = self.topic(topic_name).get_channel(channel_name)
        self._commit()  # a first channel receives the topic's backlog
        return channel

    def channel(self, topic_name: str, channel_name: str) -> Channel:
        """Raises: TopicNotFound, ChannelNotFound."""
        channel = self.topic(topic_name).channels.get(channel_name)
        if channel is None:
            raise ChannelNotFound(channel_name)
        return channel

    def delete_channel(self, topic_name: str, channel_name: str) -> None:
        """Raises: TopicNotFound, ChannelNotFound."""
        self.channel(topic_name, channel_name)
        self.graph.delete_channel(topic_name, channel_name)

    def empty_channel(self, topic_name: str, channel_name: str) -> None:
        """Raises: TopicNotFound, ChannelNotFound."""
        self.channel(topic_name, channel_name).empty()

    def pause_channel(self, topic_name: str, channel_name: str, paused: bool) -> None:
        """Raises: TopicNotFound, ChannelNotFound."""
        channel = self.channel(topic_name, channel_name)
        if paused:
            channel.pause()
        else:
            channel.unpause()
        self.graph.persistence.metadata_changed(topic_name)

    def add_channels(self, topic: Topic, names: Iterable[str]) -> None:
        """Create the channels the registries know for a new topic, then let it deliver
        (nsqd's GetTopic): skipped if the topic was deleted meanwhile."""
        if self.graph.topics.get(topic.name) is not topic:
            return
        for name in names:
            topic.get_channel(name)
        topic.start()
        self._commit()

    def move_backlog(self, topic: Topic) -> bool:
        """One step of moving what a topic holds (its disk backlog, once it has channels
        again) on to its channels; whether more steps are due."""
        more = topic.deliver_backlog() and self.graph.topics.get(topic.name) is topic
        self._commit()
        return more

    def retry_reads(self, queue_names: Iterable[str]) -> None:
        """The disk queues of these topics (``name``) and channels (``topic:channel``) failed
        a read (out of descriptors...): whoever waited on them tries again."""
        for queue_name in queue_names:
            topic_name, _, channel_name = queue_name.partition(":")
            topic = self.graph.topics.get(topic_name)
            if topic is None:
                continue
            if not channel_name:
                topic.retry_backlog()
            elif (channel := topic.channels.get(channel_name)) is not None:
                channel.retry_backlog()
        self._commit()  # what a topic moved on to its channels

    # -- consuming -----------------------------------------------------------------------------

    def subscribe(self, client: Client, topic_name: str, channel_name: str) -> Channel:
        """Make ``client`` a consumer of the channel, creating topic and channel as needed.

        Raises:
            ChannelError: the channel refused the client (exiting, consumer limit).
        """
        channel = self.graph.subscribe(topic_name, channel_name, client)
        client.channel = channel
        return channel

    def finish(self, client: Client, message_id: bytes) -> None:
        """Raises: ChannelError (not in flight for this client)."""
        for _, error in self.finish_many(client, [message_id]):
            raise error

    def finish_many(
        self, client: Client, message_ids: list[bytes]
    ) -> list[tuple[bytes, ChannelError]]:
        """FIN each of ``message_ids`` in order; the ones that failed, with why."""
        failed = self._channel_of(client).finish_many(client.id, message_ids)
        done = len(message_ids) - len(failed)
        client.finish_count += done
        client.in_flight_count -= done
        return failed

    def requeue(self, client: Client, message_id: bytes, delay: float) -> None:
        """Requeue now, or defer by ``delay`` seconds. Raises: ChannelError."""
        self._channel_of(client).requeue(client.id, message_id, delay)
        self._commit()  # a deferral may go through the disk queue
        client.requeue_count += 1
        client.in_flight_count -= 1

    def touch(self, client: Client, message_id: bytes) -> None:
        """Give the message a new msg_timeout. Raises: ChannelError."""
        timeout = client.settings.msg_timeout_ms / 1000
        self._channel_of(client).touch(client.id, message_id, timeout)

    def _channel_of(self, client: Client) -> Channel:
        channel = client.channel
        assert channel is not None, "the protocol allows FIN/REQ/TOUCH only after SUB"
        return channel

    # -- stats ---------------------------------------------------------------------------------

    def stats(
        self, *, topic: str = "", channel: str = "", include_clients: bool = True
    ) -> tuple[list[TopicStats] | None, list[ClientStats] | None]:
        """nsqd's GetStats snapshot: topics (filtered), and the clients that published."""
        return collect_stats(
            self.graph.topics,
            self.clients.values(),
            topic=topic,
            channel=channel,
            include_clients=include_clients,
        )

"""The broker core's operations on their own: no trio, no sockets, no disk.

Each operation must commit what it put into disk queues and report graph changes by itself,
so that every adapter (TCP, HTTP, lookup) gets the same behaviour from one call.
"""

from __future__ import annotations

import attrs
import pytest

from tests.broker.core.test_model import FakeClock, FakeScheduler
from trinsq.broker import BrokerOptions
from trinsq.broker.core._backend import Backend, OverflowBackend
from trinsq.broker.core._broker import (
    BrokerCore,
    ChannelNotFound,
    PublishFailed,
    TopicExiting,
    TopicNotFound,
)
from trinsq.broker.core._channel import ChannelError
from trinsq.broker.core._client import Client
from trinsq.broker.core._graph import TopicGraph
from trinsq.broker.core._topic import BACKLOG_STEP, Topic
from trinsq.protocol import ClientSettings


@attrs.define
class RecordingPersistence:
    """In-memory queues that count what the core asks of them; writes fail on demand."""

    commits: list[bool] = attrs.field(factory=list)  # keep_failed of each commit
    metadata_changes: int = 0
    deleted: list[str] = attrs.field(factory=list)
    failing: str = ""  # when set, commits fail with this error

    @property
    def write_error(self) -> str:
        return self.failing

    def backend(self, queue_name: str) -> Backend:
        return OverflowBackend()

    def delete(self, queue_name: str) -> None:
        self.deleted.append(queue_name)

    def metadata_changed(self, topic_name: str) -> None:
        self.metadata_changes += 1

    def commit(self, *, keep_failed: bool) -> bool:
        self.commits.append(keep_failed)
        return not self.failing


@attrs.define
class RecordingEvents:
    seen: list[str] = attrs.field(factory=list)

    def topic_created(self, topic: Topic) -> None:
        self.seen.append(f"+{topic.name}")

    def topic_deleted(self, topic_name: str) -> None:
        self.seen.append(f"-{topic_name}")

    def channel_created(self, topic_name: str, channel_name: str) -> None:
        self.seen.append(f"+{topic_name}:{channel_name}")

    def channel_deleted(self, topic_name: str, channel_name: str) -> None:
        self.seen.append(f"-{topic_name}:{channel_name}")


@attrs.define
class World:
    core: BrokerCore
    persistence: RecordingPersistence
    events: RecordingEvents
    clock: FakeClock


@pytest.fixture
def world() -> World:
    persistence = RecordingPersistence()
    events = RecordingEvents()
    clock = FakeClock()
    graph = TopicGraph(
        BrokerOptions(node_id=1),
        clock,
        FakeScheduler(),
        persistence=persistence,
        events=events,
        wall_clock_ns=lambda: 1_700_000_000_000_000_000,
    )
    return World(BrokerCore(graph), persistence, events, clock)


def connect(world: World, port: int = 40001) -> Client:
    return world.core.connect(f"127.0.0.1:{port}", 0.0, ClientSettings(msg_timeout_ms=60_000))


def test_connect_gives_each_client_the_next_id_and_lists_it(world: World) -> None:
    first, second = connect(world), connect(world, 40002)
    assert (first.id, second.id) == (1, 2)
    assert world.core.clients == {1: first, 2: second}
    assert second.remote_address == "127.0.0.1:40002"


def test_publish_creates_the_topic_and_commits(world: World) -> None:
    topic = world.core.publish("orders", [b"a", b"b"])
    assert topic is world.core.topics["orders"]
    assert topic.depth == 2  # held until a first channel exists, as nsqd does
    assert world.events.seen == ["+orders"]
    assert world.persistence.metadata_changes == 1
    assert world.persistence.commits == [False]  # a failed write must reach the publisher


def test_publish_refusals(world: World) -> None:
    world.core.create_topic("closing").exiting = True
    with pytest.raises(TopicExiting):
        world.core.publish("closing", [b"x"])
    world.persistence.failing = "no space left on device"
    with pytest.raises(PublishFailed, match=r"^no space left on device$"):
        world.core.publish("full", [b"x"])


def test_an_empty_publish_creates_the_topic_only(world: World) -> None:
    world.core.publish("quiet", [])
    assert world.core.topic("quiet").depth == 0
    assert world.persistence.commits == []


def test_a_publication_puts_its_messages_in_steps(world: World) -> None:
    world.core.create_topic("big")
    world.core.create_channel("big", "c")
    publication = world.core.start_publish("big", [b"%d" % i for i in range(10)])
    assert publication.step(4) == 4
    channel = world.core.channel("big", "c")
    queued = [message.body for message in channel.queued_messages()]
    assert queued == [b"0", b"1", b"2", b"3"]  # visible at once
    assert not publication.finished
    assert publication.step(4) == 4
    assert publication.step(4) == 2
    assert publication.finished
    assert [message.body for message in channel.queued_messages()] == [b"%d" % i for i in range(10)]
    assert world.persistence.commits[-3:] == [False, False, False]  # one commit a step


def test_a_publication_step_counts_one_copy_per_channel(world: World) -> None:
    world.core.create_topic("wide")
    for name in "abcd":
        world.core.create_channel("wide", name)
    publication = world.core.start_publish("wide", [b"x"] * 10)
    assert publication.step(8) == 8  # two messages, four copies each
    assert publication.published == 2
    assert publication.step(1) == 4  # at least one message
    assert publication.step(100) == 28
    assert publication.finished
    assert [world.core.channel("wide", name).depth for name in "abcd"] == [10] * 4


def test_a_publication_fails_midway_and_keeps_what_it_put(world: World) -> None:
    publication = world.core.start_publish("big", [b"x"] * 10)
    publication.step(4)
    world.persistence.failing = "no space left on device"
    with pytest.raises(PublishFailed, match=r"^no space left on device$"):
        publication.step(4)
    world.persistence.failing = ""
    publication = world.core.start_publish("gone", [b"x"] * 10)
    publication.step(4)
    world.core.delete_topic("gone")
    with pytest.raises(TopicExiting):
        publication.step(4)
    assert "gone" not in world.core.topics  # the rest did not make a new topic
    world.core.create_topic("closing").exiting = True
    with pytest.raises(TopicExiting):
        world.core.start_publish("closing", [b"x"])


def test_topic_operations_need_an_existing_topic(world: World) -> None:
    for operation in (
        lambda: world.core.topic("missing"),
        lambda: world.core.delete_topic("missing"),
        lambda: world.core.empty_topic("missing"),
        lambda: world.core.pause_topic("missing", True),
        lambda: world.core.create_channel("missing", "c"),
    ):
        with pytest.raises(TopicNotFound):
            operation()
    assert world.core.topics == {}  # none of them created anything


def test_pausing_a_topic_is_recorded_and_unpausing_releases_its_backlog(world: World) -> None:
    world.core.create_channel(world.core.create_topic("t").name, "c")
    changes = world.persistence.metadata_changes
    world.core.pause_topic("t", True)
    world.core.publish("t", [b"held"])
    channel = world.core.channel("t", "c")
    assert channel.depth == 0
    world.persistence.commits.clear()
    world.core.pause_topic("t", False)
    assert channel.depth == 1
    assert world.persistence.commits == [True]  # what moved on is written
    assert world.persistence.metadata_changes == changes + 2
    assert not world.core.topic("t").paused


def test_a_backlog_moves_in_steps_of_copies(world: World) -> None:
    topic = world.core.create_topic("held")
    topic.pause()
    world.core.publish("held", [b"%d" % i for i in range(BACKLOG_STEP)])
    for name in "ab":
        world.core.create_channel("held", name)
    backlogged: list[Topic] = []
    topic.on_backlog = backlogged.append
    topic.unpause()  # moves a first step: half the step's copies are messages with 2 channels
    assert [world.core.channel("held", name).depth for name in "ab"] == [BACKLOG_STEP // 2] * 2
    assert backlogged == [topic]  # more to move: the server's backlog job is told
    world.persistence.commits.clear()
    assert not world.core.move_backlog(topic)  # the second step moves the rest
    assert world.persistence.commits == [True]
    assert [world.core.channel("held", name).depth for name in "ab"] == [BACKLOG_STEP] * 2


def test_channel_operations(world: World) -> None:
    world.core.create_topic("t")
    world.persistence.commits.clear()
    world.core.create_channel("t", "c")
    assert world.persistence.commits == [True]  # a first channel receives the backlog
    with pytest.raises(ChannelNotFound):
        world.core.empty_channel("t", "other")
    with pytest.raises(ChannelNotFound):
        world.core.delete_channel("t", "other")
    changes = world.persistence.metadata_changes
    world.core.pause_channel("t", "c", True)
    assert world.core.channel("t", "c").paused
    world.core.pause_channel("t", "c", False)
    assert world.persistence.metadata_changes == changes + 2
    world.core.delete_channel("t", "c")
    assert world.persistence.deleted == ["t:c"]
    assert world.events.seen[-1] == "-t:c"
    world.core.delete_topic("t")
    assert world.events.seen[-1] == "-t"
    assert world.core.topics == {}


def test_consuming_updates_the_clients_counters(world: World) -> None:
    consumer = connect(world)
    channel = world.core.subscribe(consumer, "t", "c")
    assert consumer.channel is channel
    world.core.publish("t", [b"one", b"two", b"three"])
    taken = channel.take(consumer, 3, 60.0)
    consumer.in_flight_count = len(taken)
    first, second, third = (message.id for message in taken)
    world.core.finish(consumer, first)
    world.persistence.commits.clear()
    world.core.requeue(consumer, second, 0.0)
    assert world.persistence.commits == [True]
    world.core.touch(consumer, third)
    assert (consumer.finish_count, consumer.requeue_count, consumer.in_flight_count) == (1, 1, 1)
    with pytest.raises(ChannelError):
        world.core.finish(consumer, first)  # no longer in flight


def test_disconnect_ends_the_subscription_once(world: World) -> None:
    consumer = connect(world)
    world.core.subscribe(consumer, "t", "live#ephemeral")
    world.core.disconnect(consumer)
    world.core.disconnect(consumer)  # idempotent
    assert world.core.clients == {}
    assert world.core.topic("t").channels == {}  # the ephemeral channel went with it


def test_stats_snapshot(world: World) -> None:
    producer = connect(world, 40002)
    producer.published("t", 2)
    world.core.create_channel(world.core.publish("t", [b"a", b"b"]).name, "c")
    topics, producers = world.core.stats()
    assert topics is not None
    assert producers is not None
    assert [(t.topic_name, t.message_count) for t in topics] == [("t", 2)]
    assert [c.channel_name for c in topics[0].channels] == ["c"]
    assert [p.remote_address for p in producers] == [producer.remote_address]
    assert world.core.stats(topic="missing") == (None, None)

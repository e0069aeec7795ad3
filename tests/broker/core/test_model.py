"""The topic/channel graph on its own: no sockets, no trio, a hand-driven clock."""

from __future__ import annotations

import attrs
import pytest

from trinsq.broker import BrokerOptions
from trinsq.broker.core._channel import Channel, ChannelError
from trinsq.broker.core._frames import Run
from trinsq.broker.core._graph import TopicGraph
from trinsq.broker.core._inflight import DEADLINE
from trinsq.broker.core._message import MessageIdFactory


@attrs.define
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@attrs.define
class FakeScheduler:
    requests: list[tuple[Channel, float]] = attrs.field(factory=list)

    def schedule(self, channel: Channel, due: float) -> None:
        self.requests.append((channel, due))

    def fire_due(self, now: float) -> None:
        due_now = [(c, d) for c, d in self.requests if d <= now]
        self.requests = [(c, d) for c, d in self.requests if d > now]
        for channel, due in sorted(due_now, key=lambda item: item[1]):
            channel.on_due(due)


@attrs.define(eq=False)
class FakeConsumer:
    id: int
    wakes: int = 0
    timed_out: int = 0
    closed: bool = False
    dropped: bool = False

    def wake(self) -> None:
        self.wakes += 1

    def message_timed_out(self) -> None:
        self.timed_out += 1

    def close(self) -> None:
        self.closed = True

    def in_flight_dropped(self) -> None:
        self.dropped = True


def make_graph(clock: FakeClock, scheduler: FakeScheduler, **options: object) -> TopicGraph:
    return TopicGraph(
        BrokerOptions(node_id=1, **options),  # type: ignore[arg-type]
        clock,
        scheduler,
        wall_clock_ns=lambda: 1_700_000_000_000_000_000,
    )


def test_message_ids_are_nsqd_snowflakes() -> None:
    ticks = iter([5 << 20, 5 << 20, 6 << 20])
    factory = MessageIdFactory(3, lambda: next(ticks) + 1_288_834_974_288 * (1 << 20))
    first, second, third = factory.next_id(), factory.next_id(), factory.next_id()
    assert first == b"%016x" % ((5 << 22) | (3 << 12) | 0)
    assert second == b"%016x" % ((5 << 22) | (3 << 12) | 1)
    assert third == b"%016x" % ((6 << 22) | (3 << 12) | 0)


def test_message_ids_stay_unique_when_a_tick_runs_out() -> None:
    factory = MessageIdFactory(0, lambda: 2_000_000_000_000_000_000)
    ids = factory.next_ids(10_000)
    assert len(set(ids)) == 10_000
    assert ids == sorted(ids)


def test_message_ids_survive_a_clock_step_back() -> None:
    times = iter([2_000_000_000_000_000_000, 1_000_000_000_000_000_000])
    factory = MessageIdFactory(0, lambda: next(times))
    first, second = factory.next_id(), factory.next_id()
    assert second > first


def test_topic_holds_messages_until_its_first_channel(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    graph.publish(topic, [b"a", b"b"])
    assert topic.depth == 2
    first = topic.get_channel("first")
    assert (topic.depth, first.depth) == (0, 2)
    second = topic.get_channel("second")
    graph.publish(topic, [b"c"])
    assert (first.depth, second.depth) == (3, 1)


def test_channels_share_the_topics_frames(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    one, two = topic.get_channel("one"), topic.get_channel("two")
    graph.publish(topic, [b"x", b"y"])
    graph.publish(topic, [b"z"])
    first, second = one.queue[0], two.queue[0]
    assert isinstance(first, Run)
    assert isinstance(second, Run)
    assert (first is second, first.block is second.block) == (False, True)
    assert (len(one.queue), first.count) == (1, 3)  # consecutive publishes make one run
    consumer = FakeConsumer(1)
    one.add_client(consumer)
    assert [m.body for m in one.take(consumer, 2, 60)] == [b"x", b"y"]
    assert [m.body for m in two.queued_messages()] == [b"x", b"y", b"z"]
    assert [m.body for m in one.queued_messages()] == [b"z"]
    assert (one.depth, two.depth) == (1, 3)


def test_a_large_message_gets_a_block_of_its_own(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    bodies = [b"a" * 1000, b"b" * (1 << 20), b"c" * 1000, b"d" * 10]
    graph.publish(graph.topics["t"], bodies)
    assert len(channel.queue) == 3
    assert [m.body for m in channel.take(consumer, 10, 60)] == bodies
    assert channel.queued == 0


def test_take_marks_in_flight_and_times_out(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    consumer = FakeConsumer(7)
    channel = graph.subscribe("t", "c", consumer)
    graph.publish(topic, [b"a", b"b", b"c"])
    taken = channel.take(consumer, 2, msg_timeout=30)
    assert [m.body for m in taken] == [b"a", b"b"]
    assert [m.attempts for m in taken] == [1, 1]
    assert set(channel.in_flight) == {m.id for m in taken}
    assert scheduler.requests == [(channel, 1030.0)]
    channel.finish(7, taken[0].id)
    clock.now = 1030.0
    scheduler.fire_due(clock.now)
    assert channel.timeout_count == 1
    assert consumer.timed_out == 1
    assert [m.body for m in channel.queued_messages()] == [b"c", b"b"]
    again = channel.take(consumer, 5, msg_timeout=30)
    assert [(m.body, m.attempts) for m in again] == [(b"c", 1), (b"b", 2)]


def test_fin_errors_are_nsqds(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    owner, other = FakeConsumer(1), FakeConsumer(2)
    channel = graph.subscribe("t", "c", owner)
    graph.subscribe("t", "c", other)
    graph.publish(graph.topics["t"], [b"a"])
    (message,) = channel.take(owner, 1, 60)
    with pytest.raises(ChannelError, match=r"^client does not own message$"):
        channel.finish(2, message.id)
    with pytest.raises(ChannelError, match=r"^ID not in flight$"):
        channel.finish(1, b"0" * 16)
    channel.finish(1, message.id)
    with pytest.raises(ChannelError, match=r"^ID not in flight$"):
        channel.touch(1, message.id, 60)


def test_requeue_now_and_later(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    graph.publish(graph.topics["t"], [b"now", b"later"])
    now_message, later_message = channel.take(consumer, 2, 60)
    channel.requeue(1, now_message.id, 0)
    channel.requeue(1, later_message.id, 5)
    assert channel.requeue_count == 2
    assert [m.body for m in channel.queued_messages()] == [b"now"]
    assert list(channel.deferred) == [later_message.id]
    clock.now += 4.9
    scheduler.fire_due(clock.now)
    assert list(channel.deferred) == [later_message.id]
    clock.now += 0.1
    scheduler.fire_due(clock.now)
    assert channel.deferred == {}
    assert [m.body for m in channel.queued_messages()] == [b"now", b"later"]
    assert channel.timeout_count == 0


def test_touch_extends_but_never_past_max_msg_timeout(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler, max_msg_timeout=10.0)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    graph.publish(graph.topics["t"], [b"m"])
    (message,) = channel.take(consumer, 1, msg_timeout=4)
    deadlines = []
    for _ in range(3):  # touch at 3, 6 and 9 s after delivery
        clock.now += 3
        scheduler.fire_due(clock.now)
        channel.touch(1, message.id, 4)
        deadlines.append(channel.in_flight[message.id][DEADLINE])
    assert deadlines == [1007.0, 1010.0, 1010.0]  # capped at delivery + 10 s
    assert channel.timeout_count == 0
    clock.now = 1010.0
    scheduler.fire_due(clock.now)
    assert channel.timeout_count == 1
    assert message.id not in channel.in_flight


def test_deferred_publish_counts_and_waits(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    channel = topic.get_channel("c")
    graph.publish(topic, [b"d"], defer_ms=1500)
    assert (channel.message_count, channel.depth, len(channel.deferred)) == (1, 0, 1)
    clock.now += 1.5
    scheduler.fire_due(clock.now)
    assert (channel.depth, len(channel.deferred)) == (1, 0)


def test_overflow_goes_to_the_backend(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler, mem_queue_size=2)
    topic = graph.get_topic("t")
    channel = topic.get_channel("c")
    graph.publish(topic, [b"1", b"2", b"3", b"4"])
    assert (channel.depth, channel.backend_depth, channel.queued) == (4, 2, 2)
    consumer = FakeConsumer(1)
    channel.add_client(consumer)
    assert [m.body for m in channel.take(consumer, 10, 60)] == [b"1", b"2", b"3", b"4"]


def test_ephemeral_overflow_is_dropped(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler, mem_queue_size=2)
    topic = graph.get_topic("t")
    channel = topic.get_channel("c#ephemeral")
    graph.publish(topic, [b"1", b"2", b"3"])
    assert (channel.depth, channel.backend_depth) == (2, 0)


def test_ephemeral_channel_and_topic_go_with_their_last_user(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    first, second = FakeConsumer(1), FakeConsumer(2)
    channel = graph.subscribe("t#ephemeral", "c#ephemeral", first)
    graph.subscribe("t#ephemeral", "c#ephemeral", second)
    graph.unsubscribe(channel, first)
    assert "c#ephemeral" in graph.topics["t#ephemeral"].channels
    graph.unsubscribe(channel, second)
    assert "t#ephemeral" not in graph.topics


def test_durable_channel_on_ephemeral_topic_keeps_it(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t#ephemeral", "durable", consumer)
    graph.unsubscribe(channel, consumer)
    assert list(graph.topics["t#ephemeral"].channels) == ["durable"]


def test_pausing_holds_delivery(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    topic.pause()
    graph.publish(topic, [b"held"])
    assert (topic.depth, channel.depth) == (1, 0)
    topic.unpause()
    assert (topic.depth, channel.depth) == (0, 1)
    channel.pause()
    assert channel.take(consumer, 1, 60) == []
    wakes = consumer.wakes
    channel.unpause()
    assert consumer.wakes == wakes + 1
    assert [m.body for m in channel.take(consumer, 1, 60)] == [b"held"]


def test_max_channel_consumers(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler, max_channel_consumers=1)
    graph.subscribe("t", "c", FakeConsumer(1))
    with pytest.raises(ChannelError, match=r"^consumers for t:c exceeds limit of 1$"):
        graph.subscribe("t", "c", FakeConsumer(2))


def test_delete_channel_closes_its_clients(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    graph.subscribe("t", "c", consumer)
    assert graph.delete_channel("t", "c")
    assert consumer.closed
    assert graph.topics["t"].channels == {}
    assert not graph.delete_channel("t", "c")


def test_empty_channel_drops_everything(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    graph.publish(graph.topics["t"], [b"a", b"b"])
    graph.publish(graph.topics["t"], [b"d"], defer_ms=1000)
    channel.take(consumer, 1, 60)
    channel.empty()
    assert (channel.depth, len(channel.in_flight), len(channel.deferred)) == (0, 0, 0)
    assert consumer.dropped


def test_waiting_consumers_are_woken_one_per_message(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    consumers = [FakeConsumer(i) for i in range(1, 4)]
    channel = graph.subscribe("t", "c", consumers[0])
    for consumer in consumers:
        channel.add_client(consumer)
        channel.waiting[consumer] = None
    graph.publish(graph.topics["t"], [b"a", b"b"])
    assert [c.wakes for c in consumers] == [1, 1, 0]
    assert list(channel.waiting) == [consumers[2]]


def test_in_flight_heap_is_compacted(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    for _ in range(50):
        graph.publish(graph.topics["t"], [b"x"] * 100)
        for message in channel.take(consumer, 100, 60):
            channel.finish(1, message.id)
    assert channel.in_flight == {}
    assert channel.deadlines.records <= 2 * 1024 + 100


def test_sampling_keeps_a_share_and_drops_the_rest(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    draws = iter([10, 11, 0, 99, 10])  # nsqd keeps a message when the draw <= the rate
    channel.random_percent = lambda: next(draws)
    graph.publish(graph.topics["t"], [b"a", b"b", b"c", b"d", b"e"])
    taken = channel.take(consumer, 10, 60, sample_rate=10)
    assert [m.body for m in taken] == [b"a", b"c", b"e"]
    assert channel.depth == 0
    assert set(channel.in_flight) == {m.id for m in taken}


def test_deferred_publish_is_deferred_on_every_channel(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    channels = [topic.get_channel(name) for name in ("a", "b", "c")]
    graph.publish(topic, [b"later"], defer_ms=5000)
    assert [(len(c.deferred), c.depth) for c in channels] == [(1, 0), (1, 0), (1, 0)]


def test_message_ids_made_in_one_batch_are_those_made_one_at_a_time() -> None:
    batch = MessageIdFactory(7, lambda: 2_000_000_000_000_000_000).next_ids(10_000)
    single = MessageIdFactory(7, lambda: 2_000_000_000_000_000_000)
    assert batch == [single.next_id() for _ in range(10_000)]  # across two tick overflows

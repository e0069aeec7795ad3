"""Queued messages kept as frames in the topic's blocks: what a consumer, the backend and
the memory see."""

from __future__ import annotations

import gc
import weakref
from collections import deque

from tests.broker.core.test_model import FakeClock, FakeConsumer, FakeScheduler, make_graph
from trinsq.broker.core._backend import OverflowBackend
from trinsq.broker.core._frames import FrameRuns, FrameWriter, Run, decode_frames, run_records
from trinsq.broker.core._inflight import DEADLINE
from trinsq.broker.core._message import decode_record, encode_record
from trinsq.protocol import encode_message

WALL = 1_700_000_000_000_000_000


def test_a_take_sends_nsqds_frames_in_one_piece(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    graph.publish(graph.topics["t"], [b"one", b"two", b"three"])
    out = bytearray(b"before")
    assert channel.take_into(consumer, 2, 60, out) == 2
    ids = list(channel.in_flight)
    assert out == b"before" + b"".join(
        encode_message(WALL, 1, message_id, body)
        for message_id, body in zip(ids, [b"one", b"two"], strict=True)
    )
    assert (channel.queued, channel.depth, channel.queue[0].count) == (1, 1, 1)  # type: ignore[union-attr]


def test_overflow_splits_a_run_and_writes_records_of_undelivered_messages(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler, mem_queue_size=3)
    topic = graph.get_topic("t")
    channel = topic.get_channel("c")
    graph.publish(topic, [b"1", b"2"])
    graph.publish(topic, [b"3", b"4", b"5"])
    assert (channel.queued, channel.backend_depth) == (3, 2)
    backend = channel.backend
    assert isinstance(backend, OverflowBackend)
    spilled = backend.pop_many(10)
    assert [(m.body, m.attempts, m.timestamp) for m in spilled] == [
        (b"4", 0, WALL),
        (b"5", 0, WALL),
    ]
    assert [m.body for m in channel.queued_messages()] == [b"1", b"2", b"3"]


def test_a_run_record_is_the_message_record(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    channel = graph.get_topic("t").get_channel("c")
    graph.publish(graph.topics["t"], [b"body", b""])
    run = channel.queue[0]
    assert isinstance(run, Run)
    records = run_records(run.block, run.start, run.end)
    messages = [decode_record(record) for record in records]
    assert [(m.body, m.attempts) for m in messages] == [(b"body", 0), (b"", 0)]
    assert records == [encode_record(message) for message in messages]


def test_sampling_drops_frames_for_the_channel(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    draws = iter([50, 0, 99, 1])
    channel.random_percent = lambda: next(draws)
    graph.publish(graph.topics["t"], [b"a", b"b", b"c", b"d", b"e"])
    taken = channel.take(consumer, 2, 60, sample_rate=10)
    assert [m.body for m in taken] == [b"b", b"d"]
    assert (channel.queued, set(channel.in_flight)) == (1, {m.id for m in taken})


def test_a_takes_messages_time_out_together_and_a_touch_apart(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    graph.publish(graph.topics["t"], [b"a", b"b", b"c"])
    _, b, c = channel.take(consumer, 3, msg_timeout=10)
    clock.now += 5
    channel.touch(1, b.id, 10)
    assert channel.in_flight[b.id][DEADLINE] == 1015.0
    channel.finish(1, c.id)
    clock.now = 1010.0
    scheduler.fire_due(clock.now)
    assert (channel.timeout_count, list(channel.in_flight)) == (1, [b.id])
    assert [(m.body, m.attempts) for m in channel.queued_messages()] == [(b"a", 1)]
    clock.now = 1015.0
    scheduler.fire_due(clock.now)
    assert channel.timeout_count == 2
    again = channel.take(consumer, 5, 60)
    assert [(m.body, m.attempts, m.timestamp) for m in again] == [(b"a", 2, WALL), (b"b", 2, WALL)]


def test_requeue_of_a_frame_keeps_its_attempt(clock: FakeClock, scheduler: FakeScheduler) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    graph.publish(graph.topics["t"], [b"a", b"b"])
    first, _ = channel.take(consumer, 2, 60)
    channel.requeue(1, first.id, 0)
    graph.publish(graph.topics["t"], [b"c"])
    assert [(m.body, m.attempts) for m in channel.take(consumer, 5, 60)] == [(b"a", 2), (b"c", 1)]


def test_persist_writes_queued_frames_and_in_flight_ones(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    graph.publish(graph.topics["t"], [b"a", b"b", b"c"])
    channel.take(consumer, 1, 60)
    graph.persist()
    assert (channel.queued, channel.in_flight, channel.backend_depth) == (0, {}, 3)
    saved = channel.backend.pop_many(10)
    assert [(m.body, m.attempts) for m in saved] == [(b"b", 0), (b"c", 0), (b"a", 1)]


def test_blocks_go_once_no_channel_holds_their_frames(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    consumer = FakeConsumer(1)
    topic = graph.get_topic("t")
    one = graph.subscribe("t", "one", consumer)
    two = topic.get_channel("two")
    graph.publish(topic, [b"x" * 1000] * 2000)  # two blocks
    blocks = {entry.block for entry in one.queue if isinstance(entry, Run)}
    refs = [weakref.ref(block) for block in blocks]
    del blocks
    assert len(refs) == 2
    one.take(consumer, 2000, 60)
    one.empty()  # in flight too
    graph.delete_channel("t", "two")
    assert two.queued == 0
    gc.collect()
    # The topic keeps writing into its last block; the full one is gone.
    assert sorted(ref() is None for ref in refs) == [False, True]


def test_e2e_latency_is_measured_from_the_frames_timestamp(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler, e2e_processing_latency_percentiles=[1.0])
    consumer = FakeConsumer(1)
    channel = graph.subscribe("t", "c", consumer)
    graph.publish(graph.topics["t"], [b"a"])
    channel.wall_clock_ns = lambda: WALL + 5_000_000
    (message,) = channel.take(consumer, 1, 60)
    assert channel.finish_many(1, [message.id, message.id])[0][0] == message.id
    assert channel.e2e is not None
    assert channel.e2e.summary().count == 1


def test_held_messages_become_frames_when_the_topic_can_deliver(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler, mem_queue_size=2)
    topic = graph.get_topic("t")
    graph.publish(topic, [b"1", b"2", b"3"])  # held: two in memory, one as a record
    assert (topic.queued, topic.backend_depth) == (2, 1)
    channel = topic.get_channel("c")
    channel.mem_queue_size = 10
    while topic.deliver_backlog():
        pass
    assert all(isinstance(entry, Run) for entry in channel.queue)
    consumer = FakeConsumer(1)
    channel.add_client(consumer)
    out = bytearray()
    channel.take_into(consumer, 10, 60, out)
    assert [(m.body, m.attempts, m.timestamp) for m in decode_frames(out)] == [
        (b"1", 1, WALL),
        (b"2", 1, WALL),
        (b"3", 1, WALL),
    ]


def test_a_topic_holds_its_backlog_as_frames_its_channels_then_share(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    graph.publish(topic, [b"1", b"2"])
    graph.publish(topic, [b"3"])
    (held,) = topic.queue  # consecutive publishes make one run, no message object each
    assert isinstance(held, Run)
    assert (held.count, topic.queued, topic.depth) == (3, 3, 3)
    one = topic.get_channel("one")  # takes the backlog over as it is
    (run,) = one.queue
    assert isinstance(run, Run)
    assert run.block is held.block
    assert (one.queued, topic.queued, topic.queue) == (3, 0, deque())


def test_a_held_run_is_handed_over_in_steps_of_the_copies_allowed(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    topic.pause()
    one, two = topic.get_channel("one"), topic.get_channel("two")
    graph.publish(topic, [b"%d" % i for i in range(10)])
    topic.paused = False
    assert topic.deliver_backlog(copies=6)  # 3 messages for each of 2 channels; more left
    assert (one.queued, two.queued, topic.queued) == (3, 3, 7)
    while topic.deliver_backlog(copies=6):
        pass
    consumer = FakeConsumer(1)
    one.add_client(consumer)
    bodies = [m.body for m in one.take(consumer, 20, 60)]
    assert bodies == [b"%d" % i for i in range(10)]
    assert (two.queued, topic.queued) == (10, 0)


def test_a_held_run_is_saved_at_shutdown_as_never_delivered_records(
    clock: FakeClock, scheduler: FakeScheduler
) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    graph.publish(topic, [b"a", b"b"])
    graph.persist()
    assert (topic.queued, topic.queue, topic.backend_depth) == (0, deque(), 2)
    saved = topic.backend.pop_many(10)
    assert [(m.body, m.attempts, m.timestamp) for m in saved] == [(b"a", 0, WALL), (b"b", 0, WALL)]


def test_single_writes_make_the_frames_one_write_of_all_makes() -> None:
    """A PUB's one-message write (its own fast path) lays out the frames a write of many
    does, across a block boundary too."""
    bodies = [bytes([n % 251]) * (1000 + n) for n in range(1500)]  # 2.7 MB: three blocks
    ids = [b"%016x" % n for n in range(len(bodies))]
    one_by_one, all_at_once = FrameWriter(), FrameWriter()
    singles = [
        run for i, body in enumerate(bodies) for run in one_by_one.write([ids[i]], [body], 7)
    ]
    batch = all_at_once.write(ids, bodies, 7)

    def frames(runs: FrameRuns) -> bytes:
        return b"".join(bytes(block[start:end]) for block, start, end, _ in runs)

    assert frames(singles) == frames(batch)
    assert len({id(block) for block, *_ in singles}) == len(batch) == 3
    decoded = decode_frames(frames(singles))
    assert [m.body for m in decoded] == bodies
    assert [m.id for m in decoded] == ids
    assert {m.timestamp for m in decoded} == {7}

"""What one large publish costs in Python objects, and that deleting its topic or channel
gives everything back (issue 13.2).

Queued and deferred messages live as frames in the topic's mmap blocks, which tracemalloc does
not see; what it sees is the per-message bookkeeping, which must stay a few bytes a message
(Go nsqd's whole cost is ~100-250 bytes a message, and a Python object alone is 50-150).
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import Callable, Iterator

import pytest

from tests.broker.core.test_model import FakeClock, FakeConsumer, FakeScheduler, make_graph
from trinsq.broker._timers import DeadlineScheduler
from trinsq.broker.core._broker import PUBLISH_STEP, BrokerCore, Publication
from trinsq.broker.core._deferred import DeferredFrames
from trinsq.broker.core._frames import Block, Run
from trinsq.broker.core._graph import TopicGraph
from trinsq.broker.core._topic import Topic

MESSAGES = 30_000
HOUR_MS = 3_600_000
# Traced bytes a held message may cost: today's frames cost about 2 (a Run per block, a heap
# entry per publish step); a Message object per message would cost 100-400.
BYTES_PER_MESSAGE = 24


def publish_in_steps(graph: TopicGraph, topic: Topic, bodies: list[bytes], defer_ms: int) -> None:
    """As the TCP and HTTP adapters carry out an MPUB: a publication in steps."""
    publication = Publication(graph, topic, bodies, defer_ms)
    while not publication.finished:
        publication.step(PUBLISH_STEP)


@pytest.fixture
def traced() -> Iterator[None]:
    gc.collect()
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def traced_growth(graph: TopicGraph, topic: Topic, defer_ms: int) -> float:
    """Traced bytes held per message after publishing MESSAGES distinct bodies."""
    bodies = [b"%d" % number for number in range(MESSAGES)]  # made before tracing counts
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    publish_in_steps(graph, topic, bodies, defer_ms)
    gc.collect()
    return (tracemalloc.get_traced_memory()[0] - before) / MESSAGES


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize("channels", [1, 3])
def test_a_deferred_mpub_costs_a_few_bytes_a_message(
    clock: FakeClock, scheduler: FakeScheduler, channels: int
) -> None:
    graph = make_graph(clock, scheduler)
    topic = graph.get_topic("t")
    for number in range(channels):
        topic.get_channel(f"c{number}")
    per_message = traced_growth(graph, topic, HOUR_MS)
    assert [len(channel.deferred) for channel in topic.channels.values()] == [MESSAGES] * channels
    assert per_message < BYTES_PER_MESSAGE * channels


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize("defer_ms", [0, HOUR_MS])
def test_messages_a_topic_holds_without_channels_cost_a_few_bytes_a_message(
    clock: FakeClock, scheduler: FakeScheduler, defer_ms: int
) -> None:
    graph = make_graph(clock, scheduler, mem_queue_size=10 * MESSAGES)
    topic = graph.get_topic("t")
    per_message = traced_growth(graph, topic, defer_ms)
    assert topic.depth == MESSAGES
    assert per_message < BYTES_PER_MESSAGE


def blocks_of(graph: TopicGraph) -> list[Block]:
    """Every block a topic holds frames in: queued, held by the topic, in flight, deferred."""
    blocks: dict[int, Block] = {}
    for topic in graph.topics.values():
        runs: list[Run] = list(topic.queue)
        for channel in topic.channels.values():
            runs += [entry for entry in channel.queue if isinstance(entry, Run)]
            for record in channel.in_flight.values():
                if isinstance(record[4], Block):
                    blocks[id(record[4])] = record[4]
            for _, deferred in channel.deferrals.waiting():
                if isinstance(deferred, DeferredFrames):
                    blocks.update((id(run[0]), run[0]) for run in deferred.runs)
        blocks.update((id(run.block), run.block) for run in runs)
    return list(blocks.values())


def fill(graph: TopicGraph, consumer: FakeConsumer) -> None:
    """A topic ``t`` with one channel holding queued, in-flight and deferred messages (from a
    publish, and requeued with a delay), with timers pending in the scheduler; and a topic
    ``held`` without channels holding plain and deferred messages."""
    core = BrokerCore(graph)
    channel = graph.subscribe("t", "c", consumer)
    topic = graph.topics["t"]
    bodies = [b"%d" % number for number in range(MESSAGES)]
    publish_in_steps(graph, topic, bodies, 0)
    publish_in_steps(graph, topic, bodies, HOUR_MS)
    taken = channel.take(consumer, 100, 60)
    channel.requeue(consumer.id, taken[0].id, 30)
    held = core.create_topic("held")
    publish_in_steps(graph, held, bodies, 0)
    publish_in_steps(graph, held, bodies, HOUR_MS)


def test_deleting_topics_drops_every_reference_timers_included(clock: FakeClock) -> None:
    timers = DeadlineScheduler()
    graph = make_graph(clock, timers, mem_queue_size=10 * MESSAGES)  # type: ignore[arg-type]
    consumer = FakeConsumer(1)
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        fill(graph, consumer)
        topic, channel = graph.topics["t"], graph.topics["t"].channels["c"]
        held = graph.topics["held"]
        refs: list[Callable[[], object]] = [weakref.ref(block) for block in blocks_of(graph)]
        refs += [weakref.ref(topic), weakref.ref(channel), weakref.ref(held)]
        assert len(refs) > 6
        del topic, channel, held
        graph.delete_topic("t")
        graph.delete_topic("held")
        gc.collect()
        assert [ref for ref in refs if ref() is not None] == []
        left = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert left < 64 * 1024


def test_deleting_a_channel_drops_every_reference_timers_included(clock: FakeClock) -> None:
    timers = DeadlineScheduler()
    graph = make_graph(clock, timers)  # type: ignore[arg-type]
    consumer = FakeConsumer(1)
    fill(graph, consumer)
    graph.delete_topic("held")
    channel = graph.topics["t"].channels["c"]
    refs = [weakref.ref(channel)] + [weakref.ref(block) for block in blocks_of(graph)]
    del channel
    graph.delete_channel("t", "c")
    gc.collect()
    # The topic keeps writing into its last block; every other block and the channel go.
    assert [ref for ref in refs if ref() is not None] == [
        ref for ref in refs if ref() is graph.topics["t"].frames._block
    ]


def test_timers_of_deleted_channels_are_swept_out(clock: FakeClock) -> None:
    timers = DeadlineScheduler()
    graph = make_graph(clock, timers)  # type: ignore[arg-type]
    topic = graph.get_topic("t")
    for number in range(3000):  # each channel asks for a timer, then goes
        topic.get_channel(f"c{number}")
        graph.publish(topic, [b"later"], HOUR_MS)
        graph.delete_channel("t", f"c{number}")
    topic.get_channel("kept")
    graph.publish(topic, [b"later"], HOUR_MS)
    assert len(timers) < 2100

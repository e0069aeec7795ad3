"""Due times of deferred messages on disk: kept compact in memory, written as before."""

from __future__ import annotations

import gc
import json
import random
import tracemalloc
from pathlib import Path

import pytest

from tests.broker.core.test_memory import HOUR_MS, publish_in_steps
from tests.broker.core.test_model import FakeClock, FakeScheduler
from trinsq.broker.config._options import BrokerOptions
from trinsq.broker.core._graph import TopicGraph
from trinsq.broker.storage._duetimes import DueTimes
from trinsq.broker.storage._storage import Storage, _read_due, _write_due

WALL = 1_700_000_000_000_000_000
MESSAGES = 30_000


def nsqd_ids(first: int, count: int) -> list[bytes]:
    return [b"%016x" % number for number in range(first, first + count)]


def test_due_times_answer_as_a_dict_would() -> None:
    draw = random.Random(7)
    model: dict[bytes, int] = {}
    due = DueTimes()
    batches = [nsqd_ids(start, 50) for start in range(0, 5000, 100)]
    for index, ids in enumerate(batches):
        due.add_many(ids, 7 + index)
        model.update(dict.fromkeys(ids, 7 + index))
    odd = [b"not-an-nsqd-id!!", b"%016X" % 0xABC, b"short"]
    for message_id in odd:
        due[message_id] = 99
        model[message_id] = 99
    due.add_many([b"b", b"a"], 5)  # out of order: kept one by one
    model.update({b"b": 5, b"a": 5})
    keys = list(model) + nsqd_ids(100_000, 5)
    for _ in range(3000):
        message_id = draw.choice(keys)
        action = draw.randrange(3)
        if action == 0:
            assert due.pop(message_id) == model.pop(message_id, None)
        elif action == 1:
            value = draw.randrange(1000)
            due[message_id] = value
            model[message_id] = value
        else:
            assert due.get(message_id) == model.get(message_id)
        assert len(due) == len(model)
    assert dict(due.items()) == model
    assert dict(DueTimes(model).items()) == model
    snapshot = due.snapshot()
    due.clear()
    assert (bool(due), dict(snapshot.items())) == (False, model)


def test_the_side_file_is_what_json_dump_wrote(tmp_path: Path) -> None:
    due = DueTimes()
    due.add_many(nsqd_ids(1 << 40, 5000), WALL)
    due[b"0123456789abcdef"] = WALL + 1
    path = str(tmp_path / "t.diskqueue.deferred.json")
    _write_due(path, due)
    expected = {"due": {key.decode(): value for key, value in due.items()}}
    assert Path(path).read_text() == json.dumps(expected)
    assert _read_due(path) == dict(due.items())


@pytest.mark.parametrize("channels", [0, 1])
async def test_a_deferred_publish_to_disk_keeps_its_due_times_in_a_few_bytes_a_message(
    tmp_path: Path, channels: int
) -> None:
    """A topic without channels spills what its memory queue has no room for; a crash-safe
    channel writes every deferred message to disk. Each message's due time goes with it."""
    options = BrokerOptions(node_id=1, data_path=str(tmp_path))
    if channels:
        options.sync_every = 1  # crash-safe
    store = Storage(options)
    graph = TopicGraph(options, FakeClock(), FakeScheduler(), persistence=store)
    topic = graph.get_topic("t")
    for number in range(channels):
        topic.get_channel(f"c{number}")
    bodies = [b"%d" % number for number in range(MESSAGES)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        publish_in_steps(graph, topic, bodies, HOUR_MS)
        gc.collect()
        per_message = (tracemalloc.get_traced_memory()[0] - before) / MESSAGES
    finally:
        tracemalloc.stop()
    name = "t:c0" if channels else "t"
    assert len(store.backends[name].due) >= MESSAGES - options.mem_queue_size
    assert per_message < 24
    await store.sync()
    saved = _read_due(str(tmp_path / f"{name}.diskqueue.deferred.json"))
    assert saved == dict(store.backends[name].due.items())


async def test_deferred_messages_a_topic_spilled_stay_compact_once_a_channel_takes_them(
    tmp_path: Path,
) -> None:
    options = BrokerOptions(node_id=1, data_path=str(tmp_path), mem_queue_size=100)
    store = Storage(options)
    graph = TopicGraph(options, FakeClock(), FakeScheduler(), persistence=store)
    topic = graph.get_topic("t")
    publish_in_steps(graph, topic, [b"%d" % number for number in range(MESSAGES)], HOUR_MS)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        channel = topic.get_channel("c")
        while topic.deliver_backlog():
            store.commit(keep_failed=True)
        gc.collect()
        per_message = (tracemalloc.get_traced_memory()[0] - before) / MESSAGES
    finally:
        tracemalloc.stop()
    assert (len(channel.deferred), channel.depth) == (MESSAGES, 0)
    assert per_message < 24

"""nsqd.dat rewrites: a topic at a time, coalesced, and still complete at exit and in
crash-safe mode."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import attrs
import pytest

from tests.broker.core.test_model import FakeClock, FakeScheduler
from tests.support import RawClient, body, run_broker_process
from trinsq import open_broker
from trinsq.broker import BrokerOptions
from trinsq.broker.core._backend import Backend, OverflowBackend
from trinsq.broker.core._broker import BrokerCore
from trinsq.broker.core._graph import TopicGraph
from trinsq.broker.core._snapshot import TopicMetadata
from trinsq.broker.storage._metadata import MetadataFile, encode_metadata


@attrs.define
class MetadataPersistence:
    """Graph persistence that keeps nsqd.dat's contents in a MetadataFile."""

    file: MetadataFile = attrs.field(factory=lambda: MetadataFile("1.3.0"))
    write_error: str = ""

    def backend(self, queue_name: str) -> Backend:
        return OverflowBackend()

    def delete(self, queue_name: str) -> None:
        pass

    def metadata_changed(self, topic_name: str) -> None:
        self.file.topic_changed(topic_name)

    def commit(self, *, keep_failed: bool) -> bool:
        return True


@pytest.fixture
def core() -> BrokerCore:
    graph = TopicGraph(
        BrokerOptions(node_id=1), FakeClock(), FakeScheduler(), persistence=MetadataPersistence()
    )
    return BrokerCore(graph)


def file_of(core: BrokerCore) -> MetadataFile:
    persistence = core.graph.persistence
    assert isinstance(persistence, MetadataPersistence)
    return persistence.file


def full(core: BrokerCore) -> bytes:
    return encode_metadata(core.graph.metadata(), "1.3.0")


def test_incremental_encoding_is_the_full_encoding(core: BrokerCore) -> None:
    metadata = file_of(core)
    assert metadata.encode(core.graph.topic_metadata) == full(core)  # "topics":null
    for name in ["b", "a", "gone", "e#ephemeral"]:
        core.create_topic(name)
    core.create_channel("a", "c1")
    core.create_channel("a", "t#ephemeral")
    core.create_channel("e#ephemeral", "c")
    assert metadata.encode(core.graph.topic_metadata) == full(core)
    core.pause_channel("a", "c1", True)
    core.pause_topic("b", True)
    core.create_channel("b", "c2")
    core.delete_topic("gone")
    core.delete_channel("a", "t#ephemeral")
    assert metadata.encode(core.graph.topic_metadata) == full(core)
    core.delete_channel("a", "c1")
    core.delete_topic("b")
    core.delete_topic("a")
    assert metadata.encode(core.graph.topic_metadata) == full(core)
    assert json.loads(full(core)) == {"topics": None, "version": "1.3.0"}


def test_only_changed_topics_are_reencoded(core: BrokerCore) -> None:
    metadata = file_of(core)
    for t in range(100):
        core.create_topic(f"t{t}")
        for c in range(10):
            core.create_channel(f"t{t}", f"c{c}")
    asked: list[str] = []

    def describe(name: str) -> TopicMetadata | None:
        asked.append(name)
        return core.graph.topic_metadata(name)

    metadata.encode(describe)
    assert len(asked) == 100
    asked.clear()
    assert not metadata.pending
    core.create_channel("t7", "new")
    core.pause_channel("t7", "c1", True)
    core.create_topic("t100")
    core.create_topic("x#ephemeral")  # never in nsqd.dat, never described
    assert metadata.pending
    assert metadata.encode(describe) == full(core)
    assert asked == ["t7", "t100"]


async def test_creates_just_before_shutdown_are_in_nsqd_dat(tmp_path: Path) -> None:
    async with open_broker(data_path=str(tmp_path)) as broker:
        for t in range(200):
            broker.server.core.create_topic(f"t{t}")
            for c in range(3):
                broker.server.core.create_channel(f"t{t}", f"c{c}")
        # changed on the model, not through the core: the exit's full rewrite keeps it
        broker.topics["t5"].channels["c1"].pause()
    recorded = json.loads((tmp_path / "nsqd.dat").read_bytes())
    topics = {topic["name"]: topic for topic in recorded["topics"]}
    assert sorted(topics) == sorted(f"t{t}" for t in range(200))
    assert all([c["name"] for c in t["channels"]] == ["c0", "c1", "c2"] for t in topics.values())
    assert topics["t5"]["channels"][1] == {"name": "c1", "paused": True}


async def test_crash_safe_publish_to_new_topics_is_in_nsqd_dat_at_its_ok(
    tmp_path: Path,
) -> None:
    # Each OK in crash-safe mode waits for the nsqd.dat naming its topic, also when the
    # storage task's own rewrite (of an earlier change) is under way at the time.
    options = {"data_path": str(tmp_path), "mem_queue_size": 0, "sync_every": 1}
    async with open_broker(**options) as broker:  # type: ignore[arg-type]
        client = await RawClient.connect(broker)
        try:
            for t in range(30):
                await client.send(f"PUB new{t}\n".encode() + body(b"x"))
                await client.expect_response(b"OK")
                assert f'"name":"new{t}"'.encode() in (tmp_path / "nsqd.dat").read_bytes()
        finally:
            await client.aclose()


@pytest.mark.slow
async def test_topics_created_just_before_sigterm_are_in_nsqd_dat(tmp_path: Path) -> None:
    # 100 topics: the log lines of many more would fill the stderr pipe nobody reads yet
    async with run_broker_process(f"--data-path={tmp_path}") as broker:
        client = await broker.connect()
        await client.send(b"".join(f"PUB burst{t}\n".encode() + body(b"x") for t in range(100)))
        for _ in range(100):
            await client.expect_response(b"OK")
        broker.process.send_signal(signal.SIGTERM)
        assert await broker.wait() == 0
    recorded = json.loads((tmp_path / "nsqd.dat").read_bytes())
    assert sorted(t["name"] for t in recorded["topics"]) == sorted(f"burst{t}" for t in range(100))

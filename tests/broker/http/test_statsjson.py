"""/stats?format=json written straight from the graph: the same bytes as the model path.

The models of core._stats through go_json are the reference (what test_api checks against
nsqd's keys and types); the direct writer must match them byte for byte, filters included.
"""

from __future__ import annotations

import pytest

from tests.broker.core.test_model import FakeClock, FakeScheduler
from trinsq._version import NSQ_COMPAT_VERSION
from trinsq.broker import BrokerOptions
from trinsq.broker.core import _stats
from trinsq.broker.core._broker import BrokerCore
from trinsq.broker.core._graph import TopicGraph
from trinsq.broker.core._quantile import LatencyStream
from trinsq.broker.core._stats import MemoryStats, collect_stats, stats_document
from trinsq.broker.http import _statsjson
from trinsq.broker.http._jsonedge import go_json
from trinsq.broker.http._statsjson import stats_json
from trinsq.protocol import ClientSettings

FIXED_MEMORY = MemoryStats(1, 2, 3, 4, 5, 6, 7, 8, 9)
HEALTH = "NOK - disk <full> & \u2028 é"  # Go escapes <, >, &, U+2028


@pytest.fixture
def core(monkeypatch: pytest.MonkeyPatch) -> BrokerCore:
    monkeypatch.setattr(_stats, "memory_stats", lambda: FIXED_MEMORY)
    monkeypatch.setattr(_statsjson, "memory_stats", lambda: FIXED_MEMORY)
    clock = FakeClock()
    graph = TopicGraph(BrokerOptions(node_id=1), clock, FakeScheduler())
    core = BrokerCore(graph)
    for name in ["zeta", "alpha", "mid#ephemeral", "empty"]:
        core.create_topic(name)
    for channel_name in ["c2", "c1", "tmp#ephemeral"]:
        core.create_channel("zeta", channel_name)
    core.create_channel("alpha", "only")
    core.create_channel("mid#ephemeral", "e#ephemeral")
    core.pause_topic("alpha", True)
    core.pause_channel("zeta", "c2", True)
    core.publish("zeta", [b"one", b"two", b"three"])
    core.publish("alpha", [b"held"])  # paused: waits in the topic
    core.publish("zeta", [b"later"], defer_ms=60_000)
    consumer = core.connect("127.0.0.1:4000", 1_700_000_000.5, ClientSettings())
    consumer.client_id, consumer.hostname, consumer.user_agent = 'c"1', "h<o>st", "ua\u2029"
    channel = core.subscribe(consumer, "zeta", "c1")
    channel.take(consumer, 2, 60.0)
    latency = LatencyStream([0.99, 0.5], 600.0, clock)
    latency.insert(1_500_000.0)
    latency.insert(2_000_000.0)
    channel.e2e = latency
    producer = core.connect("127.0.0.1:4001", 1_700_000_001.0, ClientSettings())
    producer.published("zeta", 4)
    producer.published("alpha", 1)
    return core


def reference(core: BrokerCore, **filters: object) -> bytes:
    include_mem = bool(filters.pop("include_mem", True))
    topics, producers = collect_stats(core.topics, core.clients.values(), **filters)  # type: ignore[arg-type]
    return go_json(stats_document(HEALTH, 1_700_000_000.9, topics, producers, include_mem))


def direct(core: BrokerCore, **options: object) -> bytes:
    pieces = stats_json(
        core.topics,
        core.clients.values(),
        version=NSQ_COMPAT_VERSION,
        health=HEALTH,
        start_time=1_700_000_000.9,
        **options,  # type: ignore[arg-type]
    )
    return "".join(piece for piece, _ in pieces).encode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"topic": "zeta"},
        {"topic": "zeta", "channel": "c1"},
        {"topic": "zeta", "channel": "nope"},
        {"topic": "nope"},
        {"channel": "c1"},
        {"include_clients": False},
        {"topic": "alpha", "include_clients": False},
    ],
)
def test_direct_json_is_the_model_path_byte_for_byte(
    core: BrokerCore, filters: dict[str, object]
) -> None:
    assert direct(core, **filters) == reference(core, **filters)
    no_mem = {**filters, "include_mem": False}
    assert direct(core, **no_mem) == reference(core, **no_mem)


def test_no_topics(core: BrokerCore) -> None:
    for name in list(core.topics):
        core.delete_topic(name)
    assert direct(core) == reference(core)


def test_pieces_count_channels_and_a_topic_deleted_meanwhile_is_left_out(
    core: BrokerCore,
) -> None:
    pieces = stats_json(
        core.topics, core.clients.values(), version="1.3.0", health="OK", start_time=0.0
    )
    seen: list[tuple[str, int]] = []
    for piece, channels in pieces:
        seen.append((piece, channels))
        if piece.startswith('{"topic_name":"alpha"'):
            core.delete_topic("empty")  # between two steps, as another request might
    assert [count for piece, count in seen if "topic_name" in piece] == [1, 1, 3]
    assert '"topic_name":"empty"' not in "".join(piece for piece, _ in seen)

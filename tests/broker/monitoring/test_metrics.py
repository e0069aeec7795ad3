"""GET /metrics: Prometheus text format that prometheus-client parses, agreeing with /stats."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio.testing
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conftest import Connect
from trinsq import RunningBroker
from trinsq.broker.monitoring._metrics import escape_label_value

# /metrics family -> the /stats key it reports (memory depth is derived).
TOPIC_KEYS = {
    "nsq_topic_depth": "depth",
    "nsq_topic_backend_depth": "backend_depth",
    "nsq_topic_messages_total": "message_count",
    "nsq_topic_message_bytes_total": "message_bytes",
    "nsq_topic_paused": "paused",
}
CHANNEL_KEYS = {
    "nsq_channel_depth": "depth",
    "nsq_channel_backend_depth": "backend_depth",
    "nsq_channel_in_flight": "in_flight_count",
    "nsq_channel_deferred": "deferred_count",
    "nsq_channel_messages_total": "message_count",
    "nsq_channel_requeued_total": "requeue_count",
    "nsq_channel_timed_out_total": "timeout_count",
    "nsq_channel_clients": "client_count",
    "nsq_channel_paused": "paused",
}


@pytest.fixture
async def http(broker: RunningBroker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{broker.http_address}") as client:
        yield client


async def scrape(http: httpx.AsyncClient) -> dict[str, list[Sample]]:
    """Samples by name, after checking the response and that every family parses."""
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "x-nsq-content-type" not in response.headers  # trinsq's own endpoint
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def by_labels(samples: list[Sample], *names: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels[name] for name in names): s.value for s in samples}


async def test_numbers_agree_with_stats(
    http: httpx.AsyncClient, broker: RunningBroker, connect: Connect
) -> None:
    odd = "a.b_c-D#ephemeral"  # every character a name may have
    assert (await http.post("/topic/create?topic=orders")).status_code == 200
    assert (await http.post("/channel/create?topic=orders&channel=idle")).status_code == 200
    consumer = await connect(broker)
    await consumer.subscribe("orders", "work", rdy=2)
    watcher = await connect(broker)
    await watcher.subscribe(odd, "x.y-z_#ephemeral", rdy=0)
    producer = await connect(broker)
    for topic, body in [("orders", b"one"), ("orders", b"two!"), ("orders", b"3"), (odd, b"x")]:
        await producer.publish(topic, body)
    assert (await http.post("/pub?topic=orders&defer=60000", content=b"later")).text == "OK"
    first = (await consumer.read_message())[2]
    await consumer.read_message()
    await consumer.send(b"REQ " + first + b" 0\n")  # requeued, then delivered again at once
    await consumer.read_message()
    assert (await http.post("/channel/pause?topic=orders&channel=idle")).status_code == 200
    await trio.testing.wait_all_tasks_blocked(cushion=0.05)  # the broker has handled it all

    stats = (await http.get("/stats?format=json")).json()
    samples = await scrape(http)

    topics = {t["topic_name"]: t for t in stats["topics"]}
    assert topics.keys() == {"orders", odd}
    for name, key in TOPIC_KEYS.items():
        expected: dict[tuple[str, ...], float] = {
            (t,): float(topic[key]) for t, topic in topics.items()
        }
        assert by_labels(samples[name], "topic") == expected, name
    assert by_labels(samples["nsq_topic_memory_depth"], "topic") == {
        (t,): float(topic["depth"] - topic["backend_depth"]) for t, topic in topics.items()
    }

    channels = {(t, c["channel_name"]): c for t, topic in topics.items() for c in topic["channels"]}
    assert channels.keys() == {("orders", "idle"), ("orders", "work"), (odd, "x.y-z_#ephemeral")}
    for name, key in CHANNEL_KEYS.items():
        expected = {labels: float(channel[key]) for labels, channel in channels.items()}
        assert by_labels(samples[name], "topic", "channel") == expected, name
    work, idle = channels["orders", "work"], channels["orders", "idle"]
    assert (work["message_count"], work["in_flight_count"], work["requeue_count"]) == (4, 2, 1)
    assert (idle["depth"], idle["deferred_count"], idle["paused"]) == (3, 1, True)
    assert topics["orders"]["message_bytes"] == len(b"one" + b"two!" + b"3" + b"later")

    assert samples["nsq_topics"][0].value == 2
    assert samples["nsq_channels"][0].value == 3
    assert samples["nsq_clients"][0].value == 3
    assert samples["nsq_producers"][0].value == len(stats["producers"]) == 1
    assert samples["nsq_healthy"][0].value == 1
    assert samples["nsq_start_time_seconds"][0].value == stats["start_time"]


async def test_broker_and_process_families(http: httpx.AsyncClient) -> None:
    assert (await http.post("/pub?topic=orders", content=b"x")).status_code == 200
    samples = await scrape(http)
    # Only durable topics and channels have disk queues.
    assert by_labels(samples["nsq_disk_queue_bad_files"], "queue") == {("orders",): 0.0}
    assert samples["nsq_disk_bad_files"][0].value == 0
    assert samples["process_resident_memory_bytes"][0].value > 1_000_000
    generations = by_labels(samples["python_gc_collections_total"], "generation")
    assert generations.keys() == {("0",), ("1",), ("2",)}
    assert all(value >= 0 for value in generations.values())


async def test_empty_broker_still_describes_every_family(http: httpx.AsyncClient) -> None:
    response = await http.get("/metrics")
    families = {f.name for f in text_string_to_metric_families(response.text)}
    assert {"nsq_topic_depth", "nsq_channel_in_flight", "nsq_channel_messages"} <= families
    assert "# TYPE nsq_channel_messages_total counter" in response.text


@pytest.mark.parametrize(
    "value", ["plain", 'quote " inside', "back\\slash", "new\nline", 'all \\"\n of them', "ünï"]
)
def test_label_values_round_trip_through_the_parser(value: str) -> None:
    text = f'# TYPE t gauge\nt{{name="{escape_label_value(value)}"}} 1\n'
    (family,) = text_string_to_metric_families(text)
    assert family.samples[0].labels == {"name": value}

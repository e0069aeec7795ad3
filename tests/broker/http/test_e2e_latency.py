"""End-to-end processing latency in /stats (JSON and text) and /metrics."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import RawClient, mpub_body
from trinsq import open_broker
from trinsq.broker.http._statstext import _nanoseconds_to_human


async def test_stats_report_percentiles_of_finished_messages() -> None:
    async with (
        open_broker(e2e_processing_latency_percentiles=[1.0, 0.99]) as broker,
        httpx.AsyncClient(base_url=f"http://{broker.http_address}") as http,
    ):
        assert (await http.post("/topic/create?topic=lat")).status_code == 200
        assert (await http.post("/channel/create?topic=lat&channel=idle")).status_code == 200
        consumer = await RawClient.connect(broker)
        try:
            await consumer.subscribe("lat", "work", rdy=10)
            await consumer.send(b"MPUB lat\n" + mpub_body([b"a", b"b", b"c"]))
            await consumer.expect_response(b"OK")
            messages = [await consumer.read_message() for _ in range(3)]
            before = time.time_ns()
            await consumer.send(b"".join(b"FIN " + m[2] + b"\n" for m in messages))
            await consumer.publish("barrier", b"x")  # answered once the FINs are handled
            after = time.time_ns()
        finally:
            await consumer.aclose()
        reply = await http.get("/stats?format=json&topic=lat")
        text = (await http.get("/stats?topic=lat")).text
        metrics = (await http.get("/metrics")).text

    # Go writes the quantile 1.0 as 1, and whole-ns values without a fraction.
    assert '"percentiles":[{"quantile":1,"value":' in reply.text
    (topic,) = reply.json()["topics"]
    channels = {c["channel_name"]: c for c in topic["channels"]}
    latency = channels["work"]["e2e_processing_latency"]
    assert latency["count"] == 3
    assert [item["quantile"] for item in latency["percentiles"]] == [1, 0.99]
    # With three samples both quantiles are the slowest one: the first published.
    oldest = min(timestamp for timestamp, *_ in messages)
    for item in latency["percentiles"]:
        assert before - oldest <= item["value"] <= after - oldest
        assert isinstance(item["value"], int)
    # Tracked but nothing finished yet: nsqd lists the quantiles with value 0.
    assert channels["idle"]["e2e_processing_latency"] == {
        "count": 0,
        "percentiles": [{"quantile": 1, "value": 0}, {"quantile": 0.99, "value": 0}],
    }
    assert topic["e2e_processing_latency"] == latency  # the merge of both channels

    human = ", ".join(_nanoseconds_to_human(item["value"]) for item in latency["percentiles"])
    assert re.search(r"\[work\s*\] depth: .* e2e%: " + re.escape(human) + "\n", text)
    assert re.search(r"\[lat\s*\] depth: .* e2e%: " + re.escape(human) + "\n", text)
    assert re.search(r"\[idle\s*\] depth: .* e2e%: 0\.0ns, 0\.0ns\n", text)

    samples = {
        (sample.labels.get("channel"), sample.labels["quantile"]): sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "nsq_channel_e2e_processing_latency_seconds"
        for sample in family.samples
    }
    first = latency["percentiles"][0]["value"] / 1e9
    assert samples[("work", "1.0")] == pytest.approx(first)
    assert samples[("idle", "0.99")] == 0


async def test_not_configured_stays_empty() -> None:
    async with (
        open_broker() as broker,
        httpx.AsyncClient(base_url=f"http://{broker.http_address}") as http,
    ):
        assert (await http.post("/topic/create?topic=t")).status_code == 200
        assert (await http.post("/channel/create?topic=t&channel=c")).status_code == 200
        reply = await http.get("/stats?format=json")
    assert '"e2e_processing_latency":{"count":0,"percentiles":null}' in reply.text
    (topic,) = reply.json()["topics"]
    assert topic["channels"][0]["e2e_processing_latency"] == {"count": 0, "percentiles": None}


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0.0ns"),
        (999, "999.0ns"),
        (1000, "1000.0ns"),  # nsqd switches units only above each boundary
        (1001, "1.0us"),
        (1_549_999, "1.5ms"),
        (2_000_000_001, "2.0s"),
        (3_600_000_000_000, "3600.0s"),
    ],
)
def test_nanoseconds_to_human_as_nsqd(nanoseconds: float, text: str) -> None:
    assert _nanoseconds_to_human(nanoseconds) == text

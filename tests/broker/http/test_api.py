"""The HTTP API against a running broker: nsqd's endpoints, codes, texts and JSON shapes."""

from __future__ import annotations

import errno
import logging
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from tests.conftest import Connect
from trinsq import RunningBroker, open_broker

V1 = "nsq; version=1.0"
JSON = "application/json; charset=utf-8"


@pytest.fixture
async def http(broker: RunningBroker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{broker.http_address}") as client:
        yield client


@asynccontextmanager
async def broker_with_http(
    **options: Any,
) -> AsyncIterator[tuple[RunningBroker, httpx.AsyncClient]]:
    """A broker with non-default options and an HTTP client for it."""
    async with (
        open_broker(**options) as broker,
        httpx.AsyncClient(base_url=f"http://{broker.http_address}") as client,
    ):
        yield broker, client


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked(cushion=0.05)


# -- publishing ------------------------------------------------------------------------------


async def test_pub_and_mpub_reach_a_tcp_consumer(
    http: httpx.AsyncClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("web", "c", rdy=10)
    reply = await http.post("/pub?topic=web", content=b"one")
    assert (reply.status_code, reply.text, reply.headers["x-nsq-content-type"]) == (200, "OK", V1)
    assert (await http.post("/mpub?topic=web", content=b"two\nthree\n\nfour")).text == "OK"
    binary = struct.pack(">i", 2) + struct.pack(">i", 4) + b"five" + struct.pack(">i", 3) + b"six"
    assert (await http.post("/mpub?topic=web&binary=true", content=binary)).text == "OK"
    bodies = [(await consumer.read_message())[3] for _ in range(6)]
    assert sorted(bodies) == sorted([b"one", b"two", b"three", b"four", b"five", b"six"])


async def test_pub_with_defer_waits(
    http: httpx.AsyncClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("later", "c", rdy=1)
    sent = trio.current_time()
    assert (await http.post("/pub?topic=later&defer=700", content=b"x")).status_code == 200
    await consumer.read_message(timeout=3)
    assert trio.current_time() - sent >= 0.65


async def test_mpub_with_only_empty_lines_is_ok_and_creates_the_topic(
    http: httpx.AsyncClient, broker: RunningBroker
) -> None:
    reply = await http.post("/mpub?topic=empty", content=b"\n\n")
    assert (reply.status_code, reply.text) == (200, "OK")
    assert broker.topics["empty"].message_count == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/pub?topic=t", b"", 400, "MSG_EMPTY"),
        ("POST", "/pub", b"x", 400, "MISSING_ARG_TOPIC"),
        ("POST", "/pub?topic=bad!", b"x", 400, "INVALID_TOPIC"),
        ("POST", "/pub?topic=t&defer=abc", b"x", 400, "INVALID_DEFER"),
        ("POST", "/pub?topic=t&defer=-1", b"x", 400, "INVALID_DEFER"),
        ("POST", "/pub?topic=t&defer=3600001", b"x", 400, "INVALID_DEFER"),
        ("POST", "/pub?topic=t&x=%zz", b"x", 400, "INVALID_REQUEST"),
        ("POST", "/pub?topic=t;x", b"x", 400, "INVALID_REQUEST"),
        ("POST", "/mpub", b"x", 400, "MISSING_ARG_TOPIC"),
        ("POST", "/mpub?topic=t&binary=1", b"\x00\x00\x00\x00", 413, "BAD_BODY"),
        ("POST", "/mpub?topic=t&binary=1", b"\x00\x00\x00\x01\x00\x00\x00\x00", 413, "BAD_MESSAGE"),
        ("POST", "/topic/create", b"", 400, "MISSING_ARG_TOPIC"),
        ("POST", "/topic/create?topic=bad!", b"", 400, "INVALID_TOPIC"),
        ("POST", "/topic/delete?topic=missing", b"", 404, "TOPIC_NOT_FOUND"),
        ("POST", "/topic/empty?topic=bad!", b"", 400, "INVALID_TOPIC"),
        ("POST", "/topic/empty?topic=missing", b"", 404, "TOPIC_NOT_FOUND"),
        ("POST", "/topic/pause?topic=missing", b"", 404, "TOPIC_NOT_FOUND"),
        ("POST", "/channel/create?channel=c", b"", 400, "MISSING_ARG_TOPIC"),
        ("POST", "/channel/create?topic=bad!&channel=c", b"", 400, "INVALID_ARG_TOPIC"),
        ("POST", "/channel/create?topic=t", b"", 400, "MISSING_ARG_CHANNEL"),
        ("POST", "/channel/create?topic=t&channel=b@d", b"", 400, "INVALID_ARG_CHANNEL"),
        ("POST", "/channel/create?topic=missing&channel=c", b"", 404, "TOPIC_NOT_FOUND"),
        ("POST", "/channel/delete?topic=missing&channel=c", b"", 404, "TOPIC_NOT_FOUND"),
        ("GET", "/config/no_such_option", b"", 400, "INVALID_OPTION"),
        ("PUT", "/config/msg_timeout", b"1s", 400, "INVALID_OPTION"),
        ("PUT", "/config/log_level", b"loud", 400, "INVALID_VALUE"),
        ("PUT", "/config/log_level", b"", 413, "INVALID_VALUE"),
        ("GET", "/no/such/path", b"", 404, "NOT_FOUND"),
        ("GET", "/pub", b"", 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/stats", b"", 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_errors_are_nsqds(
    http: httpx.AsyncClient, method: str, path: str, body: bytes, status: int, message: str
) -> None:
    reply = await http.request(method, path, content=body)
    assert reply.status_code == status
    assert reply.json() == {"message": message}
    assert reply.headers["content-type"] == JSON
    assert reply.headers["x-nsq-content-type"] == V1


async def test_channel_endpoints_need_an_existing_channel(
    http: httpx.AsyncClient, broker: RunningBroker
) -> None:
    await http.post("/topic/create?topic=t")
    for action in ("delete", "empty", "pause", "unpause"):
        reply = await http.post(f"/channel/{action}?topic=t&channel=missing")
        assert (reply.status_code, reply.json()) == (404, {"message": "CHANNEL_NOT_FOUND"})


async def test_size_limits() -> None:
    async with broker_with_http(max_msg_size=10, max_body_size=30) as (broker, http):
        too_big = await http.post("/pub?topic=t", content=b"x" * 11)
        assert (too_big.status_code, too_big.json()) == (413, {"message": "MSG_TOO_BIG"})

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for _ in range(3):
                yield b"x" * 5

        chunked = await http.post("/pub?topic=t", content=chunks())
        assert (chunked.status_code, chunked.json()) == (413, {"message": "MSG_TOO_BIG"})
        line = await http.post("/mpub?topic=t", content=b"ok\n" + b"y" * 11)
        assert (line.status_code, line.json()) == (413, {"message": "MSG_TOO_BIG"})
        body = await http.post("/mpub?topic=t", content=b"z\n" * 16)
        assert (body.status_code, body.json()) == (413, {"message": "BODY_TOO_BIG"})
        exact = await http.post("/pub?topic=t", content=b"x" * 10)
        assert exact.status_code == 200
        assert broker.topics["t"].message_count == 1


# -- administration --------------------------------------------------------------------------


async def test_paused_channel_holds_delivery_until_unpaused(
    http: httpx.AsyncClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("p", "c", rdy=5)
    paused = await http.post("/channel/pause?topic=p&channel=c")
    assert (paused.status_code, paused.content) == (200, b"")
    assert "content-type" not in paused.headers  # nsqd sends none with an empty body
    await http.post("/pub?topic=p", content=b"held")
    await settle()
    assert broker.topics["p"].channels["c"].depth == 1
    await http.post("/channel/unpause?topic=p&channel=c")
    assert (await consumer.read_message())[3] == b"held"


async def test_paused_topic_holds_messages_in_the_topic(
    http: httpx.AsyncClient, broker: RunningBroker
) -> None:
    await http.post("/topic/create?topic=tp")
    await http.post("/channel/create?topic=tp&channel=c")
    await http.post("/topic/pause?topic=tp")
    await http.post("/pub?topic=tp", content=b"m")
    topic = broker.topics["tp"]
    assert (topic.depth, topic.channels["c"].depth) == (1, 0)
    await http.post("/topic/unpause?topic=tp")
    assert (topic.depth, topic.channels["c"].depth) == (0, 1)


async def test_empty_and_delete(http: httpx.AsyncClient, broker: RunningBroker) -> None:
    await http.post("/topic/create?topic=e")
    await http.post("/mpub?topic=e", content=b"a\nb")  # no channel yet: held by the topic
    await http.post("/channel/create?topic=e&channel=c")
    await http.post("/pub?topic=e", content=b"c")
    topic = broker.topics["e"]
    assert topic.channels["c"].depth == 3
    await http.post("/channel/empty?topic=e&channel=c")
    assert topic.channels["c"].depth == 0
    await http.post("/topic/pause?topic=e")
    await http.post("/pub?topic=e", content=b"d")
    await http.post("/topic/empty?topic=e")
    assert topic.depth == 0
    await http.post("/channel/delete?topic=e&channel=c")
    assert "c" not in topic.channels
    await http.post("/topic/delete?topic=e")
    assert "e" not in broker.topics


async def test_http_pause_survives_a_restart(tmp_path: Path) -> None:
    for _ in range(2):
        async with broker_with_http(data_path=str(tmp_path)) as (broker, http):
            if "kept" not in broker.topics:
                await http.post("/topic/create?topic=kept")
                await http.post("/channel/create?topic=kept&channel=c")
                await http.post("/channel/pause?topic=kept&channel=c")
                await http.post("/topic/pause?topic=kept")
    async with open_broker(data_path=str(tmp_path)) as broker:
        assert broker.topics["kept"].paused
        assert broker.topics["kept"].channels["c"].paused


# -- /stats and /info ------------------------------------------------------------------------

TOPIC_KEYS = {
    "topic_name": str, "channels": list, "depth": int, "backend_depth": int,
    "message_count": int, "message_bytes": int, "paused": bool, "e2e_processing_latency": dict,
}  # fmt: skip
CHANNEL_KEYS = {
    "channel_name": str, "depth": int, "backend_depth": int, "in_flight_count": int,
    "deferred_count": int, "message_count": int, "requeue_count": int, "timeout_count": int,
    "client_count": int, "clients": list, "paused": bool, "e2e_processing_latency": dict,
}  # fmt: skip
CLIENT_KEYS = {
    "client_id": str, "hostname": str, "version": str, "remote_address": str, "state": int,
    "ready_count": int, "in_flight_count": int, "message_count": int, "finish_count": int,
    "requeue_count": int, "connect_ts": int, "sample_rate": int, "deflate": bool,
    "snappy": bool, "user_agent": str, "tls": bool, "tls_cipher_suite": str,
    "tls_version": str, "tls_negotiated_protocol": str, "tls_negotiated_protocol_is_mutual": bool,
}  # fmt: skip
MEMORY_KEYS = [
    "heap_objects", "heap_idle_bytes", "heap_in_use_bytes", "heap_released_bytes",
    "gc_pause_usec_100", "gc_pause_usec_99", "gc_pause_usec_95", "next_gc_bytes",
    "gc_total_runs",
]  # fmt: skip


def assert_shape(value: dict[str, object], keys: dict[str, type]) -> None:
    """Every key is there with nsqd's JSON type (key order is checked by the callers)."""
    for key, kind in keys.items():
        assert isinstance(value[key], kind), (key, value[key])
        if kind is int:
            assert not isinstance(value[key], bool), key


async def test_stats_json_keys_and_types_match_nsqd(
    http: httpx.AsyncClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.identify(client_id="reader", hostname="h.example", user_agent="test/1")
    await consumer.subscribe("s", "c", rdy=3)
    await consumer.publish("s", b"hello")  # a consumer that also published: in producers too
    await consumer.read_message()
    reply = await http.get("/stats?format=json")
    assert reply.headers["content-type"] == JSON
    stats = reply.json()
    assert list(stats) == ["version", "health", "start_time", "topics", "memory", "producers"]
    assert (stats["version"], stats["health"]) == ("1.3.0", "OK")
    assert isinstance(stats["start_time"], int)
    assert list(stats["memory"]) == MEMORY_KEYS
    (topic,) = stats["topics"]
    assert list(topic) == list(TOPIC_KEYS)
    assert_shape(topic, TOPIC_KEYS)
    assert topic["e2e_processing_latency"] == {"count": 0, "percentiles": None}
    (channel,) = topic["channels"]
    assert list(channel) == list(CHANNEL_KEYS)
    assert_shape(channel, CHANNEL_KEYS)
    assert (channel["depth"], channel["in_flight_count"], channel["client_count"]) == (0, 1, 1)
    (client,) = channel["clients"]
    expected_order = [*list(CLIENT_KEYS)[:15], "pub_counts", *list(CLIENT_KEYS)[15:]]
    assert list(client) == expected_order
    assert_shape(client, CLIENT_KEYS)
    assert (client["client_id"], client["hostname"], client["user_agent"]) == (
        "reader",
        "h.example",
        "test/1",
    )
    assert (client["version"], client["state"], client["ready_count"]) == ("V2", 3, 3)
    assert client["pub_counts"] == [{"topic": "s", "count": 1}]
    (producer,) = stats["producers"]
    assert producer["remote_address"] == client["remote_address"]


async def test_stats_filters(
    http: httpx.AsyncClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("f", "c1")
    await http.post("/channel/create?topic=f&channel=c2")
    await http.post("/topic/create?topic=g")
    assert (await http.get("/stats?format=json&topic=nope")).json()["topics"] is None
    only = (await http.get("/stats?format=json&topic=f&channel=c2")).json()["topics"]
    assert [t["topic_name"] for t in only] == ["f"]
    assert [c["channel_name"] for c in only[0]["channels"]] == ["c2"]
    no_clients = (await http.get("/stats?format=json&include_clients=false")).json()
    (f_topic,) = [t for t in no_clients["topics"] if t["topic_name"] == "f"]
    assert f_topic["channels"][0]["clients"] is None
    assert f_topic["channels"][0]["client_count"] == 1
    assert no_clients["producers"] is None
    assert "memory" not in (await http.get("/stats?format=json&include_mem=false")).json()
    names = [t["topic_name"] for t in (await http.get("/stats?format=json")).json()["topics"]]
    assert names == sorted(names)


async def test_stats_text_format(http: httpx.AsyncClient, broker: RunningBroker) -> None:
    await http.post("/pub?topic=txt", content=b"x")
    await http.post("/channel/create?topic=txt&channel=ch")
    await http.post("/channel/pause?topic=txt&channel=ch")
    text = (await http.get("/stats")).text
    assert text.startswith("nsqd v1.3.0 ")
    assert "\nHealth: OK\n" in text
    assert "\nTopics:\n   [txt            ] depth: 0     be-depth: 0     msgs: 1       " in text
    assert "\n   *P [ch                       ] depth: 1     be-depth: 0     inflt: 0   " in text
    assert text.endswith("\nProducers: None\n")


async def test_info(http: httpx.AsyncClient, broker: RunningBroker) -> None:
    reply = await http.get("/info")
    info = reply.json()
    assert list(info) == [
        "version", "broadcast_address", "hostname", "http_port", "tcp_port", "start_time",
        "max_heartbeat_interval", "max_output_buffer_size", "max_output_buffer_timeout",
        "max_deflate_level",
    ]  # fmt: skip
    assert info["version"] == "1.3.0"
    assert info["tcp_port"] == broker.addresses.tcp[1]
    assert info["http_port"] == int(str(broker.http_address).rpartition(":")[2])
    assert (info["max_heartbeat_interval"], info["max_output_buffer_timeout"]) == (
        60_000_000_000,
        30_000_000_000,
    )
    assert (info["max_output_buffer_size"], info["max_deflate_level"]) == (65536, 6)


async def test_ping_is_plain_text_without_the_nsq_header(http: httpx.AsyncClient) -> None:
    reply = await http.get("/ping")
    assert (reply.status_code, reply.text) == (200, "OK")
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert "x-nsq-content-type" not in reply.headers


async def test_ping_reports_a_failed_disk_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with broker_with_http(data_path=str(tmp_path), mem_queue_size=0) as (_, http):

        def disk_full(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "no space left on device")

        monkeypatch.setattr(os, "write", disk_full)
        failed = await http.post("/pub?topic=full", content=b"x")
        assert (failed.status_code, failed.json()) == (500, {"message": "INTERNAL_ERROR"})
        ping = await http.get("/ping")
        assert ping.status_code == 500
        assert ping.text.startswith("NOK - ")
        assert "no space left" in ping.text
        monkeypatch.undo()
        assert (await http.post("/pub?topic=full", content=b"x")).status_code == 200
        assert (await http.get("/ping")).text == "OK"


# -- /config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "text"),
    [
        ("msg_timeout", "60000000000"),
        ("max_msg_size", "1048576"),
        ("max_rdy_count", "2500"),
        ("id", None),
        ("snappy", "true"),
        ("log_level", "2"),
        ("log_prefix", "[nsqd] "),
    ],
)
async def test_config_values(
    http: httpx.AsyncClient, broker: RunningBroker, option: str, text: str | None
) -> None:
    reply = await http.get(f"/config/{option}")
    assert reply.status_code == 200
    expected = str(broker.server.options.node_id) if text is None else text
    assert reply.text == expected


async def test_config_strings_are_raw(http: httpx.AsyncClient, broker: RunningBroker) -> None:
    reply = await http.get("/config/broadcast_address")
    assert reply.text == broker.server.options.broadcast_address  # not JSON-quoted


async def test_put_log_level(http: httpx.AsyncClient) -> None:
    logger = logging.getLogger("trinsq")
    before = logger.level
    try:
        reply = await http.put("/config/log_level", content=b"warn")
        assert (reply.status_code, reply.text) == (200, "3")
        assert (await http.get("/config/log_level")).text == "3"
        assert logger.level == logging.WARNING
    finally:
        await http.put("/config/log_level", content=b"info")
        logger.setLevel(before)


# -- shutdown --------------------------------------------------------------------------------


async def test_idle_keep_alive_client_does_not_hold_shutdown() -> None:
    async with httpx.AsyncClient() as http:
        async with open_broker() as broker:
            assert (await http.get(f"http://{broker.http_address}/ping")).status_code == 200
            # The connection stays open and idle in httpx's pool.
            stopping = trio.current_time()
        # Our graceful timeout is 0.25 s; held by the idle connection, shutdown would take
        # hypercorn's default 3 s.
        assert trio.current_time() - stopping < 2


async def test_nsq_accept_header_gets_the_same_v1_response(http: httpx.AsyncClient) -> None:
    # go-nsq, nsqadmin and gnsq send this; nsqd 1.x answers in its V1 format either way.
    plain = await http.get("/info")
    negotiated = await http.get("/info", headers={"Accept": "application/vnd.nsq; version=1.0"})
    assert negotiated.status_code == plain.status_code == 200
    assert negotiated.headers["x-nsq-content-type"] == V1
    assert negotiated.json().keys() == plain.json().keys()


async def test_mpub_with_defer_waits(
    http: httpx.AsyncClient, broker: RunningBroker, connect: Connect
) -> None:
    # nsq.io documents defer for /mpub; nsqd 1.3.0 ignores it, trinsq honours it.
    consumer = await connect(broker)
    await consumer.subscribe("mlater", "c", rdy=5)
    sent = trio.current_time()
    assert (await http.post("/mpub?topic=mlater&defer=600", content=b"a\nb")).text == "OK"
    binary = struct.pack(">i", 1) + struct.pack(">i", 1) + b"c"
    assert (await http.post("/mpub?topic=mlater&binary=1&defer=600", content=binary)).text == "OK"
    bodies = sorted([(await consumer.read_message(timeout=3))[3] for _ in range(3)])
    assert bodies == [b"a", b"b", b"c"]
    assert trio.current_time() - sent >= 0.55
    reply = await http.post("/mpub?topic=mlater&defer=x", content=b"a")
    assert (reply.status_code, reply.json()) == (400, {"message": "INVALID_DEFER"})

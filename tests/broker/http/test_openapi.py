"""/openapi.json describes what the server does: schemathesis runs every phase and check
against a live broker over HTTP and finds nothing."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import trio

from tests.conftest import Connect
from tests.rawhttp import connect_http
from trinsq import RunningBroker, open_broker
from trinsq.broker.http._app import create_app

# nsqd refuses some bodies with 413 rather than 400 (an empty PUT /config value, bodies over the
# limit); in /mpub's binary mode a valid body is a framed message list, which a schema cannot
# tie to the `binary` parameter, so a generated body gets 413 BAD_BODY there.
SCHEMATHESIS_CONFIG = """
[generation]
max-examples = 50
deterministic = true
database = "none"
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428",
                     "429", "5xx"]
[[operations]]
include-path = "/mpub"
checks.positive_data_acceptance.expected-statuses = ["2xx", "413"]
"""


@pytest.fixture
async def busy_broker(connect: Connect) -> AsyncIterator[RunningBroker]:
    """A broker with a producer, a consumer holding a message in flight, a deferred message
    and an ephemeral topic, so /stats has every kind of object in it."""
    trinsq_logger = logging.getLogger("trinsq")
    level = trinsq_logger.level  # PUT /config/log_level changes it for the whole process
    try:
        async with open_broker() as broker:
            producer = await connect(broker)
            await producer.publish("orders", b"first")
            await producer.send(b"DPUB orders 60000\n" + (5).to_bytes(4, "big") + b"later")
            await producer.expect_response(b"OK")
            consumer = await connect(broker)
            await consumer.identify(client_id="shop", user_agent='odd "agent" \\ <&>')
            await consumer.subscribe("orders", "archive", rdy=1)
            await consumer.read_message()
            await producer.publish("audit#ephemeral", b"x")
            yield broker
    finally:
        trinsq_logger.setLevel(level)


@pytest.mark.slow
@pytest.mark.deadline(300)  # a fuzzer: its own, larger budget
async def test_schemathesis_finds_no_failure(busy_broker: RunningBroker, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
        "run", f"http://{busy_broker.http_address}/openapi.json", "--checks", "all",
    ]  # fmt: skip
    # The CLI runs every phase (examples, coverage, fuzzing, stateful); cwd keeps its files out
    # of the work tree.
    result = await trio.run_process(
        command, cwd=tmp_path, capture_stdout=True, stderr=subprocess.STDOUT, check=False
    )
    output = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, output
    assert "19 selected / 19 total" in output, output


async def test_every_route_is_described(busy_broker: RunningBroker) -> None:
    async with httpx.AsyncClient(base_url=f"http://{busy_broker.http_address}") as http:
        document = (await http.get("/openapi.json")).json()
    app_routes = {
        (rule.rule.replace("<opt>", "{opt}"), method.lower())
        for rule in create_app(busy_broker.server).url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS") and rule.endpoint != "static"
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert described == app_routes


@pytest.mark.slow
async def test_rich_stats_conform(busy_broker: RunningBroker) -> None:
    """/stats with producers, consumers, pub_counts, ephemeral topics and a deferred message,
    filtered and not, validates against the schema it is described by."""
    async with httpx.AsyncClient(base_url=f"http://{busy_broker.http_address}") as http:
        schema = schemathesis.openapi.from_dict((await http.get("/openapi.json")).json())
        operation = schema["/stats"]["GET"]
        for query in [
            "format=json",
            "format=json&include_clients=false&include_mem=false",
            "format=json&topic=orders&channel=archive",
            "format=json&topic=missing",
            "",
        ]:
            response = await http.get(f"/stats?{query}")
            operation.validate_response(response)
        document = (await http.get("/stats?format=json")).json()
    topics = {topic["topic_name"]: topic for topic in document["topics"]}
    assert topics.keys() == {"orders", "audit#ephemeral"}
    channel = topics["orders"]["channels"][0]
    assert channel["clients"][0]["client_id"] == "shop"
    assert channel["in_flight_count"] == 1
    assert channel["deferred_count"] == 1
    assert document["producers"][0]["pub_counts"]


# -- what schemathesis found -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/pub?topic=t", 413),  # Content-Length over the limit: answered unread
        ("POST", "/mpub?topic=%FF", 400),  # bad topic: answered before the body is read
        ("POST", "/topic/create?topic=t", 200),  # no body expected at all
        ("PUT", "/config/log_level", 413),
    ],
)
async def test_an_unread_body_does_not_stall_the_connection(
    broker: RunningBroker, method: str, path: str, status: int
) -> None:
    """The answer comes without the body being read to the end (it used to hang). A body
    still arriving after the answer ends the connection, as in nsqd, and the next request,
    on that connection or a new one, is answered."""
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n".encode()
    async with trio.open_nursery() as nursery:
        http = await connect_http(broker.http_address)
        nursery.start_soon(http.send_until_refused, head + b"x" * 2_000_000)
        with trio.fail_after(5):
            first = await http.answer()
            if (b"Connection", b"close") in first[2]:
                await http.expect_eof()
                await http.stream.aclose()
                http = await connect_http(broker.http_address)
            await http.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            second = await http.answer()
        await http.stream.aclose()
    assert (first[0], second[0], second[3]) == (status, 200, b"OK")

"""The embedding API: a real broker in the test's Trio run, on OS-chosen ports."""

from __future__ import annotations

import httpx
import trio

from tests.support import RawClient
from trinsq import RunningBroker, open_broker


async def test_open_broker_reports_bound_ports(broker: RunningBroker) -> None:
    host, port = broker.addresses.tcp
    assert host == "127.0.0.1"
    assert port > 0
    assert broker.http_address is not None
    assert broker.tcp_address == f"127.0.0.1:{port}"


async def test_publish_then_consume_round_trip(raw: RawClient, broker: RunningBroker) -> None:
    await raw.publish("orders", b"hello")
    assert broker.topics["orders"].depth == 1
    await raw.subscribe("orders", "archive", rdy=1)
    _, attempts, message_id, data = await raw.read_message()
    assert (attempts, data) == (1, b"hello")
    assert len(message_id) == 16
    channel = broker.topics["orders"].channels["archive"]
    assert list(channel.in_flight) == [message_id]
    await raw.send(b"FIN " + message_id + b"\n")
    # Commands run in order, so once this PUB is answered the FIN has been handled.
    await raw.publish("other", b"x")
    assert channel.in_flight == {}
    assert broker.server.clients[1].finish_count == 1


async def test_http_ping_is_served_in_process(broker: RunningBroker) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"http://{broker.http_address}/ping")
    assert reply.status_code == 200
    assert reply.text == "OK"
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"


async def test_leaving_the_block_stops_the_broker() -> None:
    async with open_broker() as running:
        host, port = running.addresses.tcp
    with trio.fail_after(5):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError:
            return
    await stream.aclose()
    raise AssertionError("the broker still accepts connections after the block")

"""A broker client connection over any ``trio.abc.Stream``: in-memory streams instead of a
socket (``BrokerServer.accept_stream``, tests/memory.py), with the same protocol, the same
stream upgrades and the same lifetime as a TCP client."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from tests.memory import MemoryClient, connect_in_memory
from tests.tlsutil import OK_FRAME, Certificates, make_certificates
from trinsq import open_broker
from trinsq.common._streams import DeflateStream, SnappyStream


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("memory-tls"))


@pytest.mark.parametrize("lockstep", [False, True], ids=["memory", "lockstep"])
async def test_publish_and_consume_over_memory_streams(lockstep: bool) -> None:
    async with open_broker(http_address="") as broker:
        consumer = await MemoryClient.connect(broker, lockstep=lockstep)
        reply = await consumer.identify(client_id="in-memory")
        assert json.loads(reply.data)["max_rdy_count"] == 2500
        await consumer.subscribe("mem", "c", rdy=2)
        publisher = await MemoryClient.connect(broker, lockstep=lockstep)
        await publisher.publish("mem", b"one")
        await publisher.publish("mem", b"two")
        first = await consumer.read_message()
        second = await consumer.read_message()
        assert (first[3], second[3]) == (b"one", b"two")
        for _, _, message_id, _ in (first, second):
            await consumer.send(b"FIN " + message_id + b"\n")
        # Everything runs in this process: once every task waits, the broker has done it all.
        await trio.testing.wait_all_tasks_blocked()
        channel = broker.topics["mem"].channels["c"]
        assert (channel.depth, len(channel.in_flight), channel.message_count) == (0, 0, 2)
        clients = {c.client_id: c.remote_address for c in broker.server.clients.values()}
        assert clients["in-memory"].startswith("memory:")


@pytest.mark.parametrize(
    ("tls", "compression"),
    [(False, "snappy"), (False, "deflate"), (True, None), (True, "snappy"), (True, "deflate")],
    ids=["snappy", "deflate", "tls", "tls-snappy", "tls-deflate"],
)
async def test_stream_upgrades_over_memory_streams(
    certs: Certificates, tls: bool, compression: str | None
) -> None:
    """nsqd's order: the IDENTIFY reply in clear, the TLS handshake and an OK over TLS, then
    an OK over the compressor. The client side stacks trinsq's own stream classes."""
    options = certs.broker_options(https_address="") if tls else {}
    async with open_broker(http_address="", **options) as broker:
        client = await MemoryClient.connect(broker)
        features: dict[str, Any] = {"tls_v1": tls}
        if compression is not None:
            features[compression] = True
        reply = json.loads((await client.identify(**features)).data)
        assert (reply["tls_v1"], reply["snappy"], reply["deflate"]) == (
            tls,
            compression == "snappy",
            compression == "deflate",
        )
        if tls:
            stream = trio.SSLStream(
                client.stream, certs.client_context(), server_hostname="127.0.0.1"
            )
            await stream.do_handshake()
            client.stream = stream
            # Exactly the OK: what follows it belongs to the compressor.
            assert await client.read_raw(len(OK_FRAME)) == OK_FRAME
        if compression == "snappy":
            client.stream = SnappyStream(client.stream)
        elif compression == "deflate":
            client.stream = DeflateStream(client.stream, 6)
        if compression is not None:
            await client.expect_response(b"OK")
        await client.subscribe("up", "c", rdy=1)
        await client.publish("up", b"through every layer")
        _, _, _, data = await client.read_message()
        assert data == b"through every layer"
        (served,) = broker.server.clients.values()
        assert (served.tls, served.snappy, served.deflate) == (
            tls,
            compression == "snappy",
            compression == "deflate",
        )


async def test_memory_connections_end_when_the_broker_shuts_down() -> None:
    async with open_broker(http_address="") as broker:
        client = await MemoryClient.connect(broker)
        await client.publish("t", b"x")
    await client.expect_closed()
    with pytest.raises(RuntimeError, match="not serving"):
        connect_in_memory(broker)

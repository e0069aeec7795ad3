"""`trinsq registry` against real brokers and raw V1 peers (nsqlookupd.md §2-§4)."""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from tests.conftest import Connect
from trinsq import open_broker
from trinsq._cluster import RunningCluster, open_cluster
from trinsq.registry import RunningRegistry, open_registry

IDENTIFY = json.dumps(
    {"broadcast_address": "b.example", "tcp_port": 4150, "http_port": 4151, "version": "1.3.0"}
).encode()


async def settle() -> None:
    """Let the in-process brokers and registries finish what their sockets handed them."""
    await trio.testing.wait_all_tasks_blocked(cushion=0.05)


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """For what only happens after a reconnect backoff: check until true or fail."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


@pytest.fixture
async def registry() -> AsyncIterator[RunningRegistry]:
    async with open_registry() as running:
        yield running


@pytest.fixture
async def http(registry: RunningRegistry) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{registry.http_address}") as client:
        yield client


class V1Peer:
    """A raw protocol-V1 connection, as a broker makes it."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    @classmethod
    async def connect(cls, registry: RunningRegistry, magic: bytes = b"  V1") -> V1Peer:
        host, port = registry.addresses.tcp
        peer = cls(await trio.open_tcp_stream(host, port))
        await peer.stream.send_all(magic)
        return peer

    async def response(self) -> bytes:
        with trio.fail_after(5):
            while len(self.buffer) < 4 or len(self.buffer) < 4 + int.from_bytes(
                self.buffer[:4], "big"
            ):
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError
                self.buffer += data
        size = int.from_bytes(self.buffer[:4], "big")
        data = bytes(self.buffer[4 : 4 + size])
        del self.buffer[: 4 + size]
        return data

    async def closed(self) -> bool:
        """Whether the registry closes the connection (anything it sends first is skipped)."""
        with trio.fail_after(5):
            try:
                while await self.stream.receive_some(65536):
                    pass
            except trio.BrokenResourceError:
                pass
        return True

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


@pytest.fixture
async def peers(registry: RunningRegistry) -> AsyncIterator[Callable[..., object]]:
    opened: list[V1Peer] = []

    async def open_peer(magic: bytes = b"  V1") -> V1Peer:
        peer = await V1Peer.connect(registry, magic)
        opened.append(peer)
        return peer

    yield open_peer
    for peer in opened:
        await peer.aclose()


# -- protocol V1 -----------------------------------------------------------------------------


async def test_v1_session(registry: RunningRegistry, peers: Callable[..., object]) -> None:
    peer: V1Peer = await peers()  # type: ignore[misc]
    await peer.stream.send_all(b"PING\n")
    assert await peer.response() == b"OK"
    await peer.stream.send_all(b"IDENTIFY\n" + struct.pack(">i", len(IDENTIFY)) + IDENTIFY)
    reply = json.loads(await peer.response())
    assert list(reply) == ["broadcast_address", "hostname", "http_port", "tcp_port", "version"]
    assert reply["tcp_port"] == registry.addresses.tcp[1]
    assert reply["version"] == "1.3.0"
    await peer.stream.send_all(b"REGISTER t c\nREGISTER t2 \nUNREGISTER t c\n")
    assert [await peer.response() for _ in range(3)] == [b"OK"] * 3
    db = registry.server.db
    assert sorted(db.topics()) == ["t", "t2"]
    assert db.channels("t") == ["c"]  # the key stays; only ephemeral ones go


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"REGISTER t\n", b"E_INVALID client must IDENTIFY"),
        (b"BOGUS\n", b"E_INVALID invalid command BOGUS"),
        (
            b"IDENTIFY\n" + struct.pack(">i", 4) + b"{bad",
            b"E_BAD_BODY IDENTIFY failed to decode JSON body",
        ),
        (b"IDENTIFY\n" + struct.pack(">i", 2) + b"{}", b"E_BAD_BODY IDENTIFY missing fields"),
        (
            b"IDENTIFY\n" + struct.pack(">i", 1 << 30),
            b"E_BAD_BODY IDENTIFY body too big 1073741824 > 5242880",
        ),
    ],
)
async def test_v1_errors_close_only_that_connection(
    registry: RunningRegistry, peers: Callable[..., object], payload: bytes, error: bytes
) -> None:
    good: V1Peer = await peers()  # type: ignore[misc]
    bad: V1Peer = await peers()  # type: ignore[misc]
    await bad.stream.send_all(payload)
    assert await bad.response() == error
    assert await bad.closed()
    await good.stream.send_all(b"PING\n")
    assert await good.response() == b"OK"


async def test_v1_wrong_magic_and_garbage(
    registry: RunningRegistry, peers: Callable[..., object]
) -> None:
    wrong: V1Peer = await peers(b"  V2")  # type: ignore[misc]
    assert await wrong.response() == b"E_BAD_PROTOCOL"
    assert await wrong.closed()
    garbage: V1Peer = await peers()  # type: ignore[misc]
    # No newline within the 16 KiB line limit: closed without a reply.
    await garbage.stream.send_all(bytes(range(11, 256)) * 100)
    assert await garbage.closed()
    assert not garbage.buffer
    good: V1Peer = await peers()  # type: ignore[misc]
    await good.stream.send_all(b"PING\n")
    assert await good.response() == b"OK"


# -- HTTP API --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/channels", 400, "MISSING_ARG_TOPIC"),
        ("GET", "/lookup", 400, "MISSING_ARG_TOPIC"),
        ("GET", "/lookup?topic=missing", 404, "TOPIC_NOT_FOUND"),
        ("POST", "/topic/create?topic=bad!", 400, "INVALID_ARG_TOPIC"),
        ("POST", "/topic/create", 400, "MISSING_ARG_TOPIC"),
        ("POST", "/topic/tombstone?topic=t", 400, "MISSING_ARG_NODE"),
        ("POST", "/channel/create?topic=t", 400, "MISSING_ARG_CHANNEL"),
        ("POST", "/channel/delete?topic=t&channel=nope", 404, "CHANNEL_NOT_FOUND"),
        ("GET", "/lookup?topic=%zz", 400, "INVALID_REQUEST"),
        ("GET", "/nowhere", 404, "NOT_FOUND"),
        ("POST", "/lookup", 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_http_errors(
    http: httpx.AsyncClient, method: str, path: str, status: int, message: str
) -> None:
    reply = await http.request(method, path)
    assert (reply.status_code, reply.json()) == (status, {"message": message})
    assert reply.headers["x-nsq-content-type"] == "nsq; version=1.0"


async def test_http_registry_admin(http: httpx.AsyncClient) -> None:
    assert (await http.get("/ping")).text == "OK"
    assert (await http.get("/info")).json() == {"version": "1.3.0"}
    assert (await http.get("/topics")).json() == {"topics": []}
    await http.post("/topic/create?topic=made")
    assert (await http.get("/lookup?topic=made")).json() == {"channels": [], "producers": []}
    await http.post("/channel/create?topic=other&channel=c")
    assert sorted((await http.get("/topics")).json()["topics"]) == ["made", "other"]
    assert (await http.get("/channels?topic=other")).json() == {"channels": ["c"]}
    assert (await http.get("/channels?topic=unknown")).json() == {"channels": []}
    await http.post("/channel/delete?topic=other&channel=c")
    await http.post("/topic/delete?topic=made")
    await http.post("/topic/delete?topic=never-existed")  # 200 even when absent
    assert (await http.get("/topics")).json() == {"topics": ["other"]}


# -- brokers and registries together ---------------------------------------------------------


@pytest.fixture
async def cluster() -> AsyncIterator[RunningCluster]:
    async with open_cluster(
        brokers=2, registries=1, registry_options={"tombstone_lifetime": 0.6}
    ) as running:
        yield running


async def test_broker_changes_show_within_a_second(
    cluster: RunningCluster, connect: Connect
) -> None:
    registry = cluster.registries[0]
    broker = cluster.brokers[0]
    async with httpx.AsyncClient(base_url=f"http://{registry.http_address}") as http:
        with trio.fail_after(1):
            client = await connect(broker)
            await client.send(b"SUB orders archive\n")
            await client.expect_response(b"OK")
            await settle()
            lookup = (await http.get("/lookup?topic=orders")).json()
            assert lookup["channels"] == ["archive"]
            assert [p["tcp_port"] for p in lookup["producers"]] == [broker.addresses.tcp[1]]
            assert lookup["producers"][0]["broadcast_address"] == "127.0.0.1"
            assert "orders" in (await http.get("/topics")).json()["topics"]
        with trio.fail_after(1):
            broker_http = f"http://{broker.http_address}"
            await http.post(f"{broker_http}/channel/create?topic=orders&channel=audit")
            await settle()
            assert sorted((await http.get("/channels?topic=orders")).json()["channels"]) == [
                "archive",
                "audit",
            ]
            await client.aclose()
            await http.post(f"{broker_http}/channel/delete?topic=orders&channel=audit")
            await http.post(f"{broker_http}/topic/delete?topic=orders")
            await settle()
            lookup = (await http.get("/lookup?topic=orders")).json()
            assert lookup["producers"] == []


async def test_a_stopped_broker_disappears(cluster: RunningCluster) -> None:
    registry = cluster.registries[0]
    async with open_broker(lookupd_tcp_addresses=[registry.tcp_address]) as extra:
        async with httpx.AsyncClient(base_url=f"http://{extra.http_address}") as http:
            await http.post("/topic/create?topic=shared")
        await settle()
        db = registry.server.db
        nodes = db.nodes(inactive_timeout=300, tombstone_lifetime=45)
        assert extra.addresses.tcp[1] in [node.tcp_port for node in nodes]
    await settle()
    nodes = db.nodes(inactive_timeout=300, tombstone_lifetime=45)
    assert extra.addresses.tcp[1] not in [node.tcp_port for node in nodes]
    lookup = db.lookup("shared", inactive_timeout=300, tombstone_lifetime=45)
    assert lookup is not None
    assert lookup.producers == []


async def test_tombstone_hides_one_producer_for_its_lifetime(
    cluster: RunningCluster, connect: Connect
) -> None:
    registry = cluster.registries[0]
    for broker in cluster.brokers:
        await (await connect(broker)).publish("tomb", b"x")
    await settle()
    first = cluster.brokers[0]
    node = f"127.0.0.1:{first.addresses.http[1] if first.addresses.http else 0}"
    async with httpx.AsyncClient(base_url=f"http://{registry.http_address}") as http:
        assert len((await http.get("/lookup?topic=tomb")).json()["producers"]) == 2
        await http.post(f"/topic/tombstone?topic=tomb&node={node}")
        hidden_at = trio.current_time()
        producers = (await http.get("/lookup?topic=tomb")).json()["producers"]
        assert [p["tcp_port"] for p in producers] == [cluster.brokers[1].addresses.tcp[1]]
        nodes = {n["tcp_port"]: n for n in (await http.get("/nodes")).json()["producers"]}
        assert nodes[first.addresses.tcp[1]]["tombstones"] == [True]
        assert nodes[first.addresses.tcp[1]]["topics"] == ["tomb"]
        await trio.sleep_until(hidden_at + 0.65)  # the lifetime is 0.6 s
        assert len((await http.get("/lookup?topic=tomb")).json()["producers"]) == 2


@pytest.mark.slow
async def test_brokers_reregister_after_a_registry_restart(connect: Connect) -> None:
    async with open_registry() as registry:
        tcp_port, http_port = registry.addresses.tcp[1], (registry.addresses.http or ("", 0))[1]
        options: dict[str, Any] = {
            "tcp_address": f"127.0.0.1:{tcp_port}",
            "http_address": f"127.0.0.1:{http_port}",
        }
        async with open_broker(lookupd_tcp_addresses=[registry.tcp_address]) as broker:
            await (await connect(broker)).publish("survivor", b"x")
            await settle()
            assert registry.server.db.topics() == ["survivor"]
            registry.request_shutdown()
    # (the registry's context exited above only after the broker's; restart it on its port)
    async with open_broker(lookupd_tcp_addresses=[f"127.0.0.1:{tcp_port}"]) as broker:
        await (await connect(broker)).publish("survivor", b"x")
        async with open_registry(**options) as again:
            await eventually(lambda: again.server.db.topics() == ["survivor"])
            # What a consumer asks: the broker is found again.
            async with httpx.AsyncClient() as http:
                found = await http.get(f"http://{again.http_address}/lookup?topic=survivor")
            assert [p["tcp_port"] for p in found.json()["producers"]] == [broker.addresses.tcp[1]]


async def test_new_topic_gets_the_channels_the_registry_knows(
    cluster: RunningCluster, connect: Connect
) -> None:
    registry = cluster.registries[0]
    async with httpx.AsyncClient(base_url=f"http://{registry.http_address}") as http:
        await http.post("/channel/create?topic=pre&channel=billing")
        await http.post("/channel/create?topic=pre&channel=tail%23ephemeral")
    broker = cluster.brokers[0]
    publisher = await connect(broker)
    await publisher.publish("pre", b"first message")
    await eventually(lambda: broker.topics["pre"].started)
    channels = broker.topics["pre"].channels
    assert list(channels) == ["billing"]  # ephemeral ones are not pre-created, as in nsqd
    assert channels["billing"].depth == 1  # the first message was not lost


async def test_put_config_changes_registries_live(connect: Connect) -> None:
    async with (
        open_registry() as first,
        open_registry() as second,
        open_broker(lookupd_tcp_addresses=[first.tcp_address]) as broker,
    ):
        await (await connect(broker)).publish("moving", b"x")
        await settle()
        assert first.server.db.topics() == ["moving"]
        async with httpx.AsyncClient(base_url=f"http://{broker.http_address}") as http:
            body = json.dumps([second.tcp_address]).encode()
            reply = await http.put("/config/nsqlookupd_tcp_addresses", content=body)
            assert reply.json() == [second.tcp_address]
        await eventually(lambda: second.server.db.topics() == ["moving"])

        def first_producers() -> list[object]:
            found = first.server.db.lookup("moving", inactive_timeout=300, tombstone_lifetime=45)
            return list(found.producers) if found else []

        await eventually(lambda: not first_producers())  # dropped from the list: left


async def test_topic_deleted_on_the_registry_returns_while_live_on_a_broker(
    connect: Connect,
) -> None:
    async with (
        open_registry() as registry,
        open_broker(
            lookupd_tcp_addresses=[registry.tcp_address], lookup_ping_interval=0.2
        ) as broker,
    ):
        publisher = await connect(broker)
        await publisher.publish("alive", b"x")
        await settle()
        async with httpx.AsyncClient(base_url=f"http://{registry.http_address}") as http:
            await http.post("/topic/delete?topic=alive")
            assert (await http.get("/topics")).json() == {"topics": []}
            await publisher.publish("alive", b"still here")  # nsq #1009: nsqd never re-registers
            await eventually(lambda: registry.server.db.topics() == ["alive"], timeout=2)
            # A topic deleted on the broker too stays gone.
            await http.post(f"http://{broker.http_address}/topic/delete?topic=alive")
            await http.post("/topic/delete?topic=alive")
            await trio.sleep(0.5)  # more than two ping rounds: nothing brings it back
            assert (await http.get("/topics")).json() == {"topics": []}


async def test_emptied_registrations_expire(connect: Connect) -> None:
    async with open_registry(inactive_producer_timeout=0.3) as registry:
        async with open_broker(lookupd_tcp_addresses=[registry.tcp_address]) as broker:
            await (await connect(broker)).publish("gone", b"x")
            await settle()
            assert registry.server.db.topics() == ["gone"]
        await eventually(lambda: registry.server.db.topics() == [], timeout=3)


async def test_a_registry_that_is_down_does_not_stall_the_broker(connect: Connect) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    async with open_broker(lookupd_tcp_addresses=[f"127.0.0.1:{port}"]) as broker:
        client = await connect(broker)
        with trio.fail_after(1):
            await client.publish("works", b"anyway")
            await client.subscribe("works", "c", rdy=1)
            assert (await client.read_message())[3] == b"anyway"

"""gnsq's nsqlookupd HTTP client (``gnsq.LookupdClient``, gnsq 1.0.2) against a trinsq registry.

Every method of ``LookupdClient`` (and of the deprecated ``Lookupd`` facade) is called through
gnsq itself against a registry that a real trinsq broker is registered with, so producers and
nodes are not empty. Each test checks what gnsq hands back, what the call did to the
registry's database (``server.db``), and that the request gnsq sent is a route of nsqlookupd
v1.3.0 (``nsqlookupd/http.go``) with the method nsqlookupd expects.

How gnsq runs here is as in ``test_interop_gnsq``: its HTTP client is plain urllib3 on blocking
stdlib sockets, so each call runs in a Trio worker thread while the registry and the broker
serve in the test's Trio loop. Waiting for the broker's registrations to reach the registry
uses the pynsq harness's probe (a condition checked after every Trio task step; no polling).

Where gnsq and nsqlookupd v1.3.0 disagree (the same happens against real nsqlookupd):

* Errors: nsqlookupd answers ``{"message": "TOPIC_NOT_FOUND"}``, but gnsq looks for the pre-1.0
  ``status_txt`` key, so its ``NSQHttpError`` says only ``http error <404>``; the message is on
  the wire and gnsq drops it.
* gnsq sends ``Accept: application/vnd.nsq version=1.0`` (no ``;``, unlike go-nsq and pynsq).
  nsqlookupd v1.3.0 ignores ``Accept`` (every route is V1-only), so it does no harm.
* gnsq returns raw bytes for text answers: ``ping()`` gives ``b"OK"``, not the ``"OK"`` its
  docstring says; the action calls give nsqlookupd's empty body, ``b""``.
* gnsq validates topic and channel names before sending ``lookup``, ``channels``,
  ``delete_topic``, ``delete_channel`` and ``tombstone_topic``, where nsqlookupd checks names
  only in ``/topic/create`` and ``/channel/*``: gnsq raises ``ValueError`` for a lookup that
  nsqlookupd would answer (with 404, or ``[]`` for ``/channels``). No registration can have
  such a name, so nothing is lost.
* ``gnsq.Lookupd`` (deprecated) cannot be constructed at all: its ``__init__`` assigns to
  ``self.address``, a read-only property of ``HTTPClient``, and raises ``AttributeError``.
* gnsq wraps every nsqlookupd route except ``GET /debug`` and the pprof ones.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import gnsq
import pytest
import trio
import urllib3
from gnsq.errors import NSQHttpError

from tests.interop.pynsq_harness import BrokerProbe
from trinsq import RunningBroker
from trinsq._cluster import RunningCluster, open_cluster
from trinsq.registry import RunningRegistry

pytestmark = pytest.mark.interop

T = TypeVar("T")

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
V1_HEADER = "nsq; version=1.0"

# nsqlookupd v1.3.0's router (nsqlookupd/http.go), without the pprof routes.
NSQLOOKUPD_ROUTES = {
    ("GET", "/ping"),
    ("GET", "/info"),
    ("GET", "/debug"),
    ("GET", "/lookup"),
    ("GET", "/topics"),
    ("GET", "/channels"),
    ("GET", "/nodes"),
    ("POST", "/topic/create"),
    ("POST", "/topic/delete"),
    ("POST", "/channel/create"),
    ("POST", "/channel/delete"),
    ("POST", "/topic/tombstone"),
}


@dataclass(frozen=True)
class Exchange:
    """One HTTP request gnsq sent and the response it got back."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    status: int
    content_type: str | None
    nsq_content_type: str | None
    data: bytes

    @property
    def route(self) -> tuple[str, str]:
        return self.method, self.url.partition("?")[0]


class RecordingPool(urllib3.HTTPConnectionPool):
    """urllib3's pool, recording every exchange (gnsq's ``connection_class`` option); the
    request itself goes out unchanged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges: list[Exchange] = []

    def urlopen(self, method: str, url: str, body: Any = None, *args: Any, **kwargs: Any) -> Any:
        response = super().urlopen(method, url, body, *args, **kwargs)
        headers = kwargs.get("headers") or {}  # gnsq encodes names and values to bytes
        self.exchanges.append(
            Exchange(
                method,
                url,
                {_text(name): _text(value) for name, value in headers.items()},
                body,
                response.status,
                response.headers.get("Content-Type"),
                response.headers.get("X-NSQ-Content-Type"),
                response.data,
            )
        )
        return response


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Setup:
    cluster: RunningCluster
    probe: BrokerProbe
    lookupd: gnsq.LookupdClient
    nsqd: gnsq.NsqdHTTPClient  # for the broker

    @property
    def registry(self) -> RunningRegistry:
        return self.cluster.registries[0]

    @property
    def broker(self) -> RunningBroker:
        return self.cluster.brokers[0]

    @property
    def node(self) -> str:
        """The broker as ``/topic/tombstone`` names it: ``broadcast_address:http_port``."""
        assert self.broker.http_address is not None
        return self.broker.http_address

    @property
    def exchanges(self) -> list[Exchange]:
        pool = self.lookupd._connection
        assert isinstance(pool, RecordingPool)
        return pool.exchanges

    def limits(self) -> dict[str, float]:
        options = self.registry.server.options
        return {
            "inactive_timeout": options.inactive_producer_timeout,
            "tombstone_lifetime": options.tombstone_lifetime,
        }

    def producer_count(self, topic: str, channel: str = "") -> int:
        category = "channel" if channel else "topic"
        return len(self.registry.server.db.find_producers(category, topic, channel))

    def active_producers(self, topic: str) -> list[str]:
        """``broadcast_address:tcp_port`` of the producers ``/lookup`` lists for ``topic``."""
        result = self.registry.server.db.lookup(topic, **self.limits())
        assert result is not None
        return [f"{p.broadcast_address}:{p.tcp_port}" for p in result.producers]


async def call(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one blocking gnsq call in a worker thread while the servers serve here."""
    return await trio.to_thread.run_sync(partial(method, *args, **kwargs))


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    """A registry, and a broker registered with it that has topic ``t`` with channel ``c`` and
    topic ``u`` without channels; plus gnsq's client for the registry."""
    async with open_cluster(brokers=1, registries=1, lookup_ping_interval=0.2) as cluster:
        broker = cluster.brokers[0]
        probe = BrokerProbe(broker)
        trio.lowlevel.add_instrument(probe)
        nsqd = gnsq.NsqdHTTPClient.from_url(f"http://{broker.http_address}")
        lookupd = gnsq.LookupdClient.from_url(
            f"http://{cluster.lookupd_http_addresses[0]}",
            connection_class=RecordingPool,
            timeout=10.0,
        )
        try:
            assert await call(nsqd.create_topic, "t") == b""
            assert await call(nsqd.create_channel, "t", "c") == b""
            assert await call(nsqd.create_topic, "u") == b""
            ready = Setup(cluster, probe, lookupd, nsqd)
            await probe.until(
                lambda: ready.producer_count("t", "c") == 1 and ready.producer_count("u") == 1,
                what="the broker to register t, t/c and u",
            )
            yield ready
        finally:
            lookupd._connection.close()
            nsqd._connection.close()
            trio.lowlevel.remove_instrument(probe)


# -- every wrapped endpoint, as it goes over the wire --------------------------------------------


async def test_every_method_on_the_wire(setup: Setup) -> None:
    """Each LookupdClient method: the request gnsq sends (a v1.3.0 route with its method),
    the registry's answer and gnsq's return value."""
    lookupd = setup.lookupd
    node = setup.node.replace(":", "%3A")
    steps: list[tuple[str, tuple[Any, ...], str, str, str | None, Any]] = [
        # method, args -> HTTP method, URL, content type, what gnsq returns
        ("ping", (), "GET", "/ping", TEXT, b"OK"),
        ("info", (), "GET", "/info", JSON, {"version": "1.3.0"}),
        ("topics", (), "GET", "/topics", JSON, dict),
        ("channels", ("t",), "GET", "/channels?topic=t", JSON, {"channels": ["c"]}),
        ("lookup", ("t",), "GET", "/lookup?topic=t", JSON, dict),
        ("nodes", (), "GET", "/nodes", JSON, dict),
        ("create_topic", ("w",), "POST", "/topic/create?topic=w", None, b""),
        ("create_channel", ("w", "x"), "POST", "/channel/create?topic=w&channel=x", None, b""),
        ("tombstone_topic", ("w", setup.node), "POST", f"/topic/tombstone?topic=w&node={node}",
         None, b""),
        ("delete_channel", ("w", "x"), "POST", "/channel/delete?topic=w&channel=x", None, b""),
        ("delete_topic", ("w",), "POST", "/topic/delete?topic=w", None, b""),
    ]  # fmt: skip
    for name, args, method, url, content_type, returned in steps:
        before = len(setup.exchanges)
        result = await call(getattr(lookupd, name), *args)
        (exchange,) = setup.exchanges[before:]
        assert (exchange.method, exchange.url) == (method, url), name
        assert exchange.route in NSQLOOKUPD_ROUTES, name
        assert exchange.body is None, name  # parameters only in the query string
        assert exchange.headers == {
            "Accept": "application/vnd.nsq version=1.0",
            "User-Agent": "gnsq/1.0.2",
        }, name
        assert (exchange.status, exchange.content_type) == (200, content_type), name
        # RespondV1 marks every answer but /ping's (PlainText).
        assert exchange.nsq_content_type == (None if name == "ping" else V1_HEADER), name
        if isinstance(returned, type):
            assert type(result) is returned, name
        else:
            assert result == returned, name
    # Every nsqlookupd route but /debug is wrapped by gnsq.
    assert {e.route for e in setup.exchanges} == NSQLOOKUPD_ROUTES - {("GET", "/debug")}
    assert sorted(setup.registry.server.db.topics()) == ["t", "u"]


# -- /ping and /info -------------------------------------------------------------------------------


async def test_ping_and_info(setup: Setup) -> None:
    assert await call(setup.lookupd.ping) == b"OK"
    assert await call(setup.lookupd.info) == {"version": "1.3.0"}


# -- /lookup, /topics, /channels, /nodes -----------------------------------------------------------


async def test_lookup_lists_the_broker(setup: Setup) -> None:
    broker = setup.broker
    assert broker.addresses.http is not None
    (registered,) = setup.registry.server.db.find_producers("topic", "t", "")
    answer = await call(setup.lookupd.lookup, "t")
    assert answer == {
        "channels": ["c"],
        "producers": [
            {
                "remote_address": registered.peer.remote_address,  # the broker's connection
                "hostname": socket.gethostname(),
                "broadcast_address": "127.0.0.1",
                "tcp_port": broker.addresses.tcp[1],
                "http_port": broker.addresses.http[1],
                "version": "1.3.0",
            }
        ],
    }
    # nsqlookupd's key order (its peerInfo struct), kept through gnsq's json.loads.
    assert list(answer["producers"][0]) == [
        "remote_address",
        "hostname",
        "broadcast_address",
        "tcp_port",
        "http_port",
        "version",
    ]
    # What gnsq.Consumer connects to: producer["broadcast_address"], producer["tcp_port"].
    producer = answer["producers"][0]
    assert f"{producer['broadcast_address']}:{producer['tcp_port']}" == broker.tcp_address
    assert await call(setup.lookupd.lookup, "u") == {
        "channels": [],
        "producers": answer["producers"],
    }


async def test_lookup_of_an_unknown_topic_is_a_404_without_its_message(setup: Setup) -> None:
    with pytest.raises(NSQHttpError) as raised:
        await call(setup.lookupd.lookup, "unknown")
    # gnsq reads the pre-1.0 "status_txt" key; nsqlookupd's message is only on the wire.
    assert str(raised.value) == "http error <404>"
    last = setup.exchanges[-1]
    assert (last.status, last.content_type, last.data) == (
        404,
        JSON,
        b'{"message":"TOPIC_NOT_FOUND"}',
    )


async def test_topics_and_channels(setup: Setup) -> None:
    answer = await call(setup.lookupd.topics)
    assert sorted(answer["topics"]) == ["t", "u"]
    assert await call(setup.lookupd.channels, "t") == {"channels": ["c"]}
    assert await call(setup.lookupd.channels, "u") == {"channels": []}
    # An unknown topic is not an error for /channels (unlike /lookup): nsqlookupd says [].
    assert await call(setup.lookupd.channels, "unknown") == {"channels": []}


async def test_nodes_lists_the_broker_with_its_topics(setup: Setup) -> None:
    broker = setup.broker
    assert broker.addresses.http is not None
    (client,) = setup.registry.server.db.find_producers("client", "", "")
    answer = await call(setup.lookupd.nodes)
    (node,) = answer["producers"]
    topics = node.pop("topics")
    tombstones = node.pop("tombstones")
    assert node == {
        "remote_address": client.peer.remote_address,
        "hostname": socket.gethostname(),
        "broadcast_address": "127.0.0.1",
        "tcp_port": broker.addresses.tcp[1],
        "http_port": broker.addresses.http[1],
        "version": "1.3.0",
    }
    # One tombstone flag per topic (nsqadmin zips the two lists); order is not specified.
    assert sorted(topics) == ["t", "u"]
    assert tombstones == [False, False]


# -- tombstones ------------------------------------------------------------------------------------


async def test_tombstone_topic_hides_the_producer_from_lookup_only(setup: Setup) -> None:
    db = setup.registry.server.db
    assert setup.active_producers("t") == [setup.broker.tcp_address]

    # A node that is not the broker's matches nothing: nothing changes, still 200.
    assert await call(setup.lookupd.tombstone_topic, "t", "127.0.0.1:1") == b""
    assert setup.active_producers("t") == [setup.broker.tcp_address]

    assert await call(setup.lookupd.tombstone_topic, "t", setup.node) == b""
    (producer,) = db.find_producers("topic", "t", "")
    assert producer.tombstoned
    # /lookup leaves it out for tombstone_lifetime; other topics are not affected.
    assert await call(setup.lookupd.lookup, "t") == {"channels": ["c"], "producers": []}
    assert setup.active_producers("u") == [setup.broker.tcp_address]
    # /nodes still lists the broker, flagging the tombstoned topic.
    (node,) = (await call(setup.lookupd.nodes))["producers"]
    assert dict(zip(node["topics"], node["tombstones"], strict=True)) == {"t": True, "u": False}
    # The registration itself stays: the broker is still a producer of t and t/c.
    assert (setup.producer_count("t"), setup.producer_count("t", "c")) == (1, 1)


async def test_deprecated_lookupd_facade(setup: Setup) -> None:
    """gnsq.Lookupd cannot be built in gnsq 1.0.2 (see the module docstring); its one extra
    method, ``tombstone_topic_producer``, still works on an instance made without that
    ``__init__`` and sends /topic/tombstone."""
    address = f"http://{setup.registry.http_address}/"
    with (
        pytest.warns(DeprecationWarning, match="Use :meth:`LookupdClient.from_url` instead"),
        pytest.raises(AttributeError, match="property 'address' of 'Lookupd' object has no"),
    ):
        gnsq.Lookupd(address)

    host, port = setup.lookupd.host, setup.lookupd.port
    facade = gnsq.Lookupd.__new__(gnsq.Lookupd)
    gnsq.LookupdClient.__init__(facade, host, port, connection_class=RecordingPool)
    try:
        with pytest.warns(DeprecationWarning, match="Use :attr:`LookupdClient.address` instead"):
            assert facade.base_url == f"http://{host}:{port}/"
        with pytest.warns(DeprecationWarning, match="Use :meth:`LookupdClient.tombstone_topic`"):
            assert await call(facade.tombstone_topic_producer, "u", setup.node) == b""
        (exchange,) = facade._connection.exchanges
        assert exchange.route == ("POST", "/topic/tombstone")
        (producer,) = setup.registry.server.db.find_producers("topic", "u", "")
        assert producer.tombstoned
        assert setup.active_producers("t") == [setup.broker.tcp_address]
    finally:
        facade._connection.close()


# -- creating and deleting registrations -----------------------------------------------------------


async def test_create_topic_and_channel(setup: Setup) -> None:
    db = setup.registry.server.db
    assert await call(setup.lookupd.create_topic, "made") == b""
    assert "made" in db.topics()
    # Only the key: no producer, so /lookup finds the topic and lists nobody.
    assert await call(setup.lookupd.lookup, "made") == {"channels": [], "producers": []}
    assert await call(setup.lookupd.create_topic, "made") == b""  # again: no change
    assert sorted(db.topics()) == ["made", "t", "u"]

    # /channel/create makes the topic key too.
    assert await call(setup.lookupd.create_channel, "fresh", "ch") == b""
    assert sorted(db.topics()) == ["fresh", "made", "t", "u"]
    assert db.channels("fresh") == ["ch"]
    # '#' is percent-encoded by gnsq (urllib3), so the registry sees the whole name.
    assert await call(setup.lookupd.create_channel, "fresh", "tmp#ephemeral") == b""
    assert setup.exchanges[-1].url == "/channel/create?topic=fresh&channel=tmp%23ephemeral"
    assert sorted(db.channels("fresh")) == ["ch", "tmp#ephemeral"]
    # A channel created on a topic the broker has is listed alongside the broker's own.
    assert await call(setup.lookupd.create_channel, "t", "extra") == b""
    answer = await call(setup.lookupd.lookup, "t")
    assert sorted(answer["channels"]) == ["c", "extra"]
    assert [f"{p['broadcast_address']}:{p['tcp_port']}" for p in answer["producers"]] == [
        setup.broker.tcp_address
    ]


async def test_delete_channel(setup: Setup) -> None:
    db = setup.registry.server.db
    assert await call(setup.lookupd.create_channel, "made", "ch") == b""
    assert await call(setup.lookupd.delete_channel, "made", "ch") == b""
    assert db.channels("made") == []
    assert "made" in db.topics()  # the topic key stays

    with pytest.raises(NSQHttpError) as raised:
        await call(setup.lookupd.delete_channel, "made", "ch")
    assert str(raised.value) == "http error <404>"
    assert setup.exchanges[-1].data == b'{"message":"CHANNEL_NOT_FOUND"}'

    # Deleting a channel the broker registered drops the key with its producer.
    assert await call(setup.lookupd.delete_channel, "t", "c") == b""
    assert db.channels("t") == []
    assert setup.producer_count("t", "c") == 0
    assert setup.producer_count("t") == 1


async def test_delete_topic(setup: Setup) -> None:
    db = setup.registry.server.db
    assert await call(setup.lookupd.create_channel, "made", "ch") == b""
    assert await call(setup.lookupd.delete_topic, "made") == b""
    assert "made" not in db.topics()
    assert db.channels("made") == []
    # A topic nobody registered: still 200, nothing happens.
    assert await call(setup.lookupd.delete_topic, "never") == b""
    assert sorted(db.topics()) == ["t", "u"]

    # The broker's own topic: the key goes with its channels and producers, and the broker
    # is not told (nsqlookupd does the same), so /lookup is a 404 ...
    assert await call(setup.lookupd.delete_topic, "t") == b""
    assert db.topics() == ["u"]
    assert (setup.producer_count("t"), setup.producer_count("t", "c")) == (0, 0)
    with pytest.raises(NSQHttpError, match="404"):
        await call(setup.lookupd.lookup, "t")
    assert "t" in setup.broker.topics
    # ... until the broker publishes to it again: trinsq's broker then re-registers it at its
    # next ping round (beyond nsqd; nsq issue #1009).
    assert await call(setup.nsqd.publish, "t", b"again") == b"OK"
    await setup.probe.until(
        lambda: setup.producer_count("t") == 1 and setup.producer_count("t", "c") == 1,
        what="the broker to register t again",
    )
    assert await call(setup.lookupd.channels, "t") == {"channels": ["c"]}


# -- gnsq's own checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args", "error"),
    [
        ("lookup", ("bad!",), "invalid topic name"),
        ("channels", ("x" * 65,), "invalid topic name"),
        ("create_topic", ("",), "invalid topic name"),
        ("delete_topic", ("bad topic",), "invalid topic name"),
        ("create_channel", ("t", "bad channel"), "invalid channel name"),
        ("delete_channel", ("t", "b@d"), "invalid channel name"),
        ("tombstone_topic", ("bad!", "127.0.0.1:4151"), "invalid topic name"),
    ],
)
async def test_invalid_names_are_refused_by_gnsq_before_sending(
    setup: Setup, method: str, args: tuple[Any, ...], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        await call(getattr(setup.lookupd, method), *args)
    assert setup.exchanges == []
    assert sorted(setup.registry.server.db.topics()) == ["t", "u"]

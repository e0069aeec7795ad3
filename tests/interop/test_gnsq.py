"""gnsq's nsqd HTTP client (``gnsq.NsqdHTTPClient``, gnsq 1.0.2 from PyPI) against a broker.

Every method of ``NsqdHTTPClient`` is called through gnsq itself, checking both what gnsq hands
back and what the call did to the broker.

How gnsq runs here: gnsq depends on gevent, but its HTTP client is plain urllib3 on blocking
stdlib sockets. Importing ``gnsq`` imports gevent without monkey-patching anything (the socket
and threading modules stay the stdlib ones, checked below), and the HTTP client never touches a
gevent hub. So each gnsq call runs in a Trio worker thread (``trio.to_thread.run_sync``) while
the broker serves in the test's Trio loop. Only the TCP side of gnsq (``NsqdTCPClient``,
``Producer``, ``Consumer``) needs the gevent hub, and it is not used here.

Each client gets a ``RecordingPool``: gnsq's own ``connection_class`` option, a
``urllib3.HTTPConnectionPool`` that only records each request gnsq sent and the response it got
(the request itself goes out unchanged). That shows what is on the wire, e.g. that gnsq puts
every parameter in the query string, which is the only place nsqd v1.3.0 reads them.

Where gnsq and nsqd v1.3.0 disagree (the same happens against real nsqd):

* Errors: nsqd v1.x answers ``{"message": "TOPIC_NOT_FOUND"}``, but gnsq looks for the pre-1.0
  ``status_txt`` key, so its ``NSQHttpError`` says only ``http error <404>``; nsqd's message
  is on the wire and gnsq drops it.
* Text ``multipublish`` joins the messages with newlines and accepts an empty message; nsqd
  silently skips empty lines, so gnsq returns ``b"OK"`` and the empty message is never
  published.
* gnsq returns raw bytes for text answers: ``ping()`` and ``publish()`` give ``b"OK"``, not
  the ``"OK"`` its docstrings say; the admin calls give nsqd's empty body, ``b""``.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import gevent.monkey
import gnsq
import pytest
import trio
import trio.testing
import urllib3
from gnsq.errors import NSQException, NSQHttpError

from tests.conftest import Connect
from trinsq import RunningBroker

pytestmark = pytest.mark.interop

T = TypeVar("T")

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Exchange:
    """One HTTP request gnsq sent and the response it got back."""

    method: str
    url: str
    body: bytes | None
    status: int
    content_type: str | None
    data: bytes


class RecordingPool(urllib3.HTTPConnectionPool):
    """urllib3's pool, recording every exchange (gnsq's ``connection_class`` option)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges: list[Exchange] = []

    def urlopen(self, method: str, url: str, body: Any = None, *args: Any, **kwargs: Any) -> Any:
        response = super().urlopen(method, url, body, *args, **kwargs)
        self.exchanges.append(
            Exchange(
                method,
                url,
                body,
                response.status,
                response.headers.get("Content-Type"),
                response.data,
            )
        )
        return response


def gnsq_client(broker: RunningBroker) -> gnsq.NsqdHTTPClient:
    """gnsq's client for ``broker``, built the way gnsq documents (``from_url``)."""
    client = gnsq.NsqdHTTPClient.from_url(
        f"http://{broker.http_address}", connection_class=RecordingPool, timeout=10.0
    )
    assert isinstance(client._connection, RecordingPool)
    return client


@pytest.fixture
async def nsqd(broker: RunningBroker) -> AsyncIterator[gnsq.NsqdHTTPClient]:
    client = gnsq_client(broker)
    try:
        yield client
    finally:
        client._connection.close()


def exchanges(client: gnsq.NsqdHTTPClient) -> list[Exchange]:
    pool = client._connection
    assert isinstance(pool, RecordingPool)
    return pool.exchanges


async def call(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one blocking gnsq call in a worker thread while the broker serves here."""
    return await trio.to_thread.run_sync(partial(method, *args, **kwargs))


async def settle() -> None:
    """Let every broker task run until all are blocked (nothing more will be delivered)."""
    await trio.testing.wait_all_tasks_blocked(cushion=0.05)


async def read_bodies(consumer: Any, count: int) -> list[bytes]:
    return [(await consumer.read_message())[3] for _ in range(count)]


def test_importing_gnsq_patches_nothing() -> None:
    assert not gevent.monkey.is_anything_patched()
    assert socket.socket.__module__ == "socket"
    assert threading.Thread.__module__ == "threading"
    assert gnsq.__version__ == "1.0.2"


# -- every wrapped endpoint, as it goes over the wire --------------------------------------------


async def test_every_method_on_the_wire(nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker) -> None:
    """Each NsqdHTTPClient method: the request gnsq sends, nsqd's answer, gnsq's return value."""
    binary_body = b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01a" + b"\x00\x00\x00\x02b\n"
    steps: list[tuple[str, tuple[Any, ...], dict[str, Any], str, str, int, str | None, Any]] = [
        # method, args, kwargs -> HTTP method, URL, status, content type, what gnsq returns
        ("ping", (), {}, "GET", "/ping", 200, TEXT, b"OK"),
        ("info", (), {}, "GET", "/info", 200, JSON, dict),
        ("create_topic", ("w",), {}, "POST", "/topic/create?topic=w", 200, None, b""),
        ("create_channel", ("w", "c"), {}, "POST", "/channel/create?topic=w&channel=c", 200,
         None, b""),
        ("publish", ("w", b"p"), {}, "POST", "/pub?topic=w", 200, TEXT, b"OK"),
        ("publish", ("w", b"d"), {"defer": 5000}, "POST", "/pub?topic=w&defer=5000", 200, TEXT,
         b"OK"),
        ("multipublish", ("w", [b"a", b"b"]), {}, "POST", "/mpub?topic=w", 200, TEXT, b"OK"),
        ("multipublish", ("w", [b"a", b"b\n"]), {"binary": True}, "POST",
         "/mpub?topic=w&binary=true", 200, TEXT, b"OK"),
        ("pause_topic", ("w",), {}, "POST", "/topic/pause?topic=w", 200, None, b""),
        ("unpause_topic", ("w",), {}, "POST", "/topic/unpause?topic=w", 200, None, b""),
        ("pause_channel", ("w", "c"), {}, "POST", "/channel/pause?topic=w&channel=c", 200, None,
         b""),
        ("unpause_channel", ("w", "c"), {}, "POST", "/channel/unpause?topic=w&channel=c", 200,
         None, b""),
        ("empty_channel", ("w", "c"), {}, "POST", "/channel/empty?topic=w&channel=c", 200, None,
         b""),
        ("empty_topic", ("w",), {}, "POST", "/topic/empty?topic=w", 200, None, b""),
        ("stats", (), {}, "GET", "/stats?format=json", 200, JSON, dict),
        ("stats", ("w", "c"), {}, "GET", "/stats?format=json&topic=w&channel=c", 200, JSON, dict),
        ("stats", (), {"text": True}, "GET", "/stats?format=text", 200, TEXT, bytes),
        ("delete_channel", ("w", "c"), {}, "POST", "/channel/delete?topic=w&channel=c", 200,
         None, b""),
        ("delete_topic", ("w",), {}, "POST", "/topic/delete?topic=w", 200, None, b""),
    ]  # fmt: skip
    for name, args, kwargs, method, url, status, content_type, returned in steps:
        before = len(exchanges(nsqd))
        result = await call(getattr(nsqd, name), *args, **kwargs)
        (exchange,) = exchanges(nsqd)[before:]
        assert (exchange.method, exchange.url) == (method, url), name
        assert (exchange.status, exchange.content_type) == (status, content_type), name
        if isinstance(returned, type):
            assert type(result) is returned, name
        else:
            assert result == returned, name
    bodies = {exchange.url: exchange.body for exchange in exchanges(nsqd)}
    assert bodies["/mpub?topic=w"] == b"a\nb"
    assert bodies["/mpub?topic=w&binary=true"] == binary_body
    assert bodies["/pub?topic=w&defer=5000"] == b"d"
    assert "w" not in broker.topics


# -- /ping and /info -------------------------------------------------------------------------------


async def test_ping_and_info(nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker) -> None:
    assert await call(nsqd.ping) == b"OK"
    info = await call(nsqd.info)
    assert broker.addresses.http is not None
    hostname = socket.gethostname()
    assert info == {
        "version": "1.3.0",
        "broadcast_address": broker.server.options.broadcast_address,
        "hostname": hostname,
        "http_port": broker.addresses.http[1],
        "tcp_port": broker.addresses.tcp[1],
        "start_time": int(broker.server.start_time),
        "max_heartbeat_interval": 60_000_000_000,  # Go Durations: nanoseconds
        "max_output_buffer_size": 65536,
        "max_output_buffer_timeout": 30_000_000_000,
        "max_deflate_level": 6,
    }


# -- publishing ----------------------------------------------------------------------------------


async def test_publish_reaches_a_tcp_consumer(
    nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("pub", "c", rdy=10)
    for body in (b"one", b"two words", b"\x00\xff binary\r\n\n"):
        assert await call(nsqd.publish, "pub", body) == b"OK"
    assert await read_bodies(consumer, 3) == [b"one", b"two words", b"\x00\xff binary\r\n\n"]
    assert broker.topics["pub"].message_count == 3


async def test_publish_with_defer_waits_for_the_delay(
    nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("later", "c", rdy=5)
    sent = trio.current_time()
    assert await call(nsqd.publish, "later", b"deferred", defer=600) == b"OK"
    channel = broker.topics["later"].channels["c"]
    assert (len(channel.deferred), channel.depth, len(channel.in_flight)) == (1, 0, 0)
    assert await call(nsqd.publish, "later", b"now", defer=0) == b"OK"
    assert await read_bodies(consumer, 1) == [b"now"]
    _, _, _, body = await consumer.read_message(timeout=5)
    assert body == b"deferred"
    assert trio.current_time() - sent >= 0.6


async def test_multipublish_text(
    nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("mtext", "c", rdy=10)
    messages = [b"first", b"with spaces", b"\x00\xff\t"]
    assert await call(nsqd.multipublish, "mtext", messages) == b"OK"
    assert await read_bodies(consumer, 3) == messages
    assert broker.topics["mtext"].message_count == 3

    # gnsq refuses a newline in text mode before sending anything.
    with pytest.raises(NSQException, match="newlines are not allowed in http multipublish"):
        await call(nsqd.multipublish, "mtext", [b"a", b"b\nc"])
    # An empty message is sent as an empty line, which nsqd skips silently: gnsq says OK.
    before = len(exchanges(nsqd))
    assert await call(nsqd.multipublish, "mtext", [b"x", b"", b"y"]) == b"OK"
    assert [e.body for e in exchanges(nsqd)[before:]] == [b"x\n\ny"]
    assert await read_bodies(consumer, 2) == [b"x", b"y"]
    assert broker.topics["mtext"].message_count == 5
    # No messages at all: an empty body, which nsqd accepts (and creates the topic).
    assert await call(nsqd.multipublish, "mnone", []) == b"OK"
    assert broker.topics["mnone"].message_count == 0


async def test_multipublish_binary(
    nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("mbin", "c", rdy=10)
    messages = [b"line\nbreak", b"\r\n", b"\x00" * 3, b"plain"]
    assert await call(nsqd.multipublish, "mbin", messages, binary=True) == b"OK"
    assert await read_bodies(consumer, 4) == messages
    assert broker.topics["mbin"].message_count == 4


# -- topics and channels ---------------------------------------------------------------------------


async def test_create_and_delete_topic_and_channel(
    nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker
) -> None:
    assert await call(nsqd.create_topic, "admin") == b""
    topic = broker.topics["admin"]
    assert (topic.channels, topic.message_count) == ({}, 0)
    assert await call(nsqd.create_channel, "admin", "c") == b""
    # '#' is percent-encoded by gnsq (urllib3), so nsqd sees the whole name.
    assert await call(nsqd.create_channel, "admin", "tmp#ephemeral") == b""
    assert exchanges(nsqd)[-1].url == "/channel/create?topic=admin&channel=tmp%23ephemeral"
    assert sorted(topic.channels) == ["c", "tmp#ephemeral"]
    assert (topic.channels["c"].ephemeral, topic.channels["tmp#ephemeral"].ephemeral) == (
        False,
        True,
    )
    assert await call(nsqd.create_topic, "admin") == b""  # creating again changes nothing
    assert broker.topics["admin"] is topic
    assert await call(nsqd.delete_channel, "admin", "c") == b""
    assert sorted(topic.channels) == ["tmp#ephemeral"]
    assert await call(nsqd.delete_topic, "admin") == b""
    assert "admin" not in broker.topics


async def test_pause_and_unpause_topic(
    nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("tp", "c", rdy=5)
    topic = broker.topics["tp"]
    assert await call(nsqd.pause_topic, "tp") == b""
    assert topic.paused
    assert await call(nsqd.publish, "tp", b"held") == b"OK"
    await settle()
    assert (topic.depth, topic.channels["c"].depth, len(topic.channels["c"].in_flight)) == (
        1,
        0,
        0,
    )
    assert await call(nsqd.unpause_topic, "tp") == b""
    assert not topic.paused
    assert await read_bodies(consumer, 1) == [b"held"]
    assert topic.depth == 0


async def test_pause_and_unpause_channel(
    nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("cp", "c", rdy=5)
    channel = broker.topics["cp"].channels["c"]
    assert await call(nsqd.pause_channel, "cp", "c") == b""
    assert channel.paused
    assert await call(nsqd.publish, "cp", b"held") == b"OK"
    await settle()
    assert (channel.depth, len(channel.in_flight)) == (1, 0)
    assert await call(nsqd.unpause_channel, "cp", "c") == b""
    assert not channel.paused
    assert await read_bodies(consumer, 1) == [b"held"]


async def test_empty_topic_and_channel(nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker) -> None:
    assert await call(nsqd.create_topic, "em") == b""
    assert await call(nsqd.create_channel, "em", "c") == b""
    assert await call(nsqd.multipublish, "em", [b"1", b"2", b"3"]) == b"OK"
    topic = broker.topics["em"]
    channel = topic.channels["c"]
    assert channel.depth == 3
    assert await call(nsqd.empty_channel, "em", "c") == b""
    assert channel.depth == 0

    assert await call(nsqd.pause_topic, "em") == b""
    assert await call(nsqd.multipublish, "em", [b"4", b"5"]) == b"OK"
    assert (topic.depth, channel.depth) == (2, 0)
    assert await call(nsqd.empty_topic, "em") == b""
    assert (topic.depth, channel.depth, topic.message_count) == (0, 0, 5)


# -- /stats --------------------------------------------------------------------------------------


async def test_stats_json(nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker) -> None:
    assert await call(nsqd.create_topic, "s1") == b""
    assert await call(nsqd.create_channel, "s1", "a") == b""
    assert await call(nsqd.create_channel, "s1", "b") == b""
    assert await call(nsqd.pause_channel, "s1", "b") == b""
    assert await call(nsqd.multipublish, "s1", [b"xy", b"z"]) == b"OK"
    assert await call(nsqd.create_topic, "s2") == b""

    stats = await call(nsqd.stats)
    assert list(stats) == ["version", "health", "start_time", "topics", "memory", "producers"]
    assert (stats["version"], stats["health"]) == ("1.3.0", "OK")
    assert stats["start_time"] == int(broker.server.start_time)
    assert stats["producers"] is None  # HTTP publishers are not TCP clients, as in nsqd
    assert [t["topic_name"] for t in stats["topics"]] == ["s1", "s2"]
    s1 = stats["topics"][0]
    assert (s1["depth"], s1["message_count"], s1["message_bytes"], s1["paused"]) == (
        0,
        2,
        3,
        False,
    )
    assert [(c["channel_name"], c["depth"], c["paused"]) for c in s1["channels"]] == [
        ("a", 2, False),
        ("b", 2, True),
    ]

    only = await call(nsqd.stats, topic="s1", channel="b")
    assert [t["topic_name"] for t in only["topics"]] == ["s1"]
    assert [c["channel_name"] for c in only["topics"][0]["channels"]] == ["b"]
    # gnsq allows a channel filter alone: nsqd then leaves out topics without that channel.
    by_channel = await call(nsqd.stats, channel="a")
    assert [t["topic_name"] for t in by_channel["topics"]] == ["s1"]
    assert [c["channel_name"] for c in by_channel["topics"][0]["channels"]] == ["a"]
    missing = await call(nsqd.stats, topic="nope")
    assert (missing["topics"], missing["producers"]) == (None, None)  # Go's nil slices


async def test_stats_text(nsqd: gnsq.NsqdHTTPClient, broker: RunningBroker) -> None:
    assert await call(nsqd.publish, "txt", b"x") == b"OK"
    assert await call(nsqd.create_channel, "txt", "ch") == b""
    assert await call(nsqd.pause_channel, "txt", "ch") == b""
    assert await call(nsqd.create_topic, "other") == b""

    text = await call(nsqd.stats, text=True)
    assert isinstance(text, bytes)
    assert text.startswith(b"nsqd v1.3.0 ")
    assert b"\nHealth: OK\n" in text
    assert b"\n   [txt            ] depth: 0     be-depth: 0     msgs: 1        e2e%: " in text
    assert re.search(rb"\n   \*P \[ch {23}\] depth: 1     be-depth: 0     inflt: 0 ", text)
    assert b"[other" in text
    assert text.endswith(b"\nProducers: None\n")

    filtered = await call(nsqd.stats, topic="txt", text=True)
    assert b"[txt" in filtered
    assert b"[other" not in filtered


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "status", "message"),
    [
        ("delete_topic", ("missing",), {}, 404, "TOPIC_NOT_FOUND"),
        ("empty_topic", ("missing",), {}, 404, "TOPIC_NOT_FOUND"),
        ("pause_topic", ("missing",), {}, 404, "TOPIC_NOT_FOUND"),
        ("unpause_topic", ("missing",), {}, 404, "TOPIC_NOT_FOUND"),
        ("create_channel", ("missing", "c"), {}, 404, "TOPIC_NOT_FOUND"),
        ("delete_channel", ("exists", "missing"), {}, 404, "CHANNEL_NOT_FOUND"),
        ("empty_channel", ("exists", "missing"), {}, 404, "CHANNEL_NOT_FOUND"),
        ("pause_channel", ("exists", "missing"), {}, 404, "CHANNEL_NOT_FOUND"),
        ("unpause_channel", ("exists", "missing"), {}, 404, "CHANNEL_NOT_FOUND"),
        ("publish", ("exists", b""), {}, 400, "MSG_EMPTY"),
        ("publish", ("exists", b"x"), {"defer": -1}, 400, "INVALID_DEFER"),
        ("publish", ("exists", b"x"), {"defer": 3_600_001}, 400, "INVALID_DEFER"),
        ("multipublish", ("exists", []), {"binary": True}, 413, "BAD_BODY"),
        ("multipublish", ("exists", [b"x", b""]), {"binary": True}, 413, "BAD_MESSAGE"),
    ],
)
async def test_nsqd_errors_raise_nsq_http_error_without_nsqds_message(
    nsqd: gnsq.NsqdHTTPClient,
    broker: RunningBroker,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    status: int,
    message: str,
) -> None:
    assert await call(nsqd.create_topic, "exists") == b""
    with pytest.raises(NSQHttpError) as raised:
        await call(getattr(nsqd, method), *args, **kwargs)
    # gnsq reads the pre-1.0 "status_txt" key, so nsqd v1's message never reaches the
    # exception; it is on the wire all the same.
    assert str(raised.value) == f"http error <{status}>"
    last = exchanges(nsqd)[-1]
    assert (last.status, last.content_type) == (status, JSON)
    assert last.data == b'{"message":"' + message.encode() + b'"}'
    assert list(broker.topics) == ["exists"]
    assert broker.topics["exists"].message_count == 0


@pytest.mark.parametrize(
    ("method", "args", "error"),
    [
        ("publish", ("bad!", b"x"), "invalid topic name"),
        ("multipublish", ("x" * 65, [b"x"]), "invalid topic name"),
        ("create_topic", ("",), "invalid topic name"),
        ("create_channel", ("t", "bad channel"), "invalid channel name"),
        ("stats", ("t", "b@d"), "invalid channel name"),
    ],
)
async def test_invalid_names_are_refused_by_gnsq_before_sending(
    nsqd: gnsq.NsqdHTTPClient,
    broker: RunningBroker,
    method: str,
    args: tuple[Any, ...],
    error: str,
) -> None:
    with pytest.raises(ValueError, match=error):
        await call(getattr(nsqd, method), *args)
    assert exchanges(nsqd) == []
    assert broker.topics == {}


# -- the deprecated Nsqd facade ------------------------------------------------------------------


async def test_deprecated_nsqd_facade_publishes_over_http(
    broker: RunningBroker, connect: Connect
) -> None:
    """gnsq.Nsqd (deprecated) publishes over HTTP while its TCP client is not connected and
    forwards the other calls to its NsqdHTTPClient."""
    assert broker.addresses.http is not None
    host, http_port = broker.addresses.http
    with pytest.warns(DeprecationWarning, match="Use :class:`NsqdTCPClient`"):
        facade = gnsq.Nsqd(address=host, tcp_port=broker.addresses.tcp[1], http_port=http_port)
    try:
        consumer = await connect(broker)
        await consumer.subscribe("facade", "c", rdy=5)
        assert await call(facade.publish, "facade", b"one") == b"OK"
        assert await call(facade.multipublish, "facade", [b"two", b"three"]) == b"OK"
        assert await read_bodies(consumer, 3) == [b"one", b"two", b"three"]
        assert await call(facade.ping) == b"OK"
        assert await call(facade.pause_channel, "facade", "c") == b""
        assert broker.topics["facade"].channels["c"].paused
        assert len(broker.server.clients) == 1  # only the raw consumer: gnsq used no TCP
    finally:
        facade._Nsqd__http_client._connection.close()

"""Small ways trinsq looked unlike nsqd/nsqlookupd: status lines and log lines."""

from __future__ import annotations

import logging
import re
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import hypercorn.protocol
import pytest
import trio
from benchmarks._target import Target, started_broker
from hypercorn.config import Config
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio import serve
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from tests.registry.test_registry import IDENTIFY, V1Peer
from tests.support import RawClient, unused_port
from trinsq import open_broker
from trinsq.broker.core._authstate import AuthError, parse_auth_reply
from trinsq.broker.storage._diskqueue import DiskQueue
from trinsq.common._h11compat import install, reason_phrase
from trinsq.common._httpclient import HttpClientError, HttpTransportError, get_json
from trinsq.common._logging import error_text
from trinsq.registry import open_registry

# -- reason phrases on HTTP/1.1 status lines -------------------------------------------------

MALFORMED = b"GET /ping HTTP/1.1\r\nno colon here\r\n\r\n"  # h11 refuses it: hypercorn's own 400


def request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()


async def whole_answer(address: str, raw_request: bytes) -> bytes:
    """Everything the server sends for ``raw_request`` until it closes the connection."""
    host, port = address.rsplit(":", 1)
    with trio.fail_after(10):
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            await stream.send_all(raw_request)
            data = b""
            while chunk := await stream.receive_some(4096):
                data += chunk
    return data


async def status_line(address: str, raw_request: bytes) -> bytes:
    """The first line the server answers ``raw_request`` (which ends the connection) with."""
    return (await whole_answer(address, raw_request)).partition(b"\r\n")[0]


@pytest.fixture
async def broker_http() -> AsyncIterator[str]:
    async with open_broker() as broker:
        assert broker.http_address is not None
        yield broker.http_address


@pytest.fixture
async def registry_http() -> AsyncIterator[str]:
    async with open_registry() as registry:
        assert registry.http_address is not None
        yield registry.http_address


@pytest.mark.parametrize(
    ("raw_request", "expected"),
    [
        (request("/ping"), b"HTTP/1.1 200 OK"),
        (request("/no/such/path"), b"HTTP/1.1 404 Not Found"),
        (request("/topic/create"), b"HTTP/1.1 405 Method Not Allowed"),
        (request("/stats?topic=%zz"), b"HTTP/1.1 400 Bad Request"),
        (MALFORMED, b"HTTP/1.1 400 Bad Request"),
    ],
)
async def test_broker_status_lines_carry_reason_phrases(
    broker_http: str, raw_request: bytes, expected: bytes
) -> None:
    assert await status_line(broker_http, raw_request) == expected


@pytest.mark.parametrize(
    ("raw_request", "expected"),
    [
        (request("/ping"), b"HTTP/1.1 200 OK"),
        (request("/no/such/path"), b"HTTP/1.1 404 Not Found"),
        (request("/lookup"), b"HTTP/1.1 400 Bad Request"),  # MISSING_ARG_TOPIC
        (MALFORMED, b"HTTP/1.1 400 Bad Request"),
    ],
)
async def test_registry_status_lines_carry_reason_phrases(
    registry_http: str, raw_request: bytes, expected: bytes
) -> None:
    assert await status_line(registry_http, raw_request) == expected


@pytest.mark.parametrize("server", ["broker", "registry"])
async def test_connection_close_is_honoured(
    server: str, broker_http: str, registry_http: str
) -> None:
    """After ``Connection: close`` the server closes, as Go's net/http does (hypercorn under
    quart-trio kept the socket open until the client gave up)."""
    address = broker_http if server == "broker" else registry_http
    answer = await whole_answer(address, request("/ping"))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nOK")


async def test_keep_alive_still_serves_a_second_request(broker_http: str) -> None:
    keep_alive = b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
    answer = await whole_answer(broker_http, keep_alive + request("/ping"))
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2


def test_reason_phrases_are_go_texts() -> None:
    assert [reason_phrase(code) for code in (200, 413, 414, 500)] == [
        "OK",
        "Request Entity Too Large",  # Python 3.13 says "Content Too Large"
        "Request URI Too Long",  # Python says "Request-URI Too Long"
        "Internal Server Error",
    ]
    assert reason_phrase(599) == "status code 599"  # what Go writes for a code it lacks


async def _plain_app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """An ASGI app that is not trinsq's: 200, empty body."""
    if scope["type"] == "lifespan":
        await receive()  # startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_other_hypercorn_servers_in_the_process_are_untouched(
    nursery: trio.Nursery, broker_http: str
) -> None:
    install()  # what the broker's HTTP server does once it needs hypercorn
    installed = vars(hypercorn.protocol)["H11Protocol"]
    install()
    assert vars(hypercorn.protocol)["H11Protocol"] is installed  # idempotent
    assert H11Protocol in installed.__mro__[1:]  # a subclass of it
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    done = trio.Event()
    binds: list[str] = await nursery.start(
        partial(serve, _plain_app, config, shutdown_trigger=done.wait)
    )
    try:
        assert await status_line(binds[0].partition("://")[2], request("/")) == b"HTTP/1.1 200 "
    finally:
        done.set()


# -- log lines in plain words, as nsqd/nsqlookupd write them ----------------------------------

# What a Python repr looks like in a message: ``PeerIdentity(broadcast_address=...``,
# ``BrokenResourceError('...')``, ``{'tcp_port': ...}``.
REPR = re.compile(r"\w\((\w+=|'|\")|\{'")


class _LogWaiter(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@contextmanager
def log_line(logger: str, text: str) -> Iterator[trio.Event]:
    """An event set once ``logger`` logs a message containing ``text``."""
    waiter = _LogWaiter(text)
    logging.getLogger(logger).addHandler(waiter)
    try:
        yield waiter.seen
    finally:
        logging.getLogger(logger).removeHandler(waiter)


async def reset(stream: trio.SocketStream) -> None:
    """Close with a TCP RST, so the server's next read fails with ECONNRESET."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


def local_address(stream: trio.SocketStream) -> str:
    host, port = stream.socket.getsockname()[:2]
    return f"{host}:{port}"


async def test_registry_logs_identify_registrations_and_errors_in_nsqlookupd_words(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trinsq.registry")
    async with open_registry() as registry:
        peer = await V1Peer.connect(registry)
        me = local_address(peer.stream)
        await peer.stream.send_all(b"IDENTIFY\n" + struct.pack(">i", len(IDENTIFY)) + IDENTIFY)
        await peer.response()
        await peer.stream.send_all(b"REGISTER t c\nUNREGISTER t c\nREGISTER t2 c2\nUNREGISTER t2\n")
        assert [await peer.response() for _ in range(4)] == [b"OK"] * 4
        with log_line("trinsq.registry", f"[{me}] connection ended") as ended:
            await reset(peer.stream)
            with trio.fail_after(10):
                await ended.wait()
    lines = [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if me in record.getMessage()
    ]
    assert lines[:10] == [
        ("INFO", f"TCP: new client({me})"),
        ("INFO", f"CLIENT({me}): IDENTIFY Address:b.example TCP:4150 HTTP:4151 Version:1.3.0"),
        ("INFO", f"DB: client({me}) REGISTER category:client key: subkey:"),
        ("INFO", f"DB: client({me}) REGISTER category:channel key:t subkey:c"),
        ("INFO", f"DB: client({me}) REGISTER category:topic key:t subkey:"),
        ("INFO", f"DB: client({me}) UNREGISTER category:channel key:t subkey:c"),
        ("INFO", f"DB: client({me}) REGISTER category:channel key:t2 subkey:c2"),
        ("INFO", f"DB: client({me}) REGISTER category:topic key:t2 subkey:"),
        ("WARNING", f"client({me}) unexpected UNREGISTER category:channel key:t2 subkey:c2"),
        ("INFO", f"DB: client({me}) UNREGISTER category:topic key:t2 subkey:"),
    ]
    # The reset: the error's text, then the registrations the disconnect dropped.
    assert lines[10] == (
        "INFO",
        f"[{me}] connection ended: socket connection broken: [Errno 104] Connection reset by peer",
    )
    assert sorted(lines[11:]) == [
        ("INFO", f"DB: client({me}) UNREGISTER category:client key: subkey:"),
        ("INFO", f"DB: client({me}) UNREGISTER category:topic key:t subkey:"),
    ]
    assert not [message for _, message in lines if REPR.search(message)]


async def test_broker_logs_a_connection_error_as_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trinsq.broker")
    async with open_broker() as broker:
        client = await RawClient.connect(broker)
        me = local_address(client.stream)
        with log_line("trinsq.broker", f"[{me}] disconnected") as disconnected:
            await reset(client.stream)
            with trio.fail_after(10):
                await disconnected.wait()
    assert (
        f"[{me}] connection ended: socket connection broken: [Errno 104] Connection reset by peer"
        in caplog.messages
    )
    assert not [message for message in caplog.messages if REPR.search(message)]


async def test_broker_logs_registry_peer_info_as_nsqd_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trinsq.broker")
    async with open_registry() as registry:
        address = f"{registry.addresses.tcp[0]}:{registry.addresses.tcp[1]}"
        with log_line("trinsq.broker", "peer info") as identified:
            async with open_broker(lookupd_tcp_addresses=[address]):
                with trio.fail_after(10):
                    await identified.wait()
    http_port = registry.addresses.http[1] if registry.addresses.http else 0
    assert (
        f"LOOKUPD({address}): peer info {{TCPPort:{registry.addresses.tcp[1]} "
        f"HTTPPort:{http_port} Version:1.3.0 BroadcastAddress:127.0.0.1}}"
    ) in caplog.messages


def test_errors_without_a_message_read_as_plain_words() -> None:
    assert error_text(trio.TooSlowError()) == "timed out"
    assert error_text(trio.ClosedResourceError()) == "connection closed"
    try:
        try:
            raise ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
        except ssl.SSLError as cause:
            raise trio.BrokenResourceError from cause  # as trio's SSLStream raises it
    except trio.BrokenResourceError as error:
        broken = error
    assert (
        error_text(broken) == "connection broken - [SSL: WRONG_VERSION_NUMBER] wrong version number"
    )


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (["x"], 'unexpected auth reply ["x"]'),
        ({"ttl": "5"}, 'invalid TTL "5" (must be >0)'),
        ({"ttl": 5, "authorizations": ["x"]}, 'unexpected authorization "x"'),
        ({"ttl": 5, "authorizations": [{"topic": 1}]}, "topic must be a string, got 1"),
    ],
)
def test_auth_errors_show_json_not_python_reprs(reply: object, text: str) -> None:
    with pytest.raises(AuthError) as raised:
        parse_auth_reply(reply, 0.0)
    assert str(raised.value) == text


async def test_http_client_errors_read_as_plain_words() -> None:
    port = unused_port()
    with pytest.raises(HttpClientError) as raised:
        await get_json("127.0.0.1", port, "/ping")
    assert str(raised.value).startswith(f"GET 127.0.0.1:{port}/ping - ")
    assert not REPR.search(str(raised.value)), str(raised.value)
    # and says the connection could not be made, for callers that word it themselves
    assert isinstance(raised.value, HttpTransportError)
    assert raised.value.stage == "dial"
    assert isinstance(raised.value.error, OSError)


def test_unreadable_disk_queue_metadata_is_named_not_dumped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "t.diskqueue.meta.dat").write_bytes(b"not\nmetadata\n")
    with caplog.at_level(logging.ERROR, logger="trinsq.broker"):
        DiskQueue("t", str(tmp_path)).close()
    assert caplog.messages == [
        f"DISKQUEUE(t) failed to retrieveMetaData - {tmp_path / 't.diskqueue.meta.dat'} "
        "is not valid metadata"
    ]


# -- the benchmark header names what it measures --------------------------------------------


def test_benchmark_header_tells_a_started_broker_from_a_given_address() -> None:
    started = Target(
        tcp=("127.0.0.1", 4150), http=("127.0.0.1", 4151), pid=7, started="/opt/go/bin/nsqd"
    )
    given = Target(tcp=("10.0.0.2", 4150))
    assert started.describe() == (
        "started a broker (/opt/go/bin/nsqd): TCP 127.0.0.1:4150, HTTP 127.0.0.1:4151, pid 7"
    )
    assert given.describe() == "broker given on the command line: TCP 10.0.0.2:4150"


def test_started_benchmark_target_names_the_command_that_started_it() -> None:
    with started_broker() as target:
        assert target.started.endswith(" -m trinsq broker")
        assert target.describe().startswith(f"started a broker ({target.started}): TCP ")

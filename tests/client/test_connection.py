"""One client connection (trinsq/client/_connection.py) against trinsq's broker over real
sockets: setup and negotiation (TLS with client certificates, snappy, deflate, AUTH),
commands and events, heartbeats answered, a clean CLS, and setup failures."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import trio

from tests.broker.tcp.test_auth import PUBLISH_P, SUBSCRIBE_T_C, AuthServer, grant
from tests.client.support import mutual_tls, until
from tests.tlsutil import CLIENT_COMMON_NAME, Certificates
from trinsq import RunningBroker, open_broker
from trinsq.client import (
    AuthFailedError,
    ClientConfig,
    ConnectError,
    ConnectionClosedError,
    FinFailedError,
    ReqFailedError,
    TouchFailedError,
    UnauthorizedError,
)
from trinsq.client._connection import open_connection, split_address
from trinsq.client._protocol import (
    ErrorReply,
    Event,
    MessageFrame,
    Response,
    encode_fin,
    encode_pub,
    encode_rdy,
    encode_req,
    encode_sub,
    encode_touch,
)


class Events:
    """Collects a connection's events; ``wait_for(n)`` waits until ``n`` have arrived."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = trio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Event]:
        with trio.fail_after(timeout):
            while len(self.events) < count:
                await self._changed.wait()
        return self.events


def broker_client(broker: RunningBroker) -> Any:
    (client,) = broker.server.clients.values()
    return client


async def round_trip(broker: RunningBroker, config: ClientConfig) -> Any:
    """Connect, PUB one message, SUB and receive it, FIN it; return the broker's client."""
    events = Events()
    async with open_connection(broker.tcp_address, config, events) as conn:
        conn.send_nowait(encode_pub("t", b"x" * 5000))
        assert await events.wait_for(1) == [Response(b"OK")]
        conn.send_nowait(encode_sub("t", "c"))
        conn.send_nowait(encode_rdy(1))
        _pub_ok, _sub_ok, message = await events.wait_for(3)
        assert isinstance(message, MessageFrame)
        assert (message.body, message.attempts) == (b"x" * 5000, 1)
        conn.send_nowait(encode_fin(message.id))
        await until(broker, lambda: broker_client(broker).finish_count == 1, what="the FIN")
        return broker_client(broker)


async def test_plain_connection_negotiates_and_carries_commands() -> None:
    async with open_broker() as broker:
        client = await round_trip(broker, ClientConfig(client_id="me", msg_timeout=30))
        assert (client.client_id, client.tls, client.snappy, client.deflate) == (
            "me",
            False,
            False,
            False,
        )
        assert client.user_agent.startswith("trinsq/")
        assert client.settings.msg_timeout_ms == 30_000


async def test_negotiated_settings_are_exposed() -> None:
    async with (
        open_broker(max_rdy_count=300) as broker,
        open_connection(broker.tcp_address, ClientConfig(sample_rate=5), Events()) as conn,
    ):
        negotiated = conn.negotiated
        assert negotiated.feature_negotiation
        assert negotiated.max_rdy_count == 300
        assert negotiated.sample_rate == 5
        assert negotiated.version == "1.3.0"
        assert (negotiated.tls, negotiated.snappy, negotiated.deflate) == (False, False, False)
        assert conn.auth is None


@pytest.mark.parametrize(
    ("config", "layers"),
    [
        (ClientConfig(snappy=True), (False, True, False)),
        (ClientConfig(deflate=True, deflate_level=3), (False, False, True)),
    ],
)
async def test_compression_upgrades(config: ClientConfig, layers: tuple[bool, ...]) -> None:
    async with open_broker() as broker:
        client = await round_trip(broker, config)
        assert (client.tls, client.snappy, client.deflate) == layers


async def test_tls_with_a_client_certificate_and_snappy_over_it(certs: Certificates) -> None:
    options, config = mutual_tls(certs, snappy=True)
    async with open_broker(**options) as broker:
        client = await round_trip(broker, config)
        assert (client.tls, client.snappy, client.tls_common_name) == (
            True,
            True,
            CLIENT_COMMON_NAME,
        )


async def test_tls_verifies_the_server(certs: Certificates) -> None:
    async with open_broker(**certs.broker_options()) as broker:
        with pytest.raises(ConnectError, match="setup failed"):
            async with open_connection(broker.tcp_address, ClientConfig(tls=True), Events()):
                pass  # the system CAs do not know the test CA
        config = ClientConfig(tls=True, tls_verify=False, deflate=True)
        client = await round_trip(broker, config)
        assert (client.tls, client.deflate) == (True, True)


async def test_tls_asked_for_but_not_offered_fails() -> None:
    async with open_broker() as broker:
        with pytest.raises(ConnectError, match="does not offer it"):
            async with open_connection(broker.tcp_address, ClientConfig(tls=True), Events()):
                pass


async def test_auth_when_the_server_requires_it(authd: AuthServer) -> None:
    authd.replies["s3cret"] = grant(SUBSCRIBE_T_C, PUBLISH_P)
    async with open_broker(auth_http_addresses=[authd.address]) as broker:
        config = ClientConfig(auth_secret="s3cret")
        events = Events()
        async with open_connection(broker.tcp_address, config, events) as conn:
            assert conn.negotiated.auth_required
            assert conn.auth is not None
            assert (conn.auth.identity, conn.auth.permission_count) == ("alice", 2)
            conn.send_nowait(encode_pub("not-allowed", b"x"))
            (reply,) = await events.wait_for(1)
            assert isinstance(reply, ErrorReply)
            assert isinstance(reply.error, UnauthorizedError)
            assert await conn.wait_closed() is not None  # E_UNAUTHORIZED is fatal
        assert authd.secrets() == ["s3cret"]
        with pytest.raises(AuthFailedError):
            async with open_connection(broker.tcp_address, ClientConfig(auth_secret="no"), events):
                pass
        with pytest.raises(ConnectError, match="no auth_secret"):
            async with open_connection(broker.tcp_address, ClientConfig(), events):
                pass


async def test_heartbeats_are_answered_and_the_connection_stays_up() -> None:
    async with open_broker() as broker:
        config = ClientConfig(heartbeat_interval=1)
        events = Events()
        async with open_connection(broker.tcp_address, config, events) as conn:
            # nsqd drops a client that is silent for two heartbeat intervals: four heartbeats
            # answered mean the NOPs arrived.
            await until(broker, lambda: conn.heartbeats >= 4, what="four heartbeats")
            assert not conn.closed
            conn.send_nowait(encode_pub("t", b"still here"))
            assert await events.wait_for(1) == [Response(b"OK")]


async def test_fin_req_and_touch_of_unknown_messages_fail_without_closing() -> None:
    unknown = b"0" * 16
    async with open_broker() as broker:
        events = Events()
        async with open_connection(broker.tcp_address, ClientConfig(), events) as conn:
            conn.send_nowait(encode_sub("t", "c"))
            conn.send_nowait(encode_fin(unknown))
            conn.send_nowait(encode_req(unknown, 1))
            conn.send_nowait(encode_touch(unknown))
            conn.send_nowait(encode_pub("t", b"still up"))
            sub_ok, fin, req, touch, pub_ok = await events.wait_for(5)
            assert sub_ok == pub_ok == Response(b"OK")
            kinds = [type(e.error) for e in (fin, req, touch) if isinstance(e, ErrorReply)]
            assert kinds == [FinFailedError, ReqFailedError, TouchFailedError]
            assert not conn.closed


async def test_clean_close_waits_for_close_wait() -> None:
    async with open_broker() as broker:
        events = Events()
        async with open_connection(broker.tcp_address, ClientConfig(), events) as conn:
            conn.send_nowait(encode_sub("t", "c"))
            await events.wait_for(1)
            await conn.cls()
            assert events.events[-1] == Response(b"CLOSE_WAIT")
            conn.close()
            assert await conn.wait_closed() is None
        await until(broker, lambda: not broker.server.clients, what="the client to go")


async def test_connection_lost_is_recorded_and_sends_fail() -> None:
    events = Events()
    async with (
        open_broker() as broker,
        open_connection(broker.tcp_address, ClientConfig(), events) as conn,
    ):
        broker.request_shutdown()
        error = await conn.wait_closed()
        assert error is not None
        assert "closed the connection" in str(error)
        assert conn.closed
        with pytest.raises(ConnectionClosedError, match=broker.tcp_address):
            conn.send_nowait(encode_pub("t", b"x"))


def refused_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
    return f"{host}:{port}"


@pytest.mark.parametrize(
    ("make_address", "match"),
    [(refused_address, "cannot connect"), (lambda: "nonsense", "host:port")],
)
async def test_setup_failures(make_address: Callable[[], str], match: str) -> None:
    with pytest.raises((ConnectError, ValueError), match=match):
        async with open_connection(make_address(), ClientConfig(), Events()):
            pass


async def test_dial_timeout_when_the_backlog_is_full() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = "{}:{}".format(*listener.getsockname())
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:  # fill the backlog, without waiting
                filler.setblocking(False)
                filler.connect_ex(split_address(address))
            config = ClientConfig(dial_timeout=0.2)
            with pytest.raises(ConnectError, match="within"):
                async with open_connection(address, config, Events()):
                    pass
        finally:
            for filler in fillers:
                filler.close()

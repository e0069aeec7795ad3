"""TLS: the IDENTIFY upgrade on the TCP protocol, --tls-required, client certificates, HTTPS.

Certificates come from trustme: a CA, a server certificate for 127.0.0.1, client certificates
signed by that CA and by another one.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from tests.tlsutil import (
    OK_FRAME,
    Certificates,
    Wire,
    broker_until,
    make_certificates,
    pynsq_round_trip,
    pynsq_tls_options,
)
from trinsq import RunningBroker, open_broker


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def wires() -> AsyncIterator[list[Wire]]:
    """Connections to close after the test."""
    opened: list[Wire] = []
    try:
        yield opened
    finally:
        for wire in opened:
            await wire.aclose()


async def connect(broker: RunningBroker, wires: list[Wire]) -> Wire:
    wire = await Wire.connect(broker)
    wires.append(wire)
    return wire


async def tls_client(
    broker: RunningBroker, wires: list[Wire], certs: Certificates, **identify: Any
) -> Wire:
    """A connection upgraded to TLS (the OK after the handshake already read)."""
    wire = await connect(broker, wires)
    reply = await wire.identify(tls_v1=True, **identify)
    assert reply["tls_v1"] is True
    await wire.start_tls(certs.client_context())
    await wire.expect_response(b"OK")
    return wire


# -- the upgrade, byte by byte ---------------------------------------------------------------------


async def test_tls_upgrade_bytes(certs: Certificates, wires: list[Wire]) -> None:
    async with open_broker(**certs.broker_options()) as broker:
        wire = await connect(broker, wires)
        reply = await wire.identify(tls_v1=True)
        # The JSON reply came in the clear, off the plain socket.
        assert wire.received[4:9] == b"\x00\x00\x00\x00{"
        assert b'"tls_v1":true' in wire.received
        assert (reply["tls_v1"], reply["snappy"], reply["deflate"]) == (True, False, False)
        await wire.start_tls(certs.client_context())
        assert isinstance(wire.stream, trio.SSLStream)
        # The first thing over TLS is exactly the OK frame.
        assert await wire.read_frame() == (0, b"OK")
        assert bytes(wire.received) == OK_FRAME
        assert bytes.fromhex("00 00 00 06 00 00 00 00 4F 4B") == OK_FRAME

        # Commands and messages flow over TLS.
        consumer = await tls_client(broker, wires, certs)
        await consumer.send(b"SUB secure c\n")
        await consumer.expect_response(b"OK")
        await consumer.send(b"RDY 1\n")
        await wire.pub("secure", b"over tls")
        await wire.expect_response(b"OK")
        attempts, _id, data = await consumer.read_message()
        assert (attempts, data) == (1, b"over tls")

        # The broker knows the connection is TLS (nsqd's /stats fields).
        clients = list(broker.server.clients.values())
        assert len(clients) == 2
        assert all(client.tls for client in clients)
        assert {client.tls_version for client in clients} <= {"TLS1.2", "TLS1.3"}
        assert all(client.tls_cipher_suite for client in clients)


async def test_tls_not_configured_means_no_upgrade(wires: list[Wire]) -> None:
    async with open_broker() as broker:
        wire = await connect(broker, wires)
        reply = await wire.identify(tls_v1=True)
        assert reply["tls_v1"] is False
        # Nothing else follows the JSON: the next bytes answer the next command, in clear.
        wire.received.clear()
        await wire.pub("plain", b"x")
        await wire.expect_response(b"OK")
        assert bytes(wire.received) == OK_FRAME


async def test_tls_handshake_with_untrusting_client_closes(
    certs: Certificates, wires: list[Wire]
) -> None:
    """A client that rejects the server certificate aborts the handshake; the broker drops the
    connection and keeps serving."""
    async with open_broker(**certs.broker_options()) as broker:
        wire = await connect(broker, wires)
        await wire.identify(tls_v1=True)
        with pytest.raises(trio.BrokenResourceError):
            await wire.start_tls(ssl.create_default_context())  # does not trust the test CA
        await wire.aclose()
        await broker_until(broker, lambda: not broker.server.clients, what="the drop")
        await tls_client(broker, wires, certs)


async def test_default_min_version_starts_without_warnings(certs: Certificates) -> None:
    # nsqd's default minimum is TLS 1.0, which Python deprecates; warnings are errors here.
    async with open_broker(**certs.broker_options()) as broker:
        assert broker.server.options.tls_min_version == "tls1.0"
        assert broker.server.ssl_context is not None


async def test_min_version_tls13_refuses_a_tls12_client(
    certs: Certificates, wires: list[Wire]
) -> None:
    async with open_broker(**certs.broker_options(tls_min_version="tls1.3")) as broker:
        old_client = certs.client_context()
        old_client.maximum_version = ssl.TLSVersion.TLSv1_2
        wire = await connect(broker, wires)
        await wire.identify(tls_v1=True)
        with pytest.raises(trio.BrokenResourceError):
            await wire.start_tls(old_client)
        secure = await tls_client(broker, wires, certs)
        assert isinstance(secure.stream, trio.SSLStream)
        assert secure.stream.version() == "TLSv1.3"
        versions = [client.tls_version for client in broker.server.clients.values()]
        assert "TLS1.3" in versions


# -- --tls-required --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["true", "tcp-https"])
async def test_tls_required_rejects_plain_commands(
    certs: Certificates, wires: list[Wire], mode: str
) -> None:
    async with open_broker(**certs.broker_options(tls_required=mode)) as broker:
        plain = await connect(broker, wires)
        await plain.send(b"SUB t c\n")
        await plain.expect_error(b"E_INVALID cannot SUB in current state (TLS required)")
        await plain.expect_closed()

        # IDENTIFY without TLS is allowed, the next command is not.
        identified = await connect(broker, wires)
        reply = await identified.identify()
        assert reply["tls_v1"] is False
        await identified.pub("t", b"x")
        await identified.expect_error(b"E_INVALID cannot PUB in current state (TLS required)")
        await identified.expect_closed()

        # The same SUB over TLS works.
        secure = await tls_client(broker, wires, certs)
        await secure.send(b"SUB t c\n")
        await secure.expect_response(b"OK")
        await secure.pub("t", b"x")
        await secure.expect_response(b"OK")


async def test_tls_required_true_http_answers_403_and_https_works(certs: Certificates) -> None:
    async with open_broker(**certs.broker_options(tls_required="true")) as broker:
        assert broker.addresses.https is not None
        https_host, https_port = broker.addresses.https
        async with httpx.AsyncClient() as plain:
            for method, path in [("GET", "/ping"), ("POST", "/pub?topic=t"), ("GET", "/stats")]:
                reply = await plain.request(method, f"http://{broker.http_address}{path}")
                assert reply.status_code == 403
                assert reply.text == f'{{"message": "TLS_REQUIRED", "https_port": {https_port}}}'
        async with httpx.AsyncClient(verify=certs.client_context()) as secure:
            base = f"https://{https_host}:{https_port}"
            assert (await secure.get(f"{base}/ping")).text == "OK"
            assert (await secure.post(f"{base}/pub?topic=t", content=b"hello")).text == "OK"
        assert broker.topics["t"].message_count == 1


async def test_tls_required_tcp_https_leaves_plain_http_open(certs: Certificates) -> None:
    async with open_broker(**certs.broker_options(tls_required="tcp-https")) as broker:
        assert broker.addresses.https is not None
        https_host, https_port = broker.addresses.https
        async with httpx.AsyncClient() as plain:
            reply = await plain.get(f"http://{broker.http_address}/ping")
            assert (reply.status_code, reply.text) == (200, "OK")
            reply = await plain.post(f"http://{broker.http_address}/pub?topic=t", content=b"x")
            assert (reply.status_code, reply.text) == (200, "OK")
        async with httpx.AsyncClient(verify=certs.client_context()) as secure:
            assert (await secure.get(f"https://{https_host}:{https_port}/ping")).text == "OK"


async def test_https_serves_alongside_http_by_default(certs: Certificates) -> None:
    async with open_broker(**certs.broker_options()) as broker:
        assert broker.addresses.https is not None
        https_host, https_port = broker.addresses.https
        async with httpx.AsyncClient() as plain:
            assert (await plain.get(f"http://{broker.http_address}/ping")).text == "OK"
        async with httpx.AsyncClient(verify=certs.client_context()) as secure:
            reply = await secure.get(f"https://{https_host}:{https_port}/stats?format=json")
            assert reply.status_code == 200
            assert reply.json()["health"] == "OK"


async def test_no_https_listener_without_tls() -> None:
    async with open_broker() as broker:
        assert broker.addresses.https is None


# -- client certificates ---------------------------------------------------------------------------


async def _handshake_refused(broker: RunningBroker, wires: list[Wire], context: Any) -> None:
    """The handshake fails, or (TLS 1.3: the server checks the client certificate after the
    client has finished) the connection breaks before the OK."""
    wire = await connect(broker, wires)
    await wire.identify(tls_v1=True)

    async def handshake_and_read() -> None:
        await wire.start_tls(context)
        await wire.read_frame()

    with pytest.raises((trio.BrokenResourceError, EOFError)):
        await handshake_and_read()


async def test_require_verify_rejects_clients_without_a_ca_signed_certificate(
    certs: Certificates, wires: list[Wire]
) -> None:
    options = certs.broker_options(
        tls_client_auth_policy="require-verify", tls_root_ca_file=certs.ca_file
    )
    async with open_broker(**options) as broker:
        # A policy implies --tls-required (nsqd New()).
        assert broker.server.options.tls_required == "true"
        await _handshake_refused(broker, wires, certs.client_context())
        await _handshake_refused(broker, wires, certs.client_context(cert=certs.foreign_client))

        wire = await connect(broker, wires)
        await wire.identify(tls_v1=True)
        await wire.start_tls(certs.client_context(cert=certs.client))
        await wire.expect_response(b"OK")
        await wire.pub("t", b"signed")
        await wire.expect_response(b"OK")
        (client,) = broker.server.clients.values()
        assert client.tls_common_name == "trinsq-test-client"


async def test_require_policy_also_needs_a_certificate(
    certs: Certificates, wires: list[Wire]
) -> None:
    options = certs.broker_options(tls_client_auth_policy="require", tls_root_ca_file=certs.ca_file)
    async with open_broker(**options) as broker:
        await _handshake_refused(broker, wires, certs.client_context())
        wire = await connect(broker, wires)
        await wire.identify(tls_v1=True)
        await wire.start_tls(certs.client_context(cert=certs.client))
        await wire.expect_response(b"OK")


# -- pynsq -----------------------------------------------------------------------------------------


@pytest.mark.interop
async def test_pynsq_over_tls(certs: Certificates) -> None:
    async with open_broker(**certs.broker_options(tls_required="tcp-https")) as broker:
        trip = await pynsq_round_trip(broker, "tls", **pynsq_tls_options(certs))
        assert trip.bodies == [b"one", b"three" * 1000, b"two"]
        assert trip.layers == [(True, False, False)] * 2
        assert broker.topics["tls"].channels["c"].message_count == 3


@pytest.mark.interop
async def test_pynsq_with_a_client_certificate(certs: Certificates) -> None:
    options = certs.broker_options(
        tls_client_auth_policy="require-verify", tls_root_ca_file=certs.ca_file
    )
    async with open_broker(**options) as broker:
        trip = await pynsq_round_trip(broker, "tls", **pynsq_tls_options(certs, client_cert=True))
        assert trip.bodies == [b"one", b"three" * 1000, b"two"]
        assert trip.layers == [(True, False, False)] * 2

"""trinsq's optional protection of the HTTP admin endpoints (not in nsqd; off by default).

--http-admin-token demands ``Authorization: Bearer <token>`` on every call that changes the
broker except publishing; --http-admin-client-cert moves those calls to HTTPS with a client
certificate signed by --tls-root-ca-file.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.tlsutil import Certificates, make_certificates
from trinsq import RunningBroker, open_broker
from trinsq.broker import OptionError

TOKEN = "s3cret-token"

# (method, path, body): every call the protection covers.
ADMIN_CALLS = [
    ("POST", "/topic/create?topic=a", None),
    ("POST", "/topic/pause?topic=a", None),
    ("POST", "/topic/unpause?topic=a", None),
    ("POST", "/topic/empty?topic=a", None),
    ("POST", "/channel/create?topic=a&channel=c", None),
    ("POST", "/channel/pause?topic=a&channel=c", None),
    ("POST", "/channel/unpause?topic=a&channel=c", None),
    ("POST", "/channel/empty?topic=a&channel=c", None),
    ("POST", "/channel/delete?topic=a&channel=c", None),
    ("PUT", "/config/nsqlookupd_tcp_addresses", b"[]"),
    ("POST", "/debug/freememory", None),
    ("POST", "/topic/delete?topic=a", None),
]
# Calls that stay open: publishing, reading state, health.
OPEN_CALLS = [
    ("POST", "/pub?topic=a", b"hello"),
    ("POST", "/mpub?topic=a", b"one\ntwo"),
    ("GET", "/stats?format=json", None),
    ("GET", "/ping", None),
    ("GET", "/info", None),
    ("GET", "/config/nsqlookupd_tcp_addresses", None),
]
UNAUTHORIZED = '{"message":"UNAUTHORIZED"}'
CLIENT_CERT_REQUIRED = '{"message":"CLIENT_CERT_REQUIRED"}'


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("admin"))


@asynccontextmanager
async def http_to(broker: RunningBroker, **client: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{broker.http_address}", **client) as http:
        yield http


@asynccontextmanager
async def https_to(
    broker: RunningBroker, context: ssl.SSLContext
) -> AsyncIterator[httpx.AsyncClient]:
    assert broker.addresses.https is not None
    host, port = broker.addresses.https
    async with httpx.AsyncClient(base_url=f"https://{host}:{port}", verify=context) as http:
        yield http


async def call(
    http: httpx.AsyncClient, method: str, path: str, content: bytes | None, **kwargs: Any
) -> httpx.Response:
    return await http.request(method, path, content=content, **kwargs)


async def test_without_the_option_nothing_is_required() -> None:
    async with open_broker() as broker, http_to(broker) as http:
        for method, path, content in ADMIN_CALLS + OPEN_CALLS:
            reply = await call(http, method, path, content)
            assert reply.status_code == 200, (path, reply.text)


async def test_admin_token() -> None:
    async with open_broker(http_admin_token=TOKEN) as broker, http_to(broker) as http:
        for method, path, content in ADMIN_CALLS:
            for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]:
                reply = await call(http, method, path, content, headers=headers)
                assert (reply.status_code, reply.text) == (401, UNAUTHORIZED), (path, headers)
            good = {"Authorization": f"Bearer {TOKEN}"}
            reply = await call(http, method, path, content, headers=good)
            assert reply.status_code == 200, (path, reply.text)
        for method, path, content in OPEN_CALLS:
            reply = await call(http, method, path, content)
            assert reply.status_code == 200, (path, reply.text)
        assert broker.topics["a"].message_count == 3


async def test_refused_admin_calls_change_nothing() -> None:
    async with open_broker(http_admin_token=TOKEN) as broker, http_to(broker) as http:
        assert (await http.post("/topic/create?topic=kept")).status_code == 401
        assert "kept" not in broker.topics
        assert (await http.post("/pub?topic=kept", content=b"x")).status_code == 200
        assert (await http.post("/topic/delete?topic=kept")).status_code == 401
        assert (await http.post("/topic/pause?topic=kept")).status_code == 401
        assert broker.topics["kept"].message_count == 1
        assert not broker.topics["kept"].paused


async def test_client_cert_required_for_admin_calls(certs: Certificates) -> None:
    options = certs.broker_options(http_admin_client_cert=True, tls_root_ca_file=certs.ca_file)
    async with open_broker(**options) as broker:
        async with http_to(broker) as http:
            for method, path, content in ADMIN_CALLS:
                reply = await call(http, method, path, content)
                assert (reply.status_code, reply.text) == (403, CLIENT_CERT_REQUIRED), path
            for method, path, content in OPEN_CALLS:
                reply = await call(http, method, path, content)
                assert reply.status_code == 200, (path, reply.text)
        async with https_to(broker, certs.client_context(cert=certs.client)) as https:
            for method, path, content in ADMIN_CALLS + OPEN_CALLS:
                reply = await call(https, method, path, content)
                assert reply.status_code == 200, (path, reply.text)
        for context in [certs.client_context(), certs.client_context(cert=certs.foreign_client)]:
            async with https_to(broker, context) as https:
                with pytest.raises(httpx.TransportError):
                    await https.get("/ping")
        # TCP TLS upgrades do not need a client certificate (no --tls-client-auth-policy).
        assert broker.server.ssl_context is not None
        assert broker.server.ssl_context.verify_mode == ssl.CERT_NONE


async def test_token_and_client_cert_together(certs: Certificates) -> None:
    options = certs.broker_options(
        http_admin_client_cert=True, tls_root_ca_file=certs.ca_file, http_admin_token=TOKEN
    )
    async with open_broker(**options) as broker:
        async with https_to(broker, certs.client_context(cert=certs.client)) as https:
            reply = await https.post("/topic/create?topic=a")
            assert (reply.status_code, reply.text) == (401, UNAUTHORIZED)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            reply = await https.post("/topic/create?topic=a", headers=headers)
            assert reply.status_code == 200
        async with http_to(broker) as http:
            reply = await http.post("/topic/create?topic=a", headers=headers)
            assert (reply.status_code, reply.text) == (403, CLIENT_CERT_REQUIRED)


async def test_client_cert_option_needs_tls() -> None:
    with pytest.raises(
        OptionError, match="--http-admin-client-cert needs --tls-cert and --tls-key"
    ):
        async with open_broker(http_admin_client_cert=True):
            pass

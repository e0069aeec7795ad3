"""AUTH against an nsq auth server (--auth-http-address), and nsqd's CheckAuth on SUB and the
publishing commands.

The auth server is a small raw-socket HTTP server in the test's own Trio run: it answers
``GET /auth`` with the JSON configured per secret and records every request's query.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import nsq
import pytest
import trio

from tests.interop.pynsq_harness import Session, pynsq_against
from tests.support import body, mpub_body
from tests.tlsutil import CLIENT_COMMON_NAME, Certificates, Wire, make_certificates
from trinsq import RunningBroker, open_broker

HANG: Final = "hang"  # a reply spec: accept the request, answer nothing until released


@dataclass(frozen=True)
class AuthRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class AuthServer:
    """An nsq auth server. ``replies`` maps a secret to a JSON reply (status 200; bytes are
    sent as they are), a ``(status, payload)`` pair, or :data:`HANG`; unknown secrets get 403."""

    address: str = ""
    replies: dict[str, Any] = field(default_factory=dict)
    requests: list[AuthRequest] = field(default_factory=list)
    release: trio.Event = field(default_factory=trio.Event)
    _changed: trio.Event = field(default_factory=trio.Event)

    def secrets(self) -> list[str]:
        return [request.query["secret"] for request in self.requests]

    async def wait_for_requests(self, count: int) -> None:
        with trio.fail_after(5):
            while len(self.requests) < count:
                await self._changed.wait()

    async def handle(self, stream: trio.SocketStream) -> None:
        try:
            async with stream:
                await self._serve(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the broker gave up on us

    async def _serve(self, stream: trio.SocketStream) -> None:
        data = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                data += chunk
        line, *header_lines = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
        method, target, _version = line.split(" ")
        url = urlsplit(target)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        query = dict(pairs)
        assert len(query) == len(pairs), f"repeated query parameters: {pairs}"
        headers = {}
        for header in header_lines:
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.requests.append(AuthRequest(method, url.path, query, headers))
        self._changed.set()
        self._changed = trio.Event()
        reply = self.replies.get(query.get("secret", ""), (403, {"message": "FORBIDDEN"}))
        if reply == HANG:
            await self.release.wait()
            return  # close without an answer
        status, payload = reply if isinstance(reply, tuple) else (200, reply)
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\nConnection: close\r\n\r\n"
        )
        await stream.send_all(head.encode() + content)


@pytest.fixture
async def authd() -> AsyncIterator[AuthServer]:
    server = AuthServer()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        host, port = listeners[0].socket.getsockname()[:2]
        server.address = f"{host}:{port}"
        yield server
        server.release.set()
        nursery.cancel_scope.cancel()


@pytest.fixture
async def wires() -> AsyncIterator[list[Wire]]:
    opened: list[Wire] = []
    try:
        yield opened
    finally:
        for wire in opened:
            await wire.aclose()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("auth"))


def grant(
    *authorizations: tuple[str, list[str], list[str]],
    ttl: int = 3600,
    identity: str = "alice",
    identity_url: str = "https://auth.example/alice",
) -> dict[str, Any]:
    """An auth server reply granting ``(topic regex, channel regexes, permissions)``."""
    return {
        "ttl": ttl,
        "identity": identity,
        "identity_url": identity_url,
        "authorizations": [
            {"topic": topic, "channels": channels, "permissions": permissions}
            for topic, channels, permissions in authorizations
        ],
    }


SUBSCRIBE_T_C = ("^t$", ["^c$"], ["subscribe"])
PUBLISH_P = ("^p", [".*"], ["publish"])


def auth_broker(authd: AuthServer, **options: Any) -> Any:
    options.setdefault("http_client_request_timeout", 5.0)
    return open_broker(auth_http_addresses=[authd.address], **options)


async def connect(broker: RunningBroker, wires: list[Wire]) -> Wire:
    wire = await Wire.connect(broker)
    wires.append(wire)
    return wire


async def send_auth(wire: Wire, secret: str) -> None:
    await wire.send(b"AUTH\n" + body(secret.encode()))


async def authed(broker: RunningBroker, wires: list[Wire], secret: str) -> Wire:
    """A connection whose AUTH succeeded."""
    wire = await connect(broker, wires)
    await send_auth(wire, secret)
    frame_type, data = await wire.read_frame()
    assert frame_type == 0, data
    assert json.loads(data)["permission_count"] > 0
    return wire


async def refused(wire: Wire, command: bytes, error: bytes) -> None:
    """``command`` is answered with the fatal ``error`` and the connection closes."""
    await wire.send(command)
    await wire.expect_error(error)
    await wire.expect_closed()


# -- AUTH itself -----------------------------------------------------------------------------------


async def test_identify_says_auth_is_required(authd: AuthServer, wires: list[Wire]) -> None:
    async with auth_broker(authd) as broker:
        reply = await (await connect(broker, wires)).identify()
        assert reply["auth_required"] is True
    async with open_broker() as broker:
        reply = await (await connect(broker, wires)).identify()
        assert reply["auth_required"] is False


async def test_auth_reply_and_the_query_sent_to_the_auth_server(
    authd: AuthServer, wires: list[Wire]
) -> None:
    authd.replies["s3cret"] = grant(SUBSCRIBE_T_C, PUBLISH_P)
    async with auth_broker(authd) as broker:
        wire = await connect(broker, wires)
        await send_auth(wire, "s3cret")
        # nsqd's AUTH response: exactly these keys, in this order, compact JSON.
        await wire.expect_response(
            b'{"identity":"alice","identity_url":"https://auth.example/alice","permission_count":2}'
        )
        (request,) = authd.requests
        assert (request.method, request.path) == ("GET", "/auth")
        assert request.query == {
            "common_name": "",
            "remote_ip": "127.0.0.1",
            "secret": "s3cret",
            "tls": "false",
        }
        assert request.headers["accept"] == "application/vnd.nsq; version=1.0"
        await wire.send(b"SUB t c\n")
        await wire.expect_response(b"OK")


async def test_auth_secret_is_sent_verbatim_url_encoded(
    authd: AuthServer, wires: list[Wire]
) -> None:
    secret = "a b&c=d/é%"
    authd.replies[secret] = grant(PUBLISH_P)
    async with auth_broker(authd) as broker:
        await authed(broker, wires, secret)
        assert authd.secrets() == [secret]


async def test_zero_authorizations(authd: AuthServer, wires: list[Wire]) -> None:
    authd.replies["nobody"] = grant()
    async with auth_broker(authd) as broker:
        wire = await connect(broker, wires)
        await refused(
            wire, b"AUTH\n" + body(b"nobody"), b"E_UNAUTHORIZED AUTH no authorizations found"
        )


async def test_auth_twice(authd: AuthServer, wires: list[Wire]) -> None:
    authd.replies["s"] = grant(PUBLISH_P)
    async with auth_broker(authd) as broker:
        wire = await authed(broker, wires, "s")
        await refused(wire, b"AUTH\n" + body(b"s"), b"E_INVALID AUTH already set")
        assert len(authd.requests) == 1


async def test_auth_after_sub(authd: AuthServer, wires: list[Wire]) -> None:
    authd.replies["s"] = grant(SUBSCRIBE_T_C)
    async with auth_broker(authd) as broker:
        wire = await authed(broker, wires, "s")
        await wire.send(b"SUB t c\n")
        await wire.expect_response(b"OK")
        await refused(wire, b"AUTH\n" + body(b"s"), b"E_INVALID cannot AUTH in current state")


async def test_auth_disabled(wires: list[Wire]) -> None:
    async with open_broker() as broker:
        wire = await connect(broker, wires)
        await refused(wire, b"AUTH\n" + body(b"s"), b"E_AUTH_DISABLED AUTH disabled")
        # Without auth nothing is checked.
        other = await connect(broker, wires)
        await other.send(b"SUB t c\n")
        await other.expect_response(b"OK")


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param((500, {"message": "INTERNAL_ERROR"}), id="status-500"),
        pytest.param((403, {"message": "FORBIDDEN"}), id="status-403"),
        pytest.param(grant(PUBLISH_P, ttl=0), id="ttl-0"),
        pytest.param(grant(("t", [".*"], ["admin"])), id="unknown-permission"),
        pytest.param(grant(("(", [".*"], ["publish"])), id="bad-topic-regex"),
        pytest.param(grant(("t", ["["], ["publish"])), id="bad-channel-regex"),
        pytest.param(["not", "an", "object"], id="not-an-object"),
    ],
)
async def test_unusable_auth_replies_fail_auth(
    authd: AuthServer, wires: list[Wire], reply: Any
) -> None:
    authd.replies["s"] = reply
    async with auth_broker(authd) as broker:
        wire = await connect(broker, wires)
        await refused(wire, b"AUTH\n" + body(b"s"), b"E_AUTH_FAILED AUTH failed")


async def test_a_too_deep_auth_reply_fails_auth_without_a_traceback(
    authd: AuthServer, wires: list[Wire], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    authd.replies["s"] = b"[" * 100_000
    async with auth_broker(authd) as broker:
        wire = await connect(broker, wires)
        await refused(wire, b"AUTH\n" + body(b"s"), b"E_AUTH_FAILED AUTH failed")
        assert any(
            message.endswith(
                "/auth?common_name=&remote_ip=127.0.0.1&secret=s&tls=false - "
                "invalid JSON - exceeded max depth"
            )
            for message in caplog.messages
        ), caplog.messages
        authd.replies["t"] = grant(PUBLISH_P)
        await authed(broker, wires, "t")  # the next client is served as ever
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


# -- CheckAuth -------------------------------------------------------------------------------------


async def test_commands_before_auth(authd: AuthServer, wires: list[Wire]) -> None:
    async with auth_broker(authd) as broker:
        for command, name in [
            (b"SUB t c\n", b"SUB"),
            (b"PUB t\n" + body(b"x"), b"PUB"),
            (b"MPUB t\n" + mpub_body([b"x"]), b"MPUB"),
            (b"DPUB t 10\n" + body(b"x"), b"DPUB"),
        ]:
            wire = await connect(broker, wires)
            await refused(wire, command, b"E_AUTH_FIRST AUTH required before " + name)
        assert authd.requests == []


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"SUB t other\n", b'E_UNAUTHORIZED AUTH failed for SUB on "t" "other"'),
        (b"SUB tt c\n", b'E_UNAUTHORIZED AUTH failed for SUB on "tt" "c"'),
        # subscribe permission only: publishing to t is refused (channel "")
        (b"PUB t\n" + body(b"x"), b'E_UNAUTHORIZED AUTH failed for PUB on "t" ""'),
        (b"MPUB t\n" + mpub_body([b"x"]), b'E_UNAUTHORIZED AUTH failed for MPUB on "t" ""'),
        (b"DPUB t 5\n" + body(b"x"), b'E_UNAUTHORIZED AUTH failed for DPUB on "t" ""'),
        # publish permission only: subscribing to p... is refused
        (b"SUB pub c\n", b'E_UNAUTHORIZED AUTH failed for SUB on "pub" "c"'),
    ],
)
async def test_unauthorized_commands(
    authd: AuthServer, wires: list[Wire], command: bytes, error: bytes
) -> None:
    authd.replies["s"] = grant(SUBSCRIBE_T_C, PUBLISH_P)
    async with auth_broker(authd) as broker:
        wire = await authed(broker, wires, "s")
        await refused(wire, command, error)


async def test_authorized_commands(authd: AuthServer, wires: list[Wire]) -> None:
    authd.replies["s"] = grant(SUBSCRIBE_T_C, PUBLISH_P)
    async with auth_broker(authd) as broker:
        producer = await authed(broker, wires, "s")
        for command in [
            b"PUB p1\n" + body(b"x"),
            b"MPUB pub\n" + mpub_body([b"y", b"z"]),
            b"DPUB p.deferred 10\n" + body(b"w"),
        ]:
            await producer.send(command)
            await producer.expect_response(b"OK")
        consumer = await authed(broker, wires, "s")
        await consumer.send(b"SUB t c\n")
        await consumer.expect_response(b"OK")
        assert len(authd.requests) == 2  # cached: one query per AUTH
        assert broker.topics["pub"].message_count == 2


async def test_patterns_are_unanchored_and_publish_needs_an_empty_channel_match(
    authd: AuthServer, wires: list[Wire]
) -> None:
    """Go's MatchString semantics: "ok" matches "look"; a publish is checked against channel
    "", so a channel pattern like "^c$" does not allow publishing."""
    authd.replies["s"] = grant(("ok", ["b"], ["subscribe", "publish"]))
    async with auth_broker(authd) as broker:
        wire = await authed(broker, wires, "s")
        await wire.send(b"SUB look abc\n")
        await wire.expect_response(b"OK")
        publisher = await authed(broker, wires, "s")
        await refused(
            publisher,
            b"PUB look\n" + body(b"x"),
            b'E_UNAUTHORIZED AUTH failed for PUB on "look" ""',
        )
        authd.replies["any"] = grant(("ok", ["^$"], ["publish"]))
        publisher = await authed(broker, wires, "any")
        await publisher.pub("look", b"x")
        await publisher.expect_response(b"OK")


async def test_auth_and_sub_pipelined_in_one_write(authd: AuthServer, wires: list[Wire]) -> None:
    """Commands behind AUTH wait for its answer and then run in order."""
    authd.replies["s"] = grant(SUBSCRIBE_T_C)
    async with auth_broker(authd) as broker:
        wire = await connect(broker, wires)
        await wire.send(b"AUTH\n" + body(b"s") + b"SUB t c\nRDY 1\n")
        frame_type, data = await wire.read_frame()
        assert (frame_type, json.loads(data)["identity"]) == (0, "alice")
        await wire.expect_response(b"OK")
        producer = await connect(broker, wires)  # may not publish: no AUTH
        await refused(producer, b"PUB t\n" + body(b"x"), b"E_AUTH_FIRST AUTH required before PUB")


# -- expiry ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("second", "outcome"),
    [
        pytest.param(grant(("^t$", [""], ["publish"]), ttl=1), b"OK", id="still-allowed"),
        pytest.param(
            grant(("^other$", [""], ["publish"])),
            b'E_UNAUTHORIZED AUTH failed for PUB on "t" ""',
            id="now-denied",
        ),
        pytest.param((500, {"message": "oops"}), b"E_AUTH_FAILED AUTH failed", id="server-error"),
        pytest.param(
            grant(),
            b'E_UNAUTHORIZED AUTH failed for PUB on "t" ""',
            id="no-authorizations-left",
        ),
    ],
)
async def test_expired_authorization_is_queried_again(
    authd: AuthServer, wires: list[Wire], second: Any, outcome: bytes
) -> None:
    """nsqd's IsAuthorized: once now > fetched + ttl, the next check asks the auth server
    again and its answer decides. (With no authorizations left, nsqd's CheckAuth has already
    passed its HasAuthorizations test, so the answer is E_UNAUTHORIZED, not E_AUTH_FIRST.)"""
    authd.replies["s"] = grant(("^t$", [""], ["publish"]), ttl=1)
    async with auth_broker(authd) as broker:
        wire = await authed(broker, wires, "s")
        await wire.pub("t", b"1")
        await wire.expect_response(b"OK")
        assert len(authd.requests) == 1  # within the ttl: the cached answer
        authd.replies["s"] = second
        await trio.sleep(1.1)  # the ttl must really pass
        await wire.pub("t", b"2")
        if outcome == b"OK":
            await wire.expect_response(b"OK")
            await wire.pub("t", b"3")
            await wire.expect_response(b"OK")
        else:
            await wire.expect_error(outcome)
            await wire.expect_closed()
        assert authd.secrets() == ["s", "s"]  # exactly one re-query


@pytest.mark.slow
async def test_expired_authorization_is_queried_again_on_sub(
    authd: AuthServer, wires: list[Wire]
) -> None:
    authd.replies["s"] = grant(("^t$", [".*"], ["subscribe", "publish"]), ttl=1)
    async with auth_broker(authd) as broker:
        wire = await authed(broker, wires, "s")
        authd.replies["s"] = grant(("^t$", ["^d$"], ["subscribe"]))
        await trio.sleep(1.1)
        await refused(wire, b"SUB t c\n", b'E_UNAUTHORIZED AUTH failed for SUB on "t" "c"')
        assert len(authd.requests) == 2


# -- an auth server that is down or slow -----------------------------------------------------------


async def dead_address() -> str:
    """A loopback port nothing listens on (connections are refused)."""
    sock = trio.socket.socket()
    with sock:
        await sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


async def test_auth_server_down(wires: list[Wire]) -> None:
    async with open_broker(auth_http_addresses=[await dead_address()]) as broker:
        wire = await connect(broker, wires)
        await refused(wire, b"AUTH\n" + body(b"s"), b"E_AUTH_FAILED AUTH failed")
        # The broker goes on serving: another connection, and HTTP.
        other = await connect(broker, wires)
        assert (await other.identify())["auth_required"] is True
        await other.send(b"NOP\n")
        await refused(other, b"AUTH\n" + body(b"s"), b"E_AUTH_FAILED AUTH failed")
        assert broker.server.clients == {}


async def test_one_of_several_auth_servers_down(authd: AuthServer, wires: list[Wire]) -> None:
    """nsqd tries each --auth-http-address in turn (from a random one)."""
    authd.replies["s"] = grant(PUBLISH_P)
    addresses = [await dead_address(), authd.address]
    async with open_broker(auth_http_addresses=addresses) as broker:
        for _ in range(4):
            await authed(broker, wires, "s")


async def test_auth_address_as_full_url(authd: AuthServer, wires: list[Wire]) -> None:
    authd.replies["s"] = grant(PUBLISH_P)
    url = f"http://{authd.address}/custom/check"
    async with open_broker(auth_http_addresses=[url]) as broker:
        await authed(broker, wires, "s")
        assert [request.path for request in authd.requests] == ["/custom/check"]


async def test_a_hanging_auth_query_blocks_only_its_connection(
    authd: AuthServer, wires: list[Wire]
) -> None:
    authd.replies["s"] = grant(SUBSCRIBE_T_C, PUBLISH_P)
    authd.replies["slow"] = HANG
    async with auth_broker(authd) as broker:
        fast = await authed(broker, wires, "s")
        slow = await connect(broker, wires)
        await send_auth(slow, "slow")
        await authd.wait_for_requests(2)
        # While the slow AUTH waits, others are served.
        await fast.pub("p", b"x")
        await fast.expect_response(b"OK")
        await authed(broker, wires, "s")
        # The auth server hangs up without answering: the slow client's AUTH fails.
        authd.release.set()
        await slow.expect_error(b"E_AUTH_FAILED AUTH failed")
        await slow.expect_closed()


async def test_auth_query_times_out(authd: AuthServer, wires: list[Wire]) -> None:
    authd.replies["slow"] = HANG
    async with auth_broker(authd, http_client_request_timeout=0.2) as broker:
        slow = await connect(broker, wires)
        await send_auth(slow, "slow")
        await slow.expect_error(b"E_AUTH_FAILED AUTH failed")
        await slow.expect_closed()


# -- TLS: what the auth server learns --------------------------------------------------------------


async def test_tls_and_common_name_are_passed_to_the_auth_server(
    authd: AuthServer, wires: list[Wire], certs: Certificates
) -> None:
    authd.replies["s"] = grant(PUBLISH_P)
    options = certs.broker_options(
        tls_client_auth_policy="require-verify",
        tls_root_ca_file=certs.ca_file,
        auth_http_addresses=[authd.address],
    )
    async with open_broker(**options) as broker:
        wire = await connect(broker, wires)
        await wire.identify(tls_v1=True)
        await wire.start_tls(certs.client_context(cert=certs.client))
        await wire.expect_response(b"OK")
        await send_auth(wire, "s")
        frame_type, _ = await wire.read_frame()
        assert frame_type == 0
        (request,) = authd.requests
        assert request.query == {
            "common_name": CLIENT_COMMON_NAME,
            "remote_ip": "127.0.0.1",
            "secret": "s",
            "tls": "true",
        }


async def test_tls_without_client_certificate(
    authd: AuthServer, wires: list[Wire], certs: Certificates
) -> None:
    authd.replies["s"] = grant(PUBLISH_P)
    options = certs.broker_options(auth_http_addresses=[authd.address])
    async with open_broker(**options) as broker:
        wire = await connect(broker, wires)
        await wire.identify(tls_v1=True)
        await wire.start_tls(certs.client_context())
        await wire.expect_response(b"OK")
        await send_auth(wire, "s")
        await wire.read_frame()
        (request,) = authd.requests
        assert (request.query["tls"], request.query["common_name"]) == ("true", "")


# -- pynsq -----------------------------------------------------------------------------------------


@pytest.mark.interop
async def test_pynsq_with_auth_secret(authd: AuthServer) -> None:
    authd.replies["reader"] = grant(("^auth$", ["^c$"], ["subscribe"]), identity="reader")
    authd.replies["writer"] = grant(("^auth$", [".*"], ["publish"]), identity="writer")

    async def scenario(s: Session) -> tuple[list[bytes], list[str]]:
        got: list[bytes] = []

        def handler(message: nsq.Message) -> bool:
            got.append(message.body)
            s.notify()
            return True

        await s.subscribed(s.reader("auth", "c", handler, auth_secret="reader"))
        writer = await s.writer(auth_secret="writer")
        assert await s.pub(writer, "auth", b"one") == b"OK"
        assert await s.mpub(writer, "auth", [b"two", b"three"]) == b"OK"
        await s.until(lambda: len(got) >= 3, what="the messages")
        identities = s.in_trio(
            lambda: sorted(c.auth.identity for c in broker.server.clients.values() if c.auth)
        )
        return sorted(got), identities

    async with auth_broker(authd) as broker, pynsq_against(broker) as pynsq:
        got, identities = await pynsq.run(scenario)
    assert got == [b"one", b"three", b"two"]
    assert identities == ["reader", "writer"]
    assert sorted(authd.secrets()) == ["reader", "writer"]

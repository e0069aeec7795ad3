"""The AUTH side of a client connection (nsqd/protocol_v2.go AUTH and CheckAuth).

A mixin of :class:`trinsq.broker.tcp._connection.ClientConnection`: the commands that need the auth
server run as the connection's awaited step, so responses stay in order and only this
connection waits.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from ...protocol import Auth, ProtocolError, encode_response, go_quote
from ..core._authstate import AuthError
from ..core._client import Client
from ..core._services import BrokerServices
from ._authclient import query_any_authd

__all__ = ["AuthCommands", "common_name"]

log = logging.getLogger("trinsq.broker")


class AuthCommands:
    """AUTH and the per-command authorization checks."""

    server: BrokerServices
    client: Client
    _async_step: Callable[[], Awaitable[None]] | None
    _auth_just_queried: bool

    def _respond(self, frame: bytes) -> None:
        """Queue a response frame (the connection provides this)."""
        raise NotImplementedError

    def _auth(self, command: Auth) -> None:
        client = self.client
        if client.auth is not None and client.auth.authorizations:
            raise ProtocolError("E_INVALID", "AUTH already set")
        if not self.server.options.auth_http_addresses:
            raise ProtocolError("E_AUTH_DISABLED", "AUTH disabled")
        client.auth_secret = command.secret.decode("utf-8", "surrogateescape")
        self._async_step = self._authenticate

    async def _authenticate(self) -> None:
        await self._query_auth()
        state = self.client.auth
        assert state is not None
        if not state.authorizations:
            raise ProtocolError("E_UNAUTHORIZED", "AUTH no authorizations found")
        reply = {
            "identity": state.identity,
            "identity_url": state.identity_url,
            "permission_count": len(state.authorizations),
        }
        self._respond(encode_response(json.dumps(reply, separators=(",", ":")).encode()))

    async def _query_auth(self) -> None:
        client = self.client
        options = self.server.options
        try:
            client.auth = await query_any_authd(
                options.auth_http_addresses,
                remote_ip=client.remote_address.rpartition(":")[0].strip("[]"),
                tls=client.tls,
                common_name=client.tls_common_name,
                secret=client.auth_secret,
                now=trio.current_time(),
                connect_timeout=options.http_client_connect_timeout,
                request_timeout=options.http_client_request_timeout,
                client_tls=self.server.auth_tls_context,
            )
        except AuthError as error:
            # The details stay in the log: they are not for an untrusted client (nsqd).
            log.warning("[%s] AUTH failed %s", client.remote_address, error)
            raise ProtocolError("E_AUTH_FAILED", "AUTH failed") from None

    def _authorized(self, name: str, topic: str, channel: str, retry: Callable[[], None]) -> bool:
        """nsqd's CheckAuth. False means an expired authorization is being asked again, after
        which ``retry`` runs the command anew."""
        if not self.server.options.auth_http_addresses:
            return True
        state = self.client.auth
        if self._auth_just_queried:
            # nsqd checks for authorizations before asking again; the fresh answer is then
            # judged by what it allows alone.
            self._auth_just_queried = False
        elif state is None or not state.authorizations:
            raise ProtocolError("E_AUTH_FIRST", f"AUTH required before {name}")
        elif state.expired(trio.current_time()):
            self._async_step = partial(self._reauthorize, retry)
            return False
        assert state is not None
        if not state.allows(topic, channel):
            quoted = f"{go_quote(topic.encode())} {go_quote(channel.encode())}"
            raise ProtocolError("E_UNAUTHORIZED", f"AUTH failed for {name} on {quoted}")
        return True

    async def _reauthorize(self, retry: Callable[[], None]) -> None:
        await self._query_auth()
        self._auth_just_queried = True
        retry()


def common_name(tls: trio.SSLStream[Any]) -> str:
    """The client certificate's subject CN, which nsqd passes to the auth server."""
    try:
        certificate = tls.getpeercert()
    except (ValueError, ssl.SSLError):
        return ""
    for entry in (certificate or {}).get("subject", ()):
        for key, value in entry:
            if key == "commonName":
                return str(value)
    return ""

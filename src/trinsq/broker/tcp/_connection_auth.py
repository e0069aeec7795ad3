"""The I/O side of a client's AUTH (nsqd/protocol_v2.go): asking the auth servers, and the
name on a TLS client certificate. The session decides when to ask (_session.py); the
connection awaits the answer in order, so only that connection waits.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import trio

from ...protocol import ProtocolError
from ..core._authstate import AuthError, AuthState
from ..core._client import Client
from ..core._services import BrokerServices
from ._authclient import query_any_authd

__all__ = ["common_name", "query_auth"]

log = logging.getLogger("trinsq.broker")


async def query_auth(services: BrokerServices, client: Client) -> AuthState:
    """Ask the auth servers what ``client``'s secret allows.

    Raises:
        ProtocolError: E_AUTH_FAILED when none answered usably (the details are logged only:
            they are not for an untrusted client, as in nsqd).
    """
    options = services.options
    try:
        return await query_any_authd(
            options.auth_http_addresses,
            remote_ip=client.remote_address.rpartition(":")[0].strip("[]"),
            tls=client.tls,
            common_name=client.tls_common_name,
            secret=client.auth_secret,
            now=trio.current_time(),
            connect_timeout=options.http_client_connect_timeout,
            request_timeout=options.http_client_request_timeout,
            client_tls=services.auth_tls_context,
        )
    except AuthError as error:
        log.warning("[%s] AUTH failed %s", client.remote_address, error)
        raise ProtocolError("E_AUTH_FAILED", "AUTH failed") from None


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

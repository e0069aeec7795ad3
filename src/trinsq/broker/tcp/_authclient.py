"""Asking an nsq auth server about a client's AUTH secret (internal/auth/authorizations.go).

The secret goes to one of ``--auth-http-address`` (tried in turn from a random start) as
``GET /auth?remote_ip=&tls=&secret=&common_name=``; the reply is parsed by
:func:`parse_auth_reply`.
"""

from __future__ import annotations

import random
import ssl
from urllib.parse import urlencode

from ...common._httpclient import HttpClientError, get_json_url
from ..core._authstate import AuthError, AuthState, parse_auth_reply

__all__ = ["auth_url", "query_any_authd"]


def auth_url(address: str, query: dict[str, str]) -> str:
    """``host:port`` becomes ``http://host:port/auth``; a value with ``://`` is a full URL."""
    base = address if "://" in address else f"http://{address}/auth"
    return f"{base}?{urlencode(sorted(query.items()))}"


async def query_any_authd(
    addresses: list[str],
    *,
    remote_ip: str,
    tls: bool,
    common_name: str,
    secret: str,
    now: float,
    connect_timeout: float,
    request_timeout: float,
    client_tls: ssl.SSLContext | None = None,
) -> AuthState:
    """Ask the auth servers in turn, from a random one, until one answers usably.

    Raises:
        AuthError: none did; the message says what each one did wrong.
    """
    query = {
        "common_name": common_name,
        "remote_ip": remote_ip,
        "secret": secret,
        "tls": "true" if tls else "false",
    }
    failures: list[str] = []
    start = random.randrange(len(addresses))
    for index in range(len(addresses)):
        address = addresses[(start + index) % len(addresses)]
        try:
            reply = await get_json_url(
                auth_url(address, query),
                connect_timeout=connect_timeout,
                request_timeout=request_timeout,
                tls=client_tls,
            )
            return parse_auth_reply(reply, now)
        except (HttpClientError, AuthError) as error:
            failures.append(f"failed to auth against {address} - {error}")
    raise AuthError("; ".join(failures))

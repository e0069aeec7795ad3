"""What an nsq auth server allowed a client (internal/auth, nsqd/client_v2.go).

A client's AUTH secret is sent to one of ``--auth-http-address`` (tried in turn from a random
start) as ``GET /auth?remote_ip=&tls=&secret=&common_name=``; the JSON reply lists what the
client may do and for how long. Topic and channel patterns are unanchored regular expressions,
as Go's MatchString: a publish is checked with channel ``""``, so it needs a channel pattern
that matches the empty string.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

__all__ = ["AuthError", "AuthState", "Authorization", "parse_auth_reply"]


class AuthError(Exception):
    """The auth servers could not be asked, or answered something unusable (logged only: the
    client sees ``E_AUTH_FAILED AUTH failed``)."""


def _shown(value: object) -> str:
    """A value from the auth server's JSON as JSON (and a string as Go's %q), never a repr:
    these texts end up in log lines."""
    return json.dumps(value, ensure_ascii=False, default=str)


@attrs.frozen
class Authorization:
    topic: re.Pattern[str]
    channels: tuple[re.Pattern[str], ...]
    permissions: frozenset[str]

    def allows(self, topic: str, channel: str) -> bool:
        needed = "subscribe" if channel else "publish"
        if needed not in self.permissions or not self.topic.search(topic):
            return False
        return any(pattern.search(channel) for pattern in self.channels)


@attrs.frozen
class AuthState:
    """What the auth server granted one client, until ``expires`` (monotonic seconds)."""

    identity: str
    identity_url: str
    authorizations: tuple[Authorization, ...]
    expires: float

    def expired(self, now: float) -> bool:
        return now > self.expires

    def allows(self, topic: str, channel: str) -> bool:
        return any(authorization.allows(topic, channel) for authorization in self.authorizations)


def _compile(pattern: object, what: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise AuthError(f"{what} must be a string, got {_shown(pattern)}")
    try:
        return re.compile(pattern)
    except re.error as error:
        raise AuthError(f"unable to compile {what} {_shown(pattern)} {error}") from None


def parse_auth_reply(reply: Any, now: float) -> AuthState:
    """Validate an auth server's JSON as nsqd does.

    Raises:
        AuthError: unknown permission, bad regex, a ttl that is not positive, wrong shapes.
    """
    if not isinstance(reply, dict):
        raise AuthError(f"unexpected auth reply {_shown(reply)}")
    ttl = reply.get("ttl")
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
        raise AuthError(f"invalid TTL {_shown(ttl)} (must be >0)")
    authorizations = []
    for item in reply.get("authorizations") or []:
        if not isinstance(item, dict):
            raise AuthError(f"unexpected authorization {_shown(item)}")
        permissions = item.get("permissions") or []
        for permission in permissions:
            if permission not in ("subscribe", "publish"):
                raise AuthError(f"unknown permission {permission}")
        authorizations.append(
            Authorization(
                topic=_compile(item.get("topic", ""), "topic"),
                channels=tuple(_compile(c, "channel") for c in item.get("channels") or []),
                permissions=frozenset(permissions),
            )
        )
    identity, identity_url = reply.get("identity", ""), reply.get("identity_url", "")
    return AuthState(
        identity=identity if isinstance(identity, str) else "",
        identity_url=identity_url if isinstance(identity_url, str) else "",
        authorizations=tuple(authorizations),
        expires=now + ttl,
    )

"""Validated client commands of protocol V2, as the parser hands them to the broker.

Each is a small immutable value: by the time one exists, nsqd's framing, parameter, name and
size checks have passed. What remains for the broker is what depends on its state (in-flight
tables, topic existence, auth).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

__all__ = [
    "Auth",
    "Close",
    "Command",
    "DeferredPublish",
    "Finish",
    "Identify",
    "MultiPublish",
    "Nop",
    "Publish",
    "Ready",
    "Requeue",
    "Subscribe",
    "Touch",
]


@attrs.frozen(slots=True)
class Identify:
    body: bytes  # raw JSON; see trinsq.protocol.parse_identify


@attrs.frozen(slots=True)
class Auth:
    secret: bytes


@attrs.frozen(slots=True)
class Subscribe:
    topic: str
    channel: str


@attrs.frozen(slots=True)
class Publish:
    topic: str
    body: bytes


@attrs.frozen(slots=True)
class MultiPublish:
    topic: str
    bodies: Sequence[bytes]  # a tuple, or the parser's MpubBodies (one buffer, sliced lazily)


@attrs.frozen(slots=True)
class DeferredPublish:
    topic: str
    body: bytes
    defer_ms: int


@attrs.frozen(slots=True)
class Ready:
    count: int


@attrs.frozen(slots=True)
class Finish:
    message_id: bytes


@attrs.frozen(slots=True)
class Requeue:
    message_id: bytes
    timeout_ms: int  # already clamped to [0, max-req-timeout]
    requested_ms: int  # what the client asked for, for the log line nsqd writes on clamping


@attrs.frozen(slots=True)
class Touch:
    message_id: bytes


@attrs.frozen(slots=True)
class Close:
    pass


@attrs.frozen(slots=True)
class Nop:
    pass


Command = (
    Identify
    | Auth
    | Subscribe
    | Publish
    | MultiPublish
    | DeferredPublish
    | Ready
    | Finish
    | Requeue
    | Touch
    | Close
    | Nop
)

"""A Trio-native NSQ client (issue 14): producers and consumers for any nsqd.

Structured concurrency throughout: ``async with`` opens, leaving the block (or cancelling it)
closes, and no thread or task outlives its block. go-nsq v1.1.0 is the reference behaviour.
"""

from ._config import ClientConfig
from ._errors import (
    AuthError,
    AuthFailedError,
    BadBodyError,
    BadChannelError,
    BadMessageError,
    BadProtocolError,
    BadTopicError,
    ConnectError,
    ConnectionClosedError,
    DPubFailedError,
    FinFailedError,
    IdentifyError,
    InvalidError,
    MPubFailedError,
    NSQError,
    ProtocolError,
    PubFailedError,
    ReqFailedError,
    TouchFailedError,
    UnauthorizedError,
)

__all__ = [
    "AuthError",
    "AuthFailedError",
    "BadBodyError",
    "BadChannelError",
    "BadMessageError",
    "BadProtocolError",
    "BadTopicError",
    "ClientConfig",
    "ConnectError",
    "ConnectionClosedError",
    "DPubFailedError",
    "FinFailedError",
    "IdentifyError",
    "InvalidError",
    "MPubFailedError",
    "NSQError",
    "ProtocolError",
    "PubFailedError",
    "ReqFailedError",
    "TouchFailedError",
    "UnauthorizedError",
]

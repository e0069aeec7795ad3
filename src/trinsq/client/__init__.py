"""A Trio-native NSQ client (issue 14): producers and consumers for any nsqd.

Structured concurrency throughout: ``async with`` opens, leaving the block (or cancelling it)
closes, and no thread or task outlives its block. go-nsq v1.1.0 is the reference behaviour.
"""

from ._backoff import BackoffStrategy
from ._config import ClientConfig
from ._consumer import Consumer, ConsumerStats, GiveUpHook, Handler, open_consumer
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
from ._message import Message
from ._producer import Producer, open_producer

__all__ = [
    "AuthError",
    "AuthFailedError",
    "BackoffStrategy",
    "BadBodyError",
    "BadChannelError",
    "BadMessageError",
    "BadProtocolError",
    "BadTopicError",
    "ClientConfig",
    "ConnectError",
    "ConnectionClosedError",
    "Consumer",
    "ConsumerStats",
    "DPubFailedError",
    "FinFailedError",
    "GiveUpHook",
    "Handler",
    "IdentifyError",
    "InvalidError",
    "MPubFailedError",
    "Message",
    "NSQError",
    "Producer",
    "ProtocolError",
    "PubFailedError",
    "ReqFailedError",
    "TouchFailedError",
    "UnauthorizedError",
    "open_consumer",
    "open_producer",
]

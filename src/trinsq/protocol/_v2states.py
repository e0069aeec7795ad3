"""The V2 connection's states, and what a parser returns when it has no command to give."""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "BUSY",
    "CLOSED",
    "MAGIC_V2",
    "MESSAGE_ID_LENGTH",
    "MPUB_MESSAGES_PER_STEP",
    "NEED_DATA",
    "Busy",
    "ClientState",
    "NeedData",
    "StreamClosed",
]

MAGIC_V2: Final = b"  V2"
MESSAGE_ID_LENGTH: Final = 16
# At most this many MPUB messages are read per next_command call (about a millisecond of work):
# a legal MPUB holds up to a million.
MPUB_MESSAGES_PER_STEP: Final = 1024


class ClientState(enum.IntEnum):
    """Connection states; the numbers are what /stats shows (nsqd/client_v2.go)."""

    INIT = 0
    DISCONNECTED = 1
    CONNECTED = 2
    SUBSCRIBED = 3
    CLOSING = 4


class NeedData(enum.Enum):
    """Returned by next_command when the buffered bytes hold no complete command yet."""

    NEED_DATA = enum.auto()


class StreamClosed(enum.Enum):
    """Returned by next_command once the peer has closed and nothing complete remains."""

    CLOSED = enum.auto()


class Busy(enum.Enum):
    """Returned by next_command when it stopped after a bounded step of a large command (an
    MPUB body) with more of it already buffered: call again, after letting others run."""

    BUSY = enum.auto()


NEED_DATA: Final = NeedData.NEED_DATA
CLOSED: Final = StreamClosed.CLOSED
BUSY: Final = Busy.BUSY

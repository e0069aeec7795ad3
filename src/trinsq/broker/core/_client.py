"""Per-connection client state that the channel and /stats see (nsqd/client_v2.go)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs

from ...protocol import ClientSettings, ClientState, IdentifyResult
from ._authstate import AuthState
from ._channel import Channel

__all__ = ["Client"]


def _ignore() -> None:
    pass


class StateSource(Protocol):
    """Whoever owns a client's state machine (its V2 protocol parser)."""

    @property
    def state(self) -> ClientState: ...


@attrs.frozen
class _NotConnected:
    state: ClientState = ClientState.INIT


@attrs.define(eq=False)
class Client:
    """A connected client: identity, RDY window, counters.

    The connection wires ``on_wake`` (its pump looks again) and ``on_close`` (end the
    connection) when it starts.
    """

    id: int
    remote_address: str
    connect_time: float  # Unix seconds
    settings: ClientSettings
    client_id: str = ""
    hostname: str = ""
    user_agent: str = ""
    # The one copy of the state machine lives in the session's parser; this reads it.
    state_source: StateSource = attrs.field(factory=_NotConnected, repr=False)
    channel: Channel | None = None
    ready_count: int = 0
    in_flight_count: int = 0
    message_count: int = 0
    finish_count: int = 0
    requeue_count: int = 0
    pub_counts: dict[str, int] = attrs.field(factory=dict)
    tls: bool = False
    tls_version: str = ""
    tls_cipher_suite: str = ""
    snappy: bool = False
    deflate: bool = False
    tls_common_name: str = ""
    auth_secret: str = ""
    auth: AuthState | None = None
    on_wake: Callable[[], None] = _ignore
    on_close: Callable[[], None] = _ignore

    @property
    def state(self) -> ClientState:
        return self.state_source.state

    def __attrs_post_init__(self) -> None:
        host = self.remote_address.rpartition(":")[0].strip("[]")
        self.client_id = self.hostname = host

    # -- the Consumer protocol the channel uses ---------------------------------------------------

    def wake(self) -> None:
        self.on_wake()

    def message_timed_out(self) -> None:
        self.in_flight_count -= 1
        self.on_wake()

    def in_flight_dropped(self) -> None:
        self.in_flight_count = 0
        self.on_wake()

    def close(self) -> None:
        self.on_close()

    # -- state -----------------------------------------------------------------------------------

    @property
    def ready_window(self) -> int:
        """How many more messages this client may be sent right now."""
        channel = self.channel
        if channel is None or channel.paused or self.state != ClientState.SUBSCRIBED:
            return 0
        return max(self.ready_count - self.in_flight_count, 0)

    def identified(self, result: IdentifyResult) -> None:
        request = result.request
        self.client_id = request.client_id
        self.hostname = request.hostname
        self.user_agent = request.user_agent
        self.settings = result.settings

    def published(self, topic: str, count: int) -> None:
        self.pub_counts[topic] = self.pub_counts.get(topic, 0) + count

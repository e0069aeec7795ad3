"""What the broker's adapters (TCP, HTTP, lookup, statsd, metrics) may use of the running
broker, as Protocols: they depend on these, never on the server object that implements them,
so the server can import every adapter without an import circle.

This is the seam the core's operations will take over: an adapter's needs should shrink to
calls on the core rather than grow into more services here.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Protocol

import attrs

from ...protocol import Limits, ServerFeatures
from ..config._options import BrokerOptions
from ._broker import BrokerCore
from ._stats import InfoDocument

__all__ = ["BoundAddresses", "BrokerServices", "QueueHealth", "StorageService"]


@attrs.frozen
class BoundAddresses:
    """Where the broker actually listens (port 0 resolved to the OS-chosen port)."""

    tcp: tuple[str, int]
    http: tuple[str, int] | None
    https: tuple[str, int] | None = None


class QueueHealth(Protocol):
    @property
    def bad_files(self) -> int:
        """Unreadable files this disk queue has set aside."""
        ...


class StorageService(Protocol):
    """The durable side as adapters see it."""

    crash_safe: bool
    write_error: str  # the last failed write, for E_PUB_FAILED

    @property
    def health_error(self) -> str | None:
        """Set while writes or syncs fail: /ping answers NOK."""
        ...

    @property
    def queues(self) -> Mapping[str, QueueHealth]: ...

    def commit(self, *, keep_failed: bool) -> bool:
        """Hand uncommitted messages to their disk queues; whether every write worked."""
        ...

    def metadata_changed(self, topic_name: str) -> None:
        """The topic changed: nsqd.dat is rewritten soon."""
        ...

    async def sync(self) -> None:
        """fsync what is committed (crash-safe mode answers publishes after this)."""
        ...


class BrokerServices(Protocol):
    """The running broker, as its adapters see it."""

    options: BrokerOptions
    core: BrokerCore
    features: ServerFeatures
    limits: Limits
    ssl_context: ssl.SSLContext | None
    https_context: ssl.SSLContext | None
    addresses: BoundAddresses | None
    start_time: float

    @property
    def auth_tls_context(self) -> ssl.SSLContext:
        """The client context for https auth servers."""
        ...

    @property
    def storage(self) -> StorageService: ...

    @property
    def health(self) -> str:
        """nsqd's health text: "OK", or "NOK - <error>"."""
        ...

    def info(self) -> InfoDocument: ...

    def config_value(self, opt: str) -> object | None: ...

    def set_config(self, opt: str, body: bytes) -> bool:
        """Apply a runtime option; False for a value nsqd refuses.

        Raises:
            KeyError: ``opt`` cannot be changed at runtime.
        """
        ...

    def request_shutdown(self) -> None: ...

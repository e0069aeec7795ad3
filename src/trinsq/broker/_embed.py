"""Running a real broker inside a caller's Trio program."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import attrs
import trio

from ..common._running import host_port, single_errors
from ._server import BoundAddresses, BrokerServer, serve_broker
from .config._options import BrokerOptions

__all__ = ["RunningBroker", "open_broker"]


@attrs.frozen
class RunningBroker:
    """A broker started by :func:`open_broker`.

    Attributes:
        server: the live server; ``server.graph.topics`` is its topic/channel graph.
        addresses: where it listens.
    """

    server: BrokerServer
    addresses: BoundAddresses

    @property
    def tcp_address(self) -> str:
        """``host:port`` of the TCP (protocol V2) listener."""
        return f"{self.addresses.tcp[0]}:{self.addresses.tcp[1]}"

    @property
    def http_address(self) -> str | None:
        """``host:port`` of the HTTP listener, or None when HTTP is disabled."""
        return host_port(self.addresses.http)

    @property
    def topics(self) -> dict[str, Any]:
        return self.server.graph.topics

    def request_shutdown(self) -> None:
        self.server.request_shutdown()


@asynccontextmanager
async def open_broker(
    options: BrokerOptions | None = None, **overrides: Any
) -> AsyncIterator[RunningBroker]:
    """Start a broker in the calling Trio program; shut it down gracefully on exit.

    Without ``options`` the broker listens on 127.0.0.1 with OS-chosen ports. Keyword
    arguments override single options, e.g. ``open_broker(msg_timeout=5)``. Unless a
    ``data_path`` is given, the broker keeps its data in a temporary directory that is removed
    afterwards.

    Cancellation: leaving the block (normally, by an exception or by cancellation) stops the
    broker; shutdown is bounded.
    Error handling: an exception from the block propagates unchanged, not wrapped in an
    ExceptionGroup.
    """
    if options is None:
        # It listens on loopback only, so that is the address to hand out to consumers.
        options = BrokerOptions(
            tcp_address="127.0.0.1:0", http_address="127.0.0.1:0", broadcast_address="127.0.0.1"
        )
    if overrides:
        options = attrs.evolve(options, **overrides)
    options.validate()
    scratch = (
        tempfile.TemporaryDirectory(prefix="trinsq-") if not options.data_path else nullcontext()
    )
    async with single_errors():
        with scratch as temporary:
            if temporary is not None:
                options = attrs.evolve(options, data_path=temporary)
            server = BrokerServer(options)
            async with trio.open_nursery() as nursery:
                addresses = await nursery.start(serve_broker, server)
                try:
                    yield RunningBroker(server, addresses)
                finally:
                    server.request_shutdown()

"""Running a real registry inside a caller's Trio program."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ..common._running import host_port, single_errors
from ._options import RegistryOptions
from ._server import RegistryAddresses, RegistryServer, serve_registry

__all__ = ["RunningRegistry", "open_registry"]


@attrs.frozen
class RunningRegistry:
    """A registry started by :func:`open_registry`.

    Attributes:
        server: the live server; ``server.db`` is its registration database.
        addresses: where it listens.
    """

    server: RegistryServer
    addresses: RegistryAddresses

    @property
    def tcp_address(self) -> str:
        """``host:port`` brokers register with (``--lookupd-tcp-address``)."""
        return f"{self.addresses.tcp[0]}:{self.addresses.tcp[1]}"

    @property
    def http_address(self) -> str | None:
        """``host:port`` consumers query (``lookupd_http_addresses``)."""
        return host_port(self.addresses.http)

    def request_shutdown(self) -> None:
        self.server.request_shutdown()


@asynccontextmanager
async def open_registry(
    options: RegistryOptions | None = None, **overrides: Any
) -> AsyncIterator[RunningRegistry]:
    """Start a registry in the calling Trio program; shut it down on exit.

    Without ``options`` it listens on 127.0.0.1 with OS-chosen ports; keyword arguments
    override single options, e.g. ``open_registry(tombstone_lifetime=1)``.

    Error handling: an exception from the block propagates unchanged.
    """
    if options is None:
        options = RegistryOptions(
            tcp_address="127.0.0.1:0", http_address="127.0.0.1:0", broadcast_address="127.0.0.1"
        )
    if overrides:
        options = attrs.evolve(options, **overrides)
    options.validate()
    server = RegistryServer(options)
    async with single_errors(), trio.open_nursery() as nursery:
        addresses = await nursery.start(serve_registry, server)
        try:
            yield RunningRegistry(server, addresses)
        finally:
            server.request_shutdown()

"""A small trinsq cluster in one Trio program: registries first, then brokers registered with
all of them, as an NSQ deployment is laid out. Meant for test harnesses and demos."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs

from .broker import RunningBroker, open_broker
from .registry import RunningRegistry, open_registry

__all__ = ["RunningCluster", "open_cluster"]


@attrs.frozen
class RunningCluster:
    registries: list[RunningRegistry]
    brokers: list[RunningBroker]

    @property
    def lookupd_http_addresses(self) -> list[str]:
        """What consumers are given to find the brokers (pynsq's ``lookupd_http_addresses``)."""
        return [r.http_address for r in self.registries if r.http_address is not None]


@asynccontextmanager
async def open_cluster(
    brokers: int = 2,
    registries: int = 1,
    *,
    registry_options: dict[str, Any] | None = None,
    **broker_options: Any,
) -> AsyncIterator[RunningCluster]:
    """Start ``registries`` registries and ``brokers`` brokers registered with all of them, on
    127.0.0.1 with OS-chosen ports; everything stops when the block exits.

    Broker keyword arguments apply to every broker (e.g. ``msg_timeout=5``).
    """
    async with AsyncExitStack() as stack:
        started_registries = [
            await stack.enter_async_context(open_registry(**(registry_options or {})))
            for _ in range(registries)
        ]
        addresses = [registry.tcp_address for registry in started_registries]
        # Each broker its own --node-id: on one host they would all hash the same hostname,
        # and message IDs made in the same millisecond would repeat across brokers.
        started_brokers = [
            await stack.enter_async_context(
                open_broker(**{"node_id": index, **broker_options}, lookupd_tcp_addresses=addresses)
            )
            for index in range(brokers)
        ]
        yield RunningCluster(started_registries, started_brokers)

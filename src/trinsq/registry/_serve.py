"""Serving the registry's HTTP API: the fast lane's routes, and the quart app (``_http``),
imported and built only when a request needs it (see ``common._httpserve``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from ..common._fastlane import FastRoute
from ..common._httpanswers import fast_route
from ..common._httpserve import serve_app
from ._endpoints import RegistryEndpoints, RegistryState

if TYPE_CHECKING:
    from quart_trio import QuartTrio

__all__ = ["fast_routes", "serve_http"]

log = logging.getLogger("trinsq.registry")


def fast_routes(endpoints: RegistryEndpoints) -> dict[tuple[bytes, bytes], FastRoute]:
    """/ping, and the read endpoints consumers and nsqadmin poll: they answer from cached
    bodies without awaiting anything."""
    return {
        (b"GET", b"/ping"): fast_route(endpoints.ping_answer, log),
        (b"GET", b"/lookup"): fast_route(endpoints.lookup_answer, log),
        (b"GET", b"/nodes"): fast_route(endpoints.nodes_answer, log),
        (b"GET", b"/topics"): fast_route(endpoints.topics_answer, log),
        (b"GET", b"/channels"): fast_route(endpoints.channels_answer, log),
    }


async def serve_http(
    server: RegistryState,
    address: str,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout: float,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the registry's HTTP API on ``address`` until ``shutdown_trigger`` returns."""
    endpoints = RegistryEndpoints(server)

    def build_app() -> QuartTrio:
        from ._http import RegistryHttpApi, create_app  # quart: on the first request needing it

        return create_app(server, RegistryHttpApi(server, endpoints.views))

    await serve_app(
        build_app,
        address,
        log,
        shutdown_trigger=shutdown_trigger,
        graceful_timeout=graceful_timeout,
        fast_routes=fast_routes(endpoints),
        body_timeout=server.options.http_body_timeout,
        task_status=task_status,
    )

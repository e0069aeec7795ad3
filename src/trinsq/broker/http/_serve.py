"""Serving the broker's HTTP API: the fast lane's routes, and the quart app (``_app``), which
is imported and built only when a request needs it (see ``common._httpserve``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from ...common._bodylimits import BodyLimits
from ...common._fastlane import FastRoute
from ...common._httpanswers import HttpError, body_limit, fast_route
from ...common._httpserve import serve_app
from ..core._services import BrokerServices
from ._endpoints import BrokerEndpoints

if TYPE_CHECKING:
    from quart_trio import QuartTrio

__all__ = ["body_limits", "fast_routes", "serve_http"]

log = logging.getLogger("trinsq.broker")


def fast_routes(
    server: BrokerServices, *, require_tls_port: int | None = None
) -> dict[tuple[bytes, bytes], FastRoute]:
    """The endpoints the fast lane answers (the busiest ones, and plain enough): /pub and
    /ping. None when every request is refused for want of TLS."""
    if require_tls_port is not None:
        return {}
    api = BrokerEndpoints(server)
    return {
        (b"POST", b"/pub"): fast_route(api.pub_answer, log),
        (b"GET", b"/ping"): fast_route(api.ping_answer, log),
    }


def body_limits(server: BrokerServices, *, require_tls_port: int | None = None) -> BodyLimits:
    """The bodies nsqd refuses as soon as they are over its limits (doPUB, doMPUB). None
    when every request is refused for want of TLS, which nsqd does before anything else."""
    if require_tls_port is not None:
        return {}
    options = server.options
    return {
        (b"POST", b"/pub"): body_limit(options.max_msg_size, HttpError(413, "MSG_TOO_BIG")),
        (b"POST", b"/mpub"): body_limit(options.max_body_size, HttpError(413, "BODY_TOO_BIG")),
    }


async def serve_http(
    server: BrokerServices,
    address: str,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout: float,
    https: bool = False,
    require_tls_port: int | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the broker's HTTP API (HTTPS with ``https``) on ``address`` until
    ``shutdown_trigger`` returns; reports the bound ``(host, port)`` through ``task_status``."""

    def build_app() -> QuartTrio:
        from ._app import create_app  # quart: imported on the first request that needs it

        return create_app(server, require_tls_port=require_tls_port, secure=https)

    await serve_app(
        build_app,
        address,
        log,
        shutdown_trigger=shutdown_trigger,
        graceful_timeout=graceful_timeout,
        tls=server.https_context if https else None,
        fast_routes=fast_routes(server, require_tls_port=require_tls_port),
        body_limits=body_limits(server, require_tls_port=require_tls_port),
        body_timeout=server.options.http_body_timeout,
        task_status=task_status,
    )

"""The broker's HTTP API, served by hypercorn from a quart-trio app in the broker's process.

Only /ping so far; the full nsqd HTTP API arrives with its own issue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response
from quart_trio import QuartTrio

from ._options import split_host_port

if TYPE_CHECKING:
    from ._server import BrokerServer

__all__ = ["create_app", "serve_http"]


def create_app(server: BrokerServer) -> QuartTrio:
    """Build the quart-trio app serving ``server``'s HTTP API."""
    app = QuartTrio("trinsq.broker")

    @app.get("/ping")
    async def ping() -> Response:
        # nsqd answers in plain text, without the X-NSQ-Content-Type header; "NOK - <error>"
        # with 500 while the last disk write failed (nsqd's only unhealthy state).
        error = server.storage.health_error
        if error is not None:
            return Response(f"NOK - {error}", status=500, content_type="text/plain; charset=utf-8")
        return Response("OK", status=200, content_type="text/plain; charset=utf-8")

    return app


async def serve_http(
    server: BrokerServer,
    address: str,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout: float,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the HTTP API on ``address`` until ``shutdown_trigger`` returns.

    Reports the bound ``(host, port)`` through ``task_status``.
    """
    split_host_port(address, "http_address")
    config = Config()
    config.bind = [address]
    config.graceful_timeout = graceful_timeout
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = logging.getLogger("trinsq.http")
    app = create_app(server)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, app, config, shutdown_trigger=shutdown_trigger)
        )
        # hypercorn reports e.g. "http://127.0.0.1:4151"
        host, port = split_host_port(binds[0].partition("://")[2])
        logging.getLogger("trinsq.broker").info("HTTP: listening on %s:%d", host, port)
        task_status.started((host, port))

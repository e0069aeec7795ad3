"""Serving an HTTP API with hypercorn in the caller's trio run: Go-style HTTP/1.1 answers, the
fast lane for the routes that have one, and the quart app built only when a request needs it.

quart (with flask, werkzeug, jinja2 and click) costs about 0.4 s to import and 14 MB of memory.
A broker whose HTTP API only answers /ping and /pub, the fast lane's routes, never needs it,
so the app is made on the first request that goes to it, importing in a worker thread so the
event loop keeps serving meanwhile.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.trio import serve
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from . import _h11compat
from ._fastlane import FastRoute
from ._options import split_host_port
from ._startup import bind_http_socket

__all__ = ["LazyApp", "serve_app"]


class LazyApp:
    """An ASGI app that builds the real one (``factory``, run in a worker thread) on its first
    HTTP request.

    The apps here register no serving hooks and start no background tasks, so the lifespan
    protocol is answered here; the built app's own startup runs once it exists.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._app: Any = None
        self._lock = trio.Lock()

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        app = self._app or await self._build()
        await app(scope, receive, send)

    async def _build(self) -> Any:
        async with self._lock:
            if self._app is None:
                app = await trio.to_thread.run_sync(self._factory)
                await app.startup()
                self._app = app
        return self._app


class _TlsConfig(_h11compat.GoStyleConfig):
    """hypercorn settings that serve HTTPS with the server's own SSL context."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context
        self.certfile = self.keyfile = "in-memory"  # marks the bind as TLS for hypercorn

    def create_ssl_context(self) -> ssl.SSLContext:
        return self._context


async def serve_app(
    app_factory: Callable[[], Any],
    address: str,
    log: logging.Logger,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout: float,
    tls: ssl.SSLContext | None = None,
    fast_routes: dict[tuple[bytes, bytes], FastRoute] | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the app ``app_factory`` builds (a quart-trio app, made on its first request) on
    ``address`` (HTTPS with ``tls``) until ``shutdown_trigger`` returns; reports the bound
    ``(host, port)`` through ``task_status``. ``fast_routes`` (by method and path, see
    ``fast_route``) are answered by the fast lane, and by the app only when a request is not
    plain enough for it."""
    split_host_port(address, "http_address")
    _h11compat.install()  # status lines as Go writes them: "HTTP/1.1 404 Not Found"
    config = _h11compat.GoStyleConfig() if tls is None else _TlsConfig(tls)
    config.fast_routes = dict(fast_routes or {})
    # Bound here so that a busy address raises a StartupError naming it, leaking nothing.
    config.bind = [f"fd://{bind_http_socket(address).detach()}"]
    config.graceful_timeout = graceful_timeout
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = logging.getLogger("trinsq.http")
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, LazyApp(app_factory), config, shutdown_trigger=shutdown_trigger)
        )
        # hypercorn reports e.g. "http://127.0.0.1:4151"
        host, port = split_host_port(binds[0].partition("://")[2])
        log.info("%s: listening on %s:%d", "HTTP" if tls is None else "HTTPS", host, port)
        task_status.started((host, port))

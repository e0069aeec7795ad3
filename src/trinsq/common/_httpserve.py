"""Serving an HTTP API in the caller's trio run: Go-style HTTP/1.1 answers, the fast lane for
the routes that have one, hypercorn for the rest (and HTTPS), and the quart app built only when
a request needs it.

Plain HTTP starts without hypercorn: the lane serves connections itself and hands one to
hypercorn at its first request that is not the lane's (``_httplane``).

quart (with flask, werkzeug, jinja2 and click) costs about 0.4 s to import and 14 MB of memory.
A broker whose HTTP API only answers /ping and /pub, the fast lane's routes, never needs it,
so the app is made on the first request that goes to it, importing in a worker thread so the
event loop keeps serving meanwhile.
"""

from __future__ import annotations

import importlib.util
import logging
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ._bodylimits import BODY_TIMEOUT, BodyLimits
from ._fastlane import FastRoute
from ._httplane import KEEP_ALIVE_TIMEOUT, LaneServer
from ._options import split_host_port
from ._startup import bind_http_socket

if TYPE_CHECKING:
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

    from ._hypercornserve import HandOff

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


async def serve_app(
    app_factory: Callable[[], Any],
    address: str,
    log: logging.Logger,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout: float,
    tls: ssl.SSLContext | None = None,
    fast_routes: dict[tuple[bytes, bytes], FastRoute] | None = None,
    body_limits: BodyLimits | None = None,
    body_timeout: float = BODY_TIMEOUT,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the app ``app_factory`` builds (a quart-trio app, made on its first request) on
    ``address`` (HTTPS with ``tls``) until ``shutdown_trigger`` returns; reports the bound
    ``(host, port)`` through ``task_status``. ``fast_routes`` (by method and path, see
    ``fast_route``) are answered by the fast lane, and by the app only when a request is not
    plain enough for it. Plain HTTP starts without hypercorn (see ``_httplane``).
    ``body_limits`` (by method and path) and ``body_timeout`` bound request bodies on both
    (see ``_bodylimits``)."""
    split_host_port(address, "http_address")
    if importlib.util.find_spec("hypercorn") is None:  # imported on first need: checked now
        raise ModuleNotFoundError("No module named 'hypercorn'", name="hypercorn")
    routes = dict(fast_routes or {})
    limits = dict(body_limits or {})
    app = LazyApp(app_factory)
    # Bound here so that a busy address raises a StartupError naming it, leaking nothing.
    sock = bind_http_socket(address)
    async with trio.open_nursery() as nursery:
        if tls is None:

            def make_handoff(app: Any) -> HandOff:
                from ._hypercornserve import HandOff, go_style_config

                config = go_style_config(
                    routes,
                    graceful_timeout=graceful_timeout,
                    keep_alive_timeout=KEEP_ALIVE_TIMEOUT,
                    body_limits=limits,
                    body_timeout=body_timeout,
                )
                return HandOff(app, config)

            server = LaneServer(
                app,
                routes,
                make_handoff,
                graceful_timeout=graceful_timeout,
                body_limits=limits,
                body_timeout=body_timeout,
            )
            bound: tuple[str, int] = await nursery.start(server.serve, sock, shutdown_trigger)
        else:
            from ._hypercornserve import go_style_config, serve_https

            config = go_style_config(
                routes,
                graceful_timeout=graceful_timeout,
                keep_alive_timeout=KEEP_ALIVE_TIMEOUT,
                tls=tls,
                body_limits=limits,
                body_timeout=body_timeout,
            )
            bound = await nursery.start(
                partial(serve_https, app, sock.detach(), config, shutdown_trigger=shutdown_trigger)
            )
        log.info("%s: listening on %s:%d", "HTTP" if tls is None else "HTTPS", *bound)
        task_status.started(bound)

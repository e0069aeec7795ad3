"""hypercorn's part of serving an HTTP API: HTTPS, and the plain-HTTP connections the fast
lane hands over (see ``_httplane``).

hypercorn, with h2, wsproto and the rest of its stack, costs about 4 MB and 70 ms to import;
this module imports it, and is itself imported only when something needs it: at start for
HTTPS, or (in a worker thread) on the first plain-HTTP request that is not for the lane.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

import trio
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from . import _h11compat
from ._bodylimits import BODY_TIMEOUT, BodyLimits
from ._fastlane import FastRoute
from ._options import split_host_port
from ._sockets import SocketStream

__all__ = ["HandOff", "go_style_config", "serve_https"]


class _TlsConfig(_h11compat.GoStyleConfig):
    """hypercorn settings that serve HTTPS with the server's own SSL context."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context
        self.certfile = self.keyfile = "in-memory"  # marks the bind as TLS for hypercorn

    def create_ssl_context(self) -> ssl.SSLContext:
        return self._context


def go_style_config(
    fast_routes: dict[tuple[bytes, bytes], FastRoute],
    *,
    graceful_timeout: float,
    keep_alive_timeout: float,
    tls: ssl.SSLContext | None = None,
    body_limits: BodyLimits | None = None,
    body_timeout: float = BODY_TIMEOUT,
) -> _h11compat.GoStyleConfig:
    """The hypercorn settings both ways of serving use: Go's status lines, the fast lane,
    request bodies bounded (``_bodylimits``)."""
    _h11compat.install()  # status lines as Go writes them: "HTTP/1.1 404 Not Found"
    config = _h11compat.GoStyleConfig() if tls is None else _TlsConfig(tls)
    config.fast_routes = dict(fast_routes)
    config.body_limits = dict(body_limits or {})
    config.body_timeout = body_timeout
    config.graceful_timeout = graceful_timeout
    config.keep_alive_timeout = keep_alive_timeout
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = logging.getLogger("trinsq.http")
    return config


async def serve_https(
    app: Any,
    sock_fd: int,
    config: _h11compat.GoStyleConfig,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """hypercorn serving ``app`` over TLS on the bound socket ``sock_fd``."""
    config.bind = [f"fd://{sock_fd}"]
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, app, config, shutdown_trigger=shutdown_trigger)
        )
        # hypercorn reports e.g. "https://127.0.0.1:4152"
        task_status.started(split_host_port(binds[0].partition("://")[2]))


class _Replay(trio.abc.Stream):
    """A plain connection whose first bytes were already received: they are read first."""

    def __init__(self, stream: SocketStream, data: bytes) -> None:
        self._stream = stream
        self._data = data
        self.socket = stream.socket  # hypercorn reads the addresses from it

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._data:
            return bytes(await self._stream.receive_some(max_bytes))
        await trio.lowlevel.checkpoint()
        size = len(self._data) if max_bytes is None else max_bytes
        data, self._data = self._data[:size], self._data[size:]
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


class HandOff:
    """hypercorn taking over plain connections from the fast lane, as its own server would
    serve them (one worker context, so its shutdown closes them as hypercorn's does)."""

    def __init__(self, app: Any, config: _h11compat.GoStyleConfig) -> None:
        self._app = wrap_app(app, config.wsgi_max_body_size, "asgi")
        self._config = config
        self._context = WorkerContext(None)

    async def serve(self, stream: SocketStream, data: bytes) -> None:
        """Serve the connection from ``data`` (already received, not yet answered) on."""
        replay = cast("trio.SSLStream[trio.SocketStream]", _Replay(stream, data))
        state = ConnectionState({})
        await TCPServer(self._app, self._config, self._context, state, replay).run()

    async def terminate(self) -> None:
        """The server is stopping: idle connections close, busy ones after their request."""
        await self._context.terminated.set()

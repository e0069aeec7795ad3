"""The running registry: TCP protocol V1 for brokers, the HTTP API, and expiry, in one nursery.

Each broker connection is served by one task (the V1 protocol is strictly request/response)
that feeds what it receives to the peer's sans-IO session (_session.py) and sends the answers
of each bounded step in one write. A connection's registrations go when it closes, as in
nsqlookupd.
"""

from __future__ import annotations

import logging
import socket
from functools import partial
from typing import Final

import attrs
import trio

from .._version import NSQ_COMPAT_VERSION
from ..common._json import go_json
from ..common._logging import error_text
from ..common._sockets import SocketStream, serve_tcp_listeners
from ..common._startup import open_listeners, start_http
from ._db import RegistrationDB
from ._options import RegistryOptions
from ._serve import serve_http
from ._session import PeerSession

__all__ = ["RegistryAddresses", "RegistryServer", "serve_registry"]

log = logging.getLogger("trinsq.registry")

RECEIVE_SIZE: Final = 65536
HTTP_GRACEFUL_TIMEOUT: Final = 0.25


@attrs.frozen
class RegistryAddresses:
    """Where the registry actually listens (port 0 resolved)."""

    tcp: tuple[str, int]
    http: tuple[str, int] | None


class RegistryServer:
    """One registry: its registration database and the tasks that serve it."""

    def __init__(self, options: RegistryOptions) -> None:
        self.options = options
        self.db = RegistrationDB(clock=trio.current_time)
        self.addresses: RegistryAddresses | None = None
        self.shutdown_requested = trio.Event()

    def request_shutdown(self) -> None:
        self.shutdown_requested.set()

    def identify_reply(self) -> bytes:
        """nsqlookupd's IDENTIFY answer (a Go map: keys sorted)."""
        addresses = self.addresses
        return go_json(
            {
                "broadcast_address": self.options.broadcast_address,
                "hostname": socket.gethostname(),
                "http_port": addresses.http[1] if addresses and addresses.http else 0,
                "tcp_port": addresses.tcp[1] if addresses else 0,
                "version": NSQ_COMPAT_VERSION,
            }
        )

    async def handle_tcp(self, stream: SocketStream) -> None:
        """Serve one accepted broker connection; never raises for peer misbehaviour."""
        try:
            host, port = stream.socket.getpeername()[:2]
            remote = f"{host}:{port}"
        except OSError:
            remote = "unknown:0"
        await self.handle_stream(stream, remote)

    async def handle_stream(self, stream: trio.abc.Stream, remote: str) -> None:
        """Serve one broker connection over any stream: hand what arrives to its session, send
        what the session answers, one bounded step at a time.

        Resource handling: closes ``stream``.
        Error handling: never raises for peer misbehaviour.
        """
        session = PeerSession(self.db, remote, self.identify_reply)
        log.info("TCP: new client(%s)", remote)
        try:
            while True:
                session.receive_data(await stream.receive_some(RECEIVE_SIZE))
                while True:
                    step = session.step()
                    if step.replies:
                        await stream.send_all(step.replies)
                    if step.closing or not step.more:
                        break
                    await trio.lowlevel.checkpoint()  # others get a turn between slices
                if step.closing:
                    break
        except* (trio.BrokenResourceError, trio.ClosedResourceError) as group:
            log.info("[%s] connection ended: %s", remote, error_text(group.exceptions[0]))
        except* Exception:
            log.exception("[%s] internal error serving peer; closing its connection", remote)
        finally:
            session.close()
            await trio.aclose_forcefully(stream)

    async def expire_empty_registrations(self) -> None:
        """Drop registrations whose producers all left, once they have been empty for
        --inactive-producer-timeout (beyond nsqlookupd, which keeps them forever).

        Cancellation: the only way this returns.
        """
        timeout = self.options.inactive_producer_timeout
        while True:
            await trio.sleep(max(min(timeout / 4, 30.0), 0.05))
            for registration in self.db.expire_empty(trio.current_time(), timeout):
                log.info("DB: expired empty registration %s", registration.debug_key)


async def serve_registry(
    server: RegistryServer,
    *,
    task_status: trio.TaskStatus[RegistryAddresses] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``server`` until ``server.request_shutdown()``; reports the bound addresses.

    Error handling: before ``started``, a :class:`StartupError` (possibly inside exception
    groups) names a listen address that cannot be bound.
    """
    options = server.options
    listeners = await open_listeners(options.tcp_address, "tcp_address")
    tcp_bound = listeners[0].socket.getsockname()[:2]
    async with trio.open_nursery() as background:
        background.start_soon(server.expire_empty_registrations)
        async with trio.open_nursery() as services:
            tcp_scope = trio.CancelScope()

            async def serve_tcp(*, task_status: trio.TaskStatus[None]) -> None:
                with tcp_scope:
                    async with trio.open_nursery() as connections:
                        await connections.start(
                            partial(
                                serve_tcp_listeners,
                                server.handle_tcp,
                                listeners,
                                handler_nursery=connections,
                            )
                        )
                        task_status.started()

            await services.start(serve_tcp)
            http_bound = None
            if options.http_address:
                serve = partial(
                    serve_http,
                    server,
                    options.http_address,
                    shutdown_trigger=server.shutdown_requested.wait,
                    graceful_timeout=HTTP_GRACEFUL_TIMEOUT,
                )
                http_bound = await start_http(services, serve, options.http_address)
            server.addresses = RegistryAddresses(tcp=(tcp_bound[0], tcp_bound[1]), http=http_bound)
            log.info("TCP: listening on %s:%d", *server.addresses.tcp)
            task_status.started(server.addresses)
            await server.shutdown_requested.wait()
            log.info("shutting down")
            # Brokers are dropped (they reconnect elsewhere or later); nothing to persist.
            tcp_scope.cancel()
            services.cancel_scope.deadline = trio.current_time() + HTTP_GRACEFUL_TIMEOUT + 1
        background.cancel_scope.cancel()

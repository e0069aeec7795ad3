"""The running broker: TCP listener, HTTP server and timers in one nursery.

``serve_broker`` binds everything, reports the bound addresses through ``task_status``, and
serves until its ``shutdown`` event is set; then it stops accepting, closes every client and
returns within a bounded time.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
import ssl
import time
from functools import partial
from typing import Final

import trio
import trio.lowlevel

from .._version import NSQ_COMPAT_VERSION
from ..common._sockets import SocketStream, TcpListener, serve_tcp_listeners
from ..common._startup import open_listeners, start_http
from ..protocol import ClientSettings, Limits, ServerFeatures
from ._timers import DeadlineScheduler
from .cluster._lookup import LookupService
from .config._config_api import apply_config, config_value
from .config._options import BrokerOptions, OptionError
from .config._tls import build_server_context
from .core._broker import BrokerCore
from .core._client import Client
from .core._graph import TopicGraph
from .core._services import BoundAddresses
from .core._stats import InfoDocument
from .core._topic import Topic
from .http._serve import serve_http
from .storage._metadata import encode_metadata, write_initial_metadata
from .storage._storage import Storage
from .tcp._connection import serve_client
from .tcp._pumptimers import PumpTimers

__all__ = ["BoundAddresses", "BrokerServer", "serve_broker"]

log = logging.getLogger("trinsq.broker")

# How long shutdown waits for HTTP requests in progress before cutting them off. hypercorn
# only notices that a keep-alive connection is idle once the client sends again, so an idle
# client holds shutdown for all of this; nsqd does not wait for HTTP requests at all.
HTTP_GRACEFUL_TIMEOUT: Final = 0.25


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class BrokerServer:
    """One broker: its graph, its clients and the tasks that serve them.

    Attributes:
        core: the operations on the broker's graph and clients (what every adapter calls).
        graph: the topic/channel graph (attrs models), for embedding and tests.
        addresses: set once listening.
    """

    def __init__(self, options: BrokerOptions) -> None:
        self.options = options
        self.start_time = time.time()
        self.ssl_context = build_server_context(options)
        self.https_context = (
            build_server_context(options, require_client_cert=True)
            if options.http_admin_client_cert
            else self.ssl_context
        )
        # nsqd verifies an https auth server against --tls-root-ca-file when given. Loading the
        # system's CA store costs ~2.5 MB and ~30 ms: built now only if it can be used (a
        # bad --tls-root-ca-file still fails here, at start), else on first use.
        self._auth_tls_context: ssl.SSLContext | None = None
        if options.auth_http_addresses or options.tls_root_ca_file:
            self._auth_tls_context = self._build_auth_tls_context()
        if options.snappy and importlib.util.find_spec("snappy") is None:
            # Imported by the first client that negotiates it; missing, it fails the start.
            raise OptionError("--snappy needs python-snappy, which is not installed")
        self.storage = Storage(options)
        self.scheduler = DeadlineScheduler(lambda: self.storage.commit(keep_failed=True))
        self.pump_timers = PumpTimers()
        self.graph = TopicGraph(
            options,
            trio.current_time,
            self.scheduler,
            persistence=self.storage,
            on_backlog=self._topic_backlogged,
        )
        self.lookup = LookupService(self)
        self._backlogged: dict[Topic, None] = {}
        self._backlog_event = trio.Event()
        self.core = BrokerCore(self.graph)
        self.addresses: BoundAddresses | None = None
        self.shutdown_requested = trio.Event()
        # Where client connections run while the broker serves them (see accept_stream).
        self._connections: trio.Nursery | None = None
        self.limits = Limits(
            max_msg_size=options.max_msg_size,
            max_body_size=options.max_body_size,
            max_rdy_count=options.max_rdy_count,
            max_req_timeout_ms=_ms(options.max_req_timeout),
        )
        self.features = ServerFeatures(
            version=NSQ_COMPAT_VERSION,
            max_rdy_count=options.max_rdy_count,
            max_heartbeat_interval_ms=_ms(options.max_heartbeat_interval),
            max_output_buffer_size=options.max_output_buffer_size,
            min_output_buffer_timeout_ms=_ms(options.min_output_buffer_timeout),
            max_output_buffer_timeout_ms=_ms(options.max_output_buffer_timeout),
            max_msg_timeout_ms=_ms(options.max_msg_timeout),
            tls_available=self.ssl_context is not None,
            deflate_enabled=options.deflate,
            snappy_enabled=options.snappy,
            max_deflate_level=options.max_deflate_level,
            auth_required=bool(options.auth_http_addresses),
        )
        self._default_settings = ClientSettings(
            heartbeat_interval_ms=_ms(options.heartbeat_interval),
            output_buffer_size=16_384,
            output_buffer_timeout_ms=_ms(options.output_buffer_timeout),
            msg_timeout_ms=_ms(options.msg_timeout),
        )

    def _build_auth_tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.options.tls_root_ca_file or None)

    @property
    def auth_tls_context(self) -> ssl.SSLContext:
        """The client context for https auth servers (verified against the system's CAs or
        --tls-root-ca-file)."""
        if self._auth_tls_context is None:
            self._auth_tls_context = self._build_auth_tls_context()
        return self._auth_tls_context

    @property
    def clients(self) -> dict[int, Client]:
        """Connected clients by id."""
        return self.core.clients

    @property
    def health(self) -> str:
        """nsqd's health text: "OK", or "NOK - <error>" while the last disk write failed."""
        error = self.storage.health_error
        return "OK" if error is None else f"NOK - {error}"

    def info(self) -> InfoDocument:
        options = self.options
        addresses = self.addresses
        return InfoDocument(
            version=NSQ_COMPAT_VERSION,
            broadcast_address=options.broadcast_address,
            hostname=socket.gethostname(),
            http_port=addresses.http[1] if addresses and addresses.http else -1,
            tcp_port=addresses.tcp[1] if addresses else -1,
            start_time=int(self.start_time),
            max_heartbeat_interval=round(options.max_heartbeat_interval * 1e9),
            max_output_buffer_size=options.max_output_buffer_size,
            max_output_buffer_timeout=round(options.max_output_buffer_timeout * 1e9),
            max_deflate_level=options.max_deflate_level,
        )

    def config_value(self, opt: str) -> object | None:
        return config_value(self.options, opt)

    def set_config(self, opt: str, body: bytes) -> bool:
        """PUT /config/<opt>: apply it; False for a value nsqd refuses.

        Raises:
            KeyError: ``opt`` cannot be changed at runtime.
        """
        if not apply_config(self.options, opt, body):
            return False
        if opt == "nsqlookupd_tcp_addresses":
            self.lookup.set_addresses(list(self.options.lookupd_tcp_addresses))
        return True

    def metadata_bytes(self) -> bytes:
        """nsqd.dat as it should read now, encoded afresh from the whole graph (at shutdown,
        so that even a change made on the models directly, not through the core, is kept)."""
        return encode_metadata(self.graph.metadata(), NSQ_COMPAT_VERSION)

    def _topic_backlogged(self, topic: Topic) -> None:
        self._backlogged[topic] = None
        self._backlog_event.set()

    async def drain_backlogs(self) -> None:
        """Move topics' held messages (their disk backlog) to their channels step by step,
        leaving the event loop free between steps.

        Cancellation: the only way this returns.
        """
        while True:
            await self._backlog_event.wait()
            self._backlog_event = trio.Event()
            while self._backlogged:
                topic = next(iter(self._backlogged))
                if not self.core.move_backlog(topic):
                    del self._backlogged[topic]
                await trio.lowlevel.checkpoint()

    def request_shutdown(self) -> None:
        """Begin a graceful shutdown (idempotent, callable from any task)."""
        self.shutdown_requested.set()

    async def handle_tcp(self, stream: SocketStream) -> None:
        """Serve one accepted TCP connection; never raises for client misbehaviour."""
        await self.handle_stream(stream, _peer_address(stream))

    async def handle_stream(self, stream: trio.abc.Stream, remote_address: str) -> None:
        """Serve one client connected through ``stream`` (a socket, or any other
        ``trio.abc.Stream`` such as one end of ``trio.testing.memory_stream_pair()``) until
        either side ends the connection; ``stream`` is closed before this returns, and
        nothing is raised for client misbehaviour or a broken stream."""
        await serve_client(self, stream, remote_address, self._default_settings, self.pump_timers)

    def accept_stream(self, stream: trio.abc.Stream, remote_address: str) -> None:
        """Serve a client on an already-connected ``stream`` as if the TCP listener had
        accepted it: :meth:`handle_stream` runs in the nursery of the broker's TCP clients, so
        the connection ends when the broker shuts down (tests connect over memory streams
        this way).

        Raises:
            RuntimeError: the broker is not serving TCP clients (not started, or stopping).
        """
        if self._connections is None:
            raise RuntimeError("the broker is not serving clients")
        self._connections.start_soon(self.handle_stream, stream, remote_address)


def _peer_address(stream: SocketStream) -> str:
    """The peer's ``host:port`` (``[host]:port`` for IPv6)."""
    try:
        peer = stream.socket.getpeername()
    except OSError:
        return "unknown:0"
    return f"{peer[0]}:{peer[1]}" if len(peer) == 2 else f"[{peer[0]}]:{peer[1]}"


async def _serve_tcp_listeners(
    server: BrokerServer,
    listeners: list[TcpListener],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with trio.open_nursery() as connections:
        await connections.start(
            partial(serve_tcp_listeners, server.handle_tcp, listeners, handler_nursery=connections)
        )
        server._connections = connections
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            server._connections = None


async def serve_broker(
    server: BrokerServer,
    *,
    task_status: trio.TaskStatus[BoundAddresses] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``server`` until ``server.request_shutdown()``.

    Reports :class:`BoundAddresses` once the TCP and HTTP listeners are bound.

    Cancellation: cancelling stops everything at once (no graceful phase).
    Error handling: before ``started``, a :class:`StartupError` (possibly inside exception
    groups) says what failed and where: a listener that cannot bind, a data path that cannot
    be locked, read or written.
    """
    options = server.options
    recorded = server.storage.open() or []
    try:
        listeners = await open_listeners(options.tcp_address, "tcp_address")
        try:
            # nsqd rewrites nsqd.dat at once; done before anything is loaded, so an
            # unwritable data path fails start-up with nothing to save.
            await trio.to_thread.run_sync(
                write_initial_metadata,
                server.storage.data_path,
                encode_metadata(recorded, NSQ_COMPAT_VERSION),
            )
        except BaseException:
            for listener in listeners:
                listener.socket.close()
            raise
    except BaseException:
        server.storage.release()
        raise
    server.graph.load(recorded)
    try:
        await _serve(server, listeners, task_status)
    finally:
        # Everything in memory goes to disk, then nsqd.dat, as nsqd's Exit() does; also when
        # cancelled, so the data path is never left locked or half-written.
        server.graph.persist()
        server.storage.close(server.metadata_bytes())
    log.info("persisted everything to %s", server.storage.data_path)


async def _serve(
    server: BrokerServer,
    listeners: list[TcpListener],
    task_status: trio.TaskStatus[BoundAddresses],
) -> None:
    options = server.options
    tcp_bound = listeners[0].socket.getsockname()[:2]
    async with trio.open_nursery() as timers:
        timers.start_soon(server.scheduler.run)
        timers.start_soon(server.pump_timers.run)
        timers.start_soon(server.drain_backlogs)
        if options.statsd_address:
            from .monitoring._statsd import run_statsd  # only when configured

            timers.start_soon(run_statsd, server)
        await timers.start(server.storage.run, server.graph.topic_metadata, server.core.retry_reads)
        async with trio.open_nursery() as services:
            tcp_scope = trio.CancelScope()

            async def serve_tcp(*, task_status: trio.TaskStatus[None]) -> None:
                with tcp_scope:
                    await _serve_tcp_listeners(server, listeners, task_status=task_status)

            await services.start(serve_tcp)
            serve = partial(
                serve_http,
                server,
                shutdown_trigger=server.shutdown_requested.wait,
                graceful_timeout=HTTP_GRACEFUL_TIMEOUT,
            )
            https_bound = None
            if server.ssl_context is not None and options.https_address:
                https_bound = await start_http(
                    services,
                    partial(serve, options.https_address, https=True),
                    options.https_address,
                )
            http_bound = None
            if options.http_address:
                # --tls-required=true: plain HTTP only points to HTTPS (tcp-https leaves it open).
                redirect = (
                    https_bound[1] if https_bound and options.tls_required == "true" else None
                )
                http_bound = await start_http(
                    services,
                    partial(serve, options.http_address, require_tls_port=redirect),
                    options.http_address,
                )
            server.addresses = BoundAddresses(
                tcp=(tcp_bound[0], tcp_bound[1]), http=http_bound, https=https_bound
            )
            log.info("TCP: listening on %s:%d", *server.addresses.tcp)
            # Registries hear of the graph from now on (nsqd does not query them while loading).
            server.graph.events = server.lookup
            await timers.start(server.lookup.run)  # stopped with the timers, after services
            task_status.started(server.addresses)
            await server.shutdown_requested.wait()
            log.info("shutting down")
            # Stop accepting and drop every client connection, as nsqd's Exit() does; HTTP
            # stops through its shutdown trigger, bounded by its graceful timeout.
            server.graph.close()
            tcp_scope.cancel()
            services.cancel_scope.deadline = trio.current_time() + HTTP_GRACEFUL_TIMEOUT + 1
        timers.cancel_scope.cancel()

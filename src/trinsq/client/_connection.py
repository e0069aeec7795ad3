"""One client connection to one nsqd, over Trio (go-nsq conn.go).

Setup, as go-nsq does it: dial (``dial_timeout``), the ``"  V2"`` magic, IDENTIFY with
feature negotiation, then what nsqd's answer switched on: TLS (the config's context, the
server's name checked unless ``tls_verify`` is off), then snappy or deflate, each confirmed
by an ``OK`` over the new layer; then AUTH when nsqd requires it. Afterwards a reader task
turns frames into events and answers heartbeats with NOP, and a writer task writes whatever
commands are queued in one ``send_all`` per wake-up, so commands queued by many tasks at
once cost one write.

The API the producer and consumer build on (kept small and stable)::

    conn = await nursery.start(run_connection, address, config, on_event)
    # or: async with open_connection(address, config, on_event) as conn: ...
    # (both take stream=... to run over a given trio stream instead of dialling: tests)

    conn.address, conn.negotiated (Negotiated), conn.auth (AuthIdentity | None)
    conn.send_nowait(data)   # queue an encoded command (the encode_* functions of _protocol)
    await conn.send(data)    # the same, first waiting while WRITE_BUFFER_LIMIT bytes are queued;
                             # it returns right after queueing, with no checkpoint after it
    on_event(event)          # called by the reader task, in order, for every Response,
                             # ErrorReply and MessageFrame (never for heartbeats); it must not
                             # block; an exception from it ends the connection and propagates
    await conn.cls()         # CLS, then wait for nsqd's CLOSE_WAIT (the connection stays up
                             # for FIN/REQ of messages already received)
    conn.close()             # stop at once (no wait); sends after it raise
    await conn.drain()       # wait until everything queued has been written
    await conn.wait_closed() # -> None after close(), else the ConnectionClosedError that ended it
    conn.closed, conn.heartbeats, conn.writes (send_all calls made for queued commands)

``run_connection`` raises during setup (``ConnectError``, or the typed ``ProtocolError`` nsqd
answered IDENTIFY or AUTH with); once started it returns when the connection ends, having
recorded why, and never raises for a transport failure. Sends on a connection that has ended
raise ``ConnectionClosedError``.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Final

import trio

from ..common._running import single_errors
from ..common._sockets import SocketStream
from ..common._streams import DeflateStream, PrefixedStream, SnappyStream
from ..protocol import Frame
from ._config import ClientConfig
from ._errors import ConnectError, ConnectionClosedError
from ._protocol import (
    CLOSE_WAIT,
    MAGIC_V2,
    AuthIdentity,
    ClientProtocol,
    Event,
    Negotiated,
    Response,
    encode_auth,
    encode_cls,
    encode_identify,
    expect_ok,
    parse_auth_response,
    parse_identify_response,
)

__all__ = [
    "RECEIVE_SIZE",
    "WRITE_BUFFER_LIMIT",
    "Connection",
    "EventHandler",
    "open_connection",
    "run_connection",
    "split_address",
]

RECEIVE_SIZE: Final = 256 * 1024
# Queued command bytes above which ``send`` waits for the writer.
WRITE_BUFFER_LIMIT: Final = 1024 * 1024

EventHandler = Callable[[Event], None]

_TRANSPORT_ERRORS: Final = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    ConnectionClosedError,
    OSError,
)


def split_address(address: str) -> tuple[str, int]:
    """``"host:port"`` (``"[v6]:port"`` too) as a (host, port) pair.

    Raises:
        ValueError: not host:port.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"not a host:port address: {address!r}")
    return host.strip("[]"), int(port)


class Connection:
    """A set-up connection (see the module docstring for its API)."""

    def __init__(
        self,
        address: str,
        stream: trio.abc.Stream,
        protocol: ClientProtocol,
        config: ClientConfig,
        negotiated: Negotiated,
        auth: AuthIdentity | None,
        on_event: EventHandler,
    ) -> None:
        self.address = address
        self.negotiated = negotiated
        self.auth = auth
        self._stream = stream
        self._protocol = protocol
        self._config = config
        self._on_event = on_event
        self._has_output = trio.Event()
        self._drained = trio.Event()
        self._writing = False  # the writer holds bytes taken from the queue, not yet sent
        self._close_wait = trio.Event()
        self._got_close_wait = False
        self._ended = trio.Event()
        self._scope = trio.CancelScope()
        self._error: ConnectionClosedError | None = None
        self.closed = False
        self.writes = 0

    @property
    def heartbeats(self) -> int:
        """Heartbeats received (each answered with a NOP)."""
        return self._protocol.heartbeats

    # -- the API -------------------------------------------------------------------------------

    def send_nowait(self, data: bytes) -> None:
        """Queue an encoded command for the writer.

        Raises:
            ConnectionClosedError: the connection has ended.
        """
        if self.closed:
            raise self._closed_error()
        self._protocol.send(data)
        self._has_output.set()

    async def send(self, data: bytes) -> None:
        """Queue an encoded command, first waiting while the writer is behind."""
        while self._protocol.output_size >= WRITE_BUFFER_LIMIT and not self.closed:
            await self._drained.wait()
        self.send_nowait(data)

    async def cls(self) -> None:
        """Send CLS and wait for nsqd's CLOSE_WAIT.

        Raises:
            ConnectionClosedError: the connection ended first.
        """
        self.send_nowait(encode_cls())
        with trio.move_on_after(self._config.read_timeout):
            await self._close_wait.wait()  # set by CLOSE_WAIT, or when the connection ends
        if not self._got_close_wait:
            raise self._closed_error()

    async def drain(self) -> None:
        """Wait until every command queued so far has been written (or the connection ended):
        a consumer closes after its last FIN this way, and the FIN is not lost."""
        while (self._protocol.output_size or self._writing) and not self.closed:
            await self._drained.wait()

    def close(self) -> None:
        """End the connection now (idempotent)."""
        self.closed = True
        self._scope.cancel()

    async def wait_closed(self) -> ConnectionClosedError | None:
        """Wait until the connection has ended; return why (None after :meth:`close`)."""
        await self._ended.wait()
        return self._error

    # -- the tasks -----------------------------------------------------------------------------

    def _closed_error(self) -> ConnectionClosedError:
        if self._error is not None:
            return ConnectionClosedError(str(self._error))
        return ConnectionClosedError(f"{self.address}: the connection is closed")

    async def _run(self) -> None:
        try:
            with self._scope:
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._read_loop)
                        nursery.start_soon(self._write_loop)
                except* _TRANSPORT_ERRORS as group:
                    self._error = ConnectionClosedError(f"{self.address}: {_first_error(group)}")
        finally:
            self.closed = True
            self._has_output.set()
            self._drained.set()
            self._close_wait.set()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)
            self._ended.set()

    async def _read_loop(self) -> None:
        stream, protocol, on_event = self._stream, self._protocol, self._on_event
        timeout = self._config.read_timeout
        with trio.CancelScope(deadline=trio.current_time() + timeout) as idle:
            while True:
                data = await stream.receive_some(RECEIVE_SIZE)
                if not data:
                    raise ConnectionClosedError("nsqd closed the connection")
                idle.deadline = trio.current_time() + timeout
                for event in protocol.receive_data(data):
                    if type(event) is Response and event.data == CLOSE_WAIT:
                        self._got_close_wait = True
                        self._close_wait.set()
                    on_event(event)
                if protocol.output_size:
                    self._has_output.set()
        raise ConnectionClosedError(f"nothing from nsqd for {timeout:g} s (read_timeout)")

    async def _write_loop(self) -> None:
        stream, protocol = self._stream, self._protocol
        timeout = self._config.write_timeout
        while True:
            if not protocol.output_size:
                await self._has_output.wait()
                self._has_output = trio.Event()
                continue
            data = protocol.data_to_send()
            self._writing = True
            self.writes += 1
            with trio.move_on_after(timeout) as late:
                await stream.send_all(data)
            if late.cancelled_caught:
                raise ConnectionClosedError(f"a write took over {timeout:g} s (write_timeout)")
            self._writing = False
            self._drained.set()
            self._drained = trio.Event()


def _first_error(group: BaseExceptionGroup[BaseException]) -> ConnectionClosedError:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    if isinstance(error, ConnectionClosedError):
        return error
    return ConnectionClosedError(f"connection lost: {error!r}")


# -- setup --------------------------------------------------------------------------------------


async def _dial(address: str, config: ClientConfig) -> SocketStream:
    host, port = split_address(address)
    try:
        with trio.fail_after(config.dial_timeout):
            tcp = await trio.open_tcp_stream(host, port)
    except trio.TooSlowError:
        raise ConnectError(f"{address}: no connection within {config.dial_timeout:g} s") from None
    except OSError as error:
        raise ConnectError(f"{address}: cannot connect: {error}") from error
    # The shared SocketStream costs a scheduler round per wait, not per call.
    return SocketStream(socket.socket(fileno=tcp.socket.detach()))


class _Setup:
    """The handshake's reading and writing, frame by frame, each bounded in time."""

    def __init__(self, address: str, stream: trio.abc.Stream, config: ClientConfig) -> None:
        self.address = address
        self.stream = stream
        self.config = config
        self.protocol = ClientProtocol()

    async def write(self, data: bytes) -> None:
        with trio.fail_after(self.config.write_timeout):
            await self.stream.send_all(data)

    async def read_frame(self) -> Frame:
        with trio.fail_after(self.config.read_timeout):
            while (frame := self.protocol.next_frame()) is None:
                data = await self.stream.receive_some(RECEIVE_SIZE)
                if not data:
                    raise ConnectError(f"{self.address}: nsqd closed the connection during setup")
                self.protocol.feed(data)
        return frame

    def upgrade_transport(self) -> trio.abc.Stream:
        """The stream a new layer goes over: bytes read past the last frame come first."""
        leftover = self.protocol.take_unparsed()
        return PrefixedStream(self.stream, leftover) if leftover else self.stream

    async def start_tls(self) -> None:
        context = self.config.ssl_context()
        assert context is not None
        host = split_address(self.address)[0]
        tls = trio.SSLStream(
            self.upgrade_transport(),
            context,
            server_hostname=host if context.check_hostname else None,
        )
        self.stream = tls
        with trio.fail_after(self.config.read_timeout):
            await tls.do_handshake()
        expect_ok(await self.read_frame(), "TLS")

    async def start_compression(self, negotiated: Negotiated) -> None:
        transport = self.upgrade_transport()
        if negotiated.snappy:
            self.stream = SnappyStream(transport)
        else:
            level = negotiated.deflate_level or self.config.deflate_level
            self.stream = DeflateStream(transport, level)
        expect_ok(await self.read_frame(), "snappy" if negotiated.snappy else "deflate")

    async def run(self) -> tuple[Negotiated, AuthIdentity | None]:
        config = self.config
        await self.write(MAGIC_V2 + encode_identify(config.identify_body()))
        negotiated = parse_identify_response(await self.read_frame())
        if config.wants_tls and not negotiated.tls:
            raise ConnectError(f"{self.address}: TLS is configured but nsqd does not offer it")
        if negotiated.tls:
            await self.start_tls()
        if negotiated.snappy or negotiated.deflate:
            await self.start_compression(negotiated)
        auth = None
        if negotiated.auth_required:
            if not config.auth_secret:
                raise ConnectError(f"{self.address}: nsqd requires AUTH and no auth_secret is set")
            await self.write(encode_auth(config.auth_secret))
            auth = parse_auth_response(await self.read_frame())
        return negotiated, auth


async def _connect(
    address: str,
    config: ClientConfig,
    on_event: EventHandler,
    stream: trio.abc.Stream | None,
) -> Connection:
    if stream is None:
        stream = await _dial(address, config)
    setup = _Setup(address, stream, config)
    try:
        negotiated, auth = await setup.run()
    except BaseException as error:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(setup.stream)
        if isinstance(error, trio.TooSlowError):
            raise ConnectError(f"{address}: setup timed out") from None
        if isinstance(error, ConnectError):
            raise
        transport = trio.BrokenResourceError | trio.ClosedResourceError | OSError
        if isinstance(error, transport | ConnectionClosedError):
            raise ConnectError(f"{address}: setup failed: {error.__cause__ or error}") from error
        raise
    return Connection(address, setup.stream, setup.protocol, config, negotiated, auth, on_event)


async def run_connection(
    address: str,
    config: ClientConfig,
    on_event: EventHandler,
    *,
    stream: trio.abc.Stream | None = None,
    task_status: trio.TaskStatus[Connection] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Connect and set up, hand the :class:`Connection` to ``nursery.start``, then serve it
    until it ends (see the module docstring). ``stream``, if given, is used instead of
    dialling ``address`` (a memory stream in tests, or a custom transport)."""
    connection = await _connect(address, config, on_event, stream)
    task_status.started(connection)
    await connection._run()


@asynccontextmanager
async def open_connection(
    address: str,
    config: ClientConfig,
    on_event: EventHandler,
    *,
    stream: trio.abc.Stream | None = None,
) -> AsyncIterator[Connection]:
    """A connection for the block; closed when the block ends."""
    async with single_errors(), trio.open_nursery() as nursery:
        connection: Connection = await nursery.start(
            partial(run_connection, address, config, on_event, stream=stream)
        )
        try:
            yield connection
        finally:
            connection.close()

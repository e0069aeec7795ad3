"""TCP listeners and socket streams that cost one scheduler round per wait, not per call.

``trio.SocketStream`` passes a checkpoint on every ``send_all`` and ``receive_some``, even
when the kernel takes or gives the bytes at once, and ``trio.serve_listeners`` accepts one
connection per wake-up. A client that publishes and waits for its OK then costs the broker
three trips through trio's run loop per round trip (receive, send, wait for the next
command) where one would do. Here a call that the kernel can complete at once returns without
yielding; a task yields when it must wait (``wait_readable``/``wait_writable``), and a stream
that keeps finding data ready passes a checkpoint every few receives, so a client that never
pauses cannot keep others from their turn. The accept loop takes every pending connection per
wake-up, and backs off when the process runs out of descriptors, as trio and Go's servers do.

Sends are counted the same way: a task whose sends keep completing while the stream's
receiving side does not wait (a pump writing to a fast reader) passes a checkpoint every few
sends; a send after the receiving side has waited (the usual answer to a request) does not.

Apart from that one rule (trio's own streams checkpoint on every call), both keep trio's
contracts, and ``trio.testing.check_half_closeable_stream`` checks the rest in
tests/common/test_sockets.py: ``BusyResourceError`` for a second concurrent call on the same
side, ``ClosedResourceError`` after ``aclose``, ``BrokenResourceError`` for a connection the
peer broke.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Final

import trio

__all__ = ["SocketStream", "TcpListener", "open_tcp_listeners", "serve_tcp_listeners"]

log = logging.getLogger("trinsq.net")

DEFAULT_RECEIVE_SIZE: Final = 65536
# A stream passes a checkpoint once it has received (sent) this many times without waiting.
RECEIVES_PER_CHECKPOINT: Final = 2
SENDS_PER_CHECKPOINT: Final = 4
# accept(2) errors that mean the process or system is out of something: wait and retry.
ACCEPT_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
# accept(2) errors about the one connection being accepted: skip it and go on.
ACCEPT_SKIP_ERRNOS: Final = frozenset(
    {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN, errno.ENOPROTOOPT,
     errno.EHOSTDOWN, errno.ENONET, errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETUNREACH}
)  # fmt: skip
ACCEPT_BACKOFF: Final = 0.1  # seconds, first wait after a capacity error
ACCEPT_BACKOFF_MAX: Final = 1.0
# Connections accepted per wake-up before the accept loop lets others run.
ACCEPTS_PER_TURN: Final = 64


def _stream_error(error: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    """What a failed socket call means to a stream's user."""
    if error.errno == errno.EBADF:
        return trio.ClosedResourceError("this socket was already closed")
    return trio.BrokenResourceError(f"socket connection broken: {error}")


@contextmanager
def _stream_errors() -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise _stream_error(error) from error


class SocketStream(trio.abc.HalfCloseableStream):
    """A connected TCP socket as a trio stream (``socket`` is the non-blocking stdlib socket)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        with suppress(OSError):  # not TCP (a socketpair in tests)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket = sock
        self._receiving = False
        self._sending = False
        self._receives_unyielded = 0
        self._sends_unyielded = 0
        self._receive_waited = False  # since the last send
        self._shut_write = False

    def _check_open(self) -> None:
        if self.socket.fileno() == -1:
            raise trio.ClosedResourceError("this socket was already closed")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this stream")
        self._receiving = True
        try:
            if self._receives_unyielded >= RECEIVES_PER_CHECKPOINT:
                self._receives_unyielded = 0
                await trio.lowlevel.checkpoint()
            sock = self.socket
            while True:
                self._check_open()
                # Plain try/except rather than context managers: this runs per receive.
                try:
                    data = sock.recv(max_bytes)
                except BlockingIOError:
                    pass
                except OSError as error:
                    raise _stream_error(error) from error
                else:
                    self._receives_unyielded += 1
                    return data
                self._receives_unyielded = 0
                self._receive_waited = True
                try:
                    await trio.lowlevel.wait_readable(sock)
                except OSError as error:
                    raise _stream_error(error) from error
        finally:
            self._receiving = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        try:
            if self._shut_write:
                raise trio.ClosedResourceError("can't send data after sending EOF")
            self._check_open()
            sock = self.socket
            with memoryview(data) as view:
                total = len(view)
                if not total:
                    await trio.lowlevel.checkpoint()
                    return
                if self._receive_waited:
                    self._receive_waited = False
                    self._sends_unyielded = 0
                elif self._sends_unyielded >= SENDS_PER_CHECKPOINT:
                    self._sends_unyielded = 0
                    await trio.lowlevel.checkpoint()
                self._sends_unyielded += 1
                sent = 0
                while True:
                    try:
                        sent += sock.send(view[sent:] if sent else view)
                    except BlockingIOError:
                        pass
                    except OSError as error:
                        raise _stream_error(error) from error
                    if sent >= total:
                        return
                    self._sends_unyielded = 0
                    try:
                        await trio.lowlevel.wait_writable(sock)
                    except OSError as error:
                        raise _stream_error(error) from error
                    self._check_open()
        finally:
            self._sending = False

    def send_now(self, data: bytes | bytearray) -> int:
        """Send what the kernel takes of ``data`` at once, without waiting; return how many
        bytes that was (a synchronous caller, such as a timer, can write a small frame).

        Raises:
            trio.BusyResourceError: a ``send_all`` is under way.
            trio.ClosedResourceError, trio.BrokenResourceError: as ``send_all``.
        """
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        if self._shut_write:
            raise trio.ClosedResourceError("can't send data after sending EOF")
        self._check_open()
        try:
            return self.socket.send(data)
        except BlockingIOError:
            return 0
        except OSError as error:
            raise _stream_error(error) from error

    async def wait_send_all_might_not_block(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        try:
            self._check_open()
            with _stream_errors():
                await trio.lowlevel.wait_writable(self.socket)
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint()
            if self._shut_write:
                return
            self._check_open()
            self._shut_write = True
            with _stream_errors():
                self.socket.shutdown(socket.SHUT_WR)
        finally:
            self._sending = False

    def close(self) -> None:
        """Close the socket now (``aclose`` without its checkpoint); idempotent."""
        if self.socket.fileno() != -1:
            trio.lowlevel.notify_closing(self.socket)
            self.socket.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


class TcpListener(trio.abc.Listener[SocketStream]):
    """A listening TCP socket (``socket``: the non-blocking stdlib socket)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.socket = sock
        self._kind = (int(sock.family), int(sock.type), sock.proto)
        self._backoff = 0.0

    def accept_ready(self, limit: int) -> list[tuple[socket.socket, object]]:
        """Accept up to ``limit`` connections that are already waiting, without blocking.

        Raises:
            OSError: a capacity error (``ACCEPT_CAPACITY_ERRNOS``) with nothing accepted, or
                any error that is not about one connection.
        """
        accepted: list[tuple[socket.socket, object]] = []
        sock = self.socket
        family, kind, proto = self._kind
        while len(accepted) < limit:
            try:
                # socket.accept() looks up self.family and self.type as enums on every call,
                # a third of an accept's cost; the C-level _accept gives the bare descriptor.
                fd, address = sock._accept()  # type: ignore[attr-defined]
                accepted.append((socket.socket(family, kind, proto, fileno=fd), address))
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno in ACCEPT_SKIP_ERRNOS:
                    continue
                if accepted and error.errno in ACCEPT_CAPACITY_ERRNOS:
                    break  # serve these first; the next wake-up meets the error again
                raise
        return accepted

    async def accept(self) -> SocketStream:
        while True:
            if self.socket.fileno() == -1:
                raise trio.ClosedResourceError("this listener was already closed")
            ready = self.accept_ready(1)
            if ready:
                await trio.lowlevel.checkpoint()
                return SocketStream(ready[0][0])
            await trio.lowlevel.wait_readable(self.socket)

    async def aclose(self) -> None:
        if self.socket.fileno() != -1:
            trio.lowlevel.notify_closing(self.socket)
            self.socket.close()
        await trio.lowlevel.checkpoint()

    async def serve(
        self, handler: Callable[[SocketStream], Awaitable[object]], nursery: trio.Nursery
    ) -> None:
        """Accept connections until cancelled, each served by ``handler`` in ``nursery``
        (which closes its stream). Out of descriptors (EMFILE, ENFILE) or memory, it logs,
        waits (0.1 s, doubling to 1 s while the error lasts) and tries again."""
        async with self:
            while True:
                try:
                    ready = self.accept_ready(ACCEPTS_PER_TURN)
                except OSError as error:
                    if error.errno not in ACCEPT_CAPACITY_ERRNOS:
                        raise
                    self._backoff = min(max(self._backoff * 2, ACCEPT_BACKOFF), ACCEPT_BACKOFF_MAX)
                    log.error(
                        "accept failed: %s (%s); retrying in %.1fs",
                        errno.errorcode.get(error.errno or 0, "?"),
                        os.strerror(error.errno or 0),
                        self._backoff,
                    )
                    await trio.sleep(self._backoff)
                    continue
                self._backoff = 0.0
                for sock, _ in ready:
                    try:
                        stream = SocketStream(sock)
                    except OSError:  # the peer is already gone
                        sock.close()
                        continue
                    nursery.start_soon(_run_handler, handler, stream)
                if len(ready) < ACCEPTS_PER_TURN:
                    await trio.lowlevel.wait_readable(self.socket)
                else:
                    await trio.lowlevel.checkpoint()


async def _run_handler(
    handler: Callable[[SocketStream], Awaitable[object]], stream: SocketStream
) -> None:
    try:
        await handler(stream)
    finally:
        stream.close()


async def open_tcp_listeners(port: int, host: str | None = None) -> list[TcpListener]:
    """Listeners on ``host`` (None: every interface) and ``port``, as ``trio.open_tcp_listeners``
    binds them (SO_REUSEADDR, IPv6-only for IPv6 addresses, its backlog).

    Raises:
        OSError: the address cannot be bound or resolved.
    """
    opened = await trio.open_tcp_listeners(port, host=host)
    return [TcpListener(socket.socket(fileno=listener.socket.detach())) for listener in opened]


async def serve_tcp_listeners(
    handler: Callable[[SocketStream], Awaitable[object]],
    listeners: list[TcpListener],
    *,
    handler_nursery: trio.Nursery,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve every listener until cancelled (``trio.serve_listeners`` for :class:`TcpListener`)."""
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(partial(listener.serve, handler, handler_nursery))
        task_status.started()

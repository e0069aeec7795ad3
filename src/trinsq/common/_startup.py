"""Start-up failures as one line naming what failed and where, in nsqd's words
("failed to listen on 127.0.0.1:4151 - address already in use"); shared by broker and registry.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Iterator

import trio

from ._options import split_host_port
from ._sockets import TcpListener, open_tcp_listeners

__all__ = [
    "StartupError",
    "bind_http_socket",
    "leaf_errors",
    "listen_failed",
    "open_listeners",
    "os_reason",
    "start_http",
    "startup_failure",
]


class StartupError(OSError):
    """A server cannot start. ``str()`` is the whole story, e.g. ``failed to listen on
    127.0.0.1:4151 - address already in use``; ``errno`` is the OS error number when there
    is one, and ``__cause__`` the original error."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


def os_reason(error: OSError) -> str:
    """An OS error in Go's words: the C library's text, lower-cased ("permission denied")."""
    code = error.errno
    text = os.strerror(code) if isinstance(code, int) and code > 0 else error.strerror
    text = text or str(error)
    return text[:1].lower() + text[1:]


def listen_failed(address: str, error: OSError) -> StartupError:
    return StartupError(f"failed to listen on {address} - {os_reason(error)}", error.errno)


async def open_listeners(address: str, option: str) -> list[TcpListener]:
    """TCP listeners on ``address`` (an empty host: every interface).

    Raises:
        StartupError: the address cannot be bound or resolved.
    """
    host, port = split_host_port(address, option)
    try:
        return await open_tcp_listeners(port, host=host or None)
    except OSError as error:
        raise listen_failed(address, error) from error


def bind_http_socket(address: str) -> socket.socket:
    """A socket bound to ``address`` as hypercorn binds one (IPv6 when the host has a colon,
    TCP_NODELAY, SO_REUSEADDR), for it to serve through ``fd://``: hypercorn leaves its own
    socket open when the bind fails.

    Raises:
        StartupError: the address cannot be bound or resolved.
    """
    host, port = split_host_port(address, "http_address")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise listen_failed(address, error) from error
    return sock


async def start_http(
    nursery: trio.Nursery, serve: Callable[..., Awaitable[object]], address: str
) -> tuple[str, int]:
    """Start ``serve`` (hypercorn on ``address``) in ``nursery``; return the bound address.

    Raises:
        StartupError: hypercorn could not bind (it reports that inside exception groups).
    """
    try:
        bound: tuple[str, int] = await nursery.start(serve)
    except (OSError, BaseExceptionGroup) as error:
        leaves = leaf_errors(error)
        if len(leaves) != 1 or not isinstance(leaves[0], OSError):
            raise
        failure = leaves[0]
        if isinstance(failure, StartupError):
            raise failure from failure.__cause__
        raise listen_failed(address, failure) from failure
    return bound


def startup_failure(error: BaseException) -> OSError | None:
    """The one OS error (a :class:`StartupError` after our conversions) that stopped a
    server, however deep in exception groups its nurseries put it; None for anything else."""
    leaves = leaf_errors(error)
    if len(leaves) == 1 and isinstance(leaves[0], OSError):
        return leaves[0]
    return None


def leaf_errors(error: BaseException) -> list[BaseException]:
    """The errors inside ``error``'s exception groups, however deep (``[error]`` when it is
    not a group)."""
    return list(_leaves(error))


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error

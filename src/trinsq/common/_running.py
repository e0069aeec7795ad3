"""Running a server in the foreground until a signal, and unwrapping exception groups for
embedding callers; shared by `trinsq broker` and `trinsq registry`."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import trio

from ._startup import StartupError, startup_failure

__all__ = ["Stoppable", "host_port", "run_until_signal", "single_errors"]


def host_port(address: tuple[str, int] | None) -> str | None:
    """A bound ``(host, port)`` as the ``host:port`` clients are given (None stays None)."""
    if address is None:
        return None
    host, port = address
    return f"{host}:{port}"


class Stoppable(Protocol):
    def request_shutdown(self) -> None: ...


ServeFunction = Callable[..., Awaitable[Any]]


def run_until_signal(
    name: str,
    server: Stoppable,
    serve: ServeFunction,
    log: logging.Logger,
) -> int:
    """Run ``serve(server)`` in the foreground; SIGINT or SIGTERM stops it gracefully.

    Returns the exit status: 0 after a signal, 1 with one line on stderr when an OS error
    stops it (at start-up a :class:`StartupError` saying what failed where: an address in
    use, a locked or unwritable data path).
    """

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, server)
                async for signum in signals:
                    log.info("received signal %s", signal.Signals(signum).name)
                    server.request_shutdown()
                    break
                # The server now stops gracefully; a second signal changes nothing.

    try:
        trio.run(main)
    except BaseException as error:
        failure = startup_failure(error)
        if failure is None:
            raise
        print(f"trinsq {name}: {failure}", file=sys.stderr)
        return 1
    return 0


@asynccontextmanager
async def single_errors() -> AsyncIterator[None]:
    """Hand a lone error out of an exception group to the caller as itself (trio-websocket
    does the same for its context managers); a :class:`StartupError` however deep the
    server's nurseries nested it."""
    try:
        yield
    except BaseExceptionGroup as group:
        failure = startup_failure(group)
        if isinstance(failure, StartupError):
            raise failure from failure.__cause__  # the original OS error
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise

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

from ._startup import StartupError, leaf_errors, startup_failure

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

    Returns the exit status: 0 after a signal; 1 when an error stops it. An OS error before
    the server has started is told in one line on stderr (a :class:`StartupError` saying
    what failed where: an address in use, a locked or unwritable data path); any other
    error, and any error once it serves, is logged as it is: its type, message and
    traceback.
    """
    started = False

    async def main() -> None:
        nonlocal started
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve, server)
                started = True
                async for signum in signals:
                    log.info("received signal %s", signal.Signals(signum).name)
                    server.request_shutdown()
                    break
                # The server now stops gracefully; a second signal changes nothing.

    try:
        trio.run(main)
    except Exception as error:
        failure = None if started else startup_failure(error)
        if failure is not None:
            print(f"trinsq {name}: {failure}", file=sys.stderr)
        else:
            _report_crash(name, error, log)
        return 1
    return 0


def _report_crash(name: str, error: Exception, log: logging.Logger) -> None:
    """Log what stopped the server, unwrapped from trio's exception groups when it is one
    error (what a group says of itself, "Exceptions from Trio nursery", tells nothing)."""
    leaves = leaf_errors(error)
    shown = leaves[0] if len(leaves) == 1 else error
    log.critical(
        "trinsq %s stopped by an unexpected error - %s: %s",
        name,
        type(shown).__name__,
        shown,
        exc_info=shown,
    )


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

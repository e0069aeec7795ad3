"""Plain HTTP served by the fast lane itself, with hypercorn brought in only when needed.

A broker whose HTTP API only answers the lane's routes (/ping, /pub; the registry's /lookup
and friends) never needs hypercorn, h2 and wsproto (about 4 MB and 70 ms at start). Each
connection starts here: every complete fast request is answered from the receive buffer in
the exact bytes hypercorn's lane writes (``_fastlane``), and at the first request that is not
the lane's, the connection, with the bytes already received, goes to hypercorn for good
(imported in a worker thread the first time; see ``_hypercornserve.HandOff``). Keep-alive,
shutdown and closing follow hypercorn's: an idle connection is closed after
``keep_alive_timeout`` or as soon as the server stops, a busy one gets ``graceful_timeout``.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import trio

from ._fastlane import FastRoute, answer_requests, date_header
from ._sockets import SocketStream, TcpListener

if TYPE_CHECKING:
    from ._hypercornserve import HandOff

__all__ = ["BACKLOG", "KEEP_ALIVE_TIMEOUT", "LaneServer"]

BACKLOG: Final = 100  # hypercorn's default listen backlog
KEEP_ALIVE_TIMEOUT: Final = 5.0  # hypercorn's default
_MAX_RECV: Final = 1 << 16  # what hypercorn reads at a time


class LaneServer:
    """Serves plain HTTP on one bound socket.

    Args:
        app: the ASGI app hypercorn serves what the lane does not take.
        fast_routes: the lane's routes by method and path.
        make_handoff: builds hypercorn's side; called once, after its module is imported.
    """

    def __init__(
        self,
        app: Any,
        fast_routes: dict[tuple[bytes, bytes], FastRoute],
        make_handoff: Callable[[Any], HandOff],
        *,
        graceful_timeout: float,
        keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
    ) -> None:
        self._app = app
        self._routes = fast_routes
        self._make_handoff = make_handoff
        self._graceful_timeout = graceful_timeout
        self._keep_alive_timeout = keep_alive_timeout
        self._handoff: HandOff | None = None
        self._handoff_lock = trio.Lock()
        self._idle: set[trio.CancelScope] = set()  # connections waiting for a request
        self._terminated = False

    async def serve(
        self,
        sock: socket.socket,
        shutdown_trigger: Callable[[], Awaitable[None]],
        *,
        task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until ``shutdown_trigger`` returns, then stop as hypercorn does; reports the
        bound ``(host, port)``."""
        sock.listen(BACKLOG)
        listener = TcpListener(sock)
        host, port = sock.getsockname()[:2]
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as accepting:
                accepting.start_soon(listener.serve, self._connection, connections)
                task_status.started((host, port))
                await shutdown_trigger()
                accepting.cancel_scope.cancel()
            await listener.aclose()
            await self._terminate()
            connections.cancel_scope.deadline = trio.current_time() + self._graceful_timeout

    async def _terminate(self) -> None:
        self._terminated = True
        for scope in list(self._idle):
            scope.cancel()
        if self._handoff is not None:
            await self._handoff.terminate()

    async def _connection(self, stream: SocketStream) -> None:
        held = b""
        handed_off = False
        try:
            deadline = trio.current_time() + self._keep_alive_timeout
            while True:
                with trio.CancelScope(deadline=deadline) as idle:
                    if self._terminated:
                        idle.cancel()
                    self._idle.add(idle)
                    try:
                        data = await stream.receive_some(_MAX_RECV)
                    finally:
                        self._idle.discard(idle)
                if idle.cancelled_caught:
                    return
                if not data:
                    # The client stopped sending: a request it left unfinished is h11's to
                    # answer (400), as when hypercorn served the lane.
                    rest = held
                else:
                    turn = answer_requests(held + data, self._routes, date_header)
                    held, rest = turn.held, turn.rest
                    if turn.answers:
                        with trio.CancelScope(shield=True):  # never half a response on the wire
                            await stream.send_all(b"".join(turn.answers))
                        if turn.close:
                            return
                        deadline = trio.current_time() + self._keep_alive_timeout
                if rest:
                    handoff = await self._load_handoff()
                    handed_off = True
                    await handoff.serve(stream, rest)  # closes the stream when done
                    return
                if not data:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client went away
        finally:
            if not handed_off:
                with (
                    trio.CancelScope(shield=True),
                    contextlib.suppress(
                        trio.BrokenResourceError, trio.ClosedResourceError, OSError
                    ),
                ):
                    await stream.send_eof()
                await trio.aclose_forcefully(stream)

    async def _load_handoff(self) -> HandOff:
        async with self._handoff_lock:
            if self._handoff is None:
                # hypercorn's import takes tens of ms: the event loop keeps serving meanwhile.
                await trio.to_thread.run_sync(
                    importlib.import_module, "trinsq.common._hypercornserve"
                )
                self._handoff = self._make_handoff(self._app)
                if self._terminated:
                    await self._handoff.terminate()
        return self._handoff

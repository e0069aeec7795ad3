"""Plain HTTP served by the fast lane itself, with hypercorn brought in only when needed.

A broker whose HTTP API only answers the lane's routes (/ping, /pub; the registry's /lookup
and friends) never needs hypercorn, h2 and wsproto (about 4 MB and 70 ms at start). Each
connection starts here: every complete fast request is answered from the receive buffer in
the exact bytes hypercorn's lane writes (``_fastlane``), and at the first request that is not
the lane's, the connection, with the bytes already received, goes to hypercorn for good
(imported in a worker thread the first time; see ``_hypercornserve.HandOff``). Keep-alive,
shutdown and closing follow hypercorn's: an idle connection is closed after
``keep_alive_timeout`` or as soon as the server stops, a busy one gets ``graceful_timeout``.
Request bodies follow ``_bodylimits``: a declared length over the route's limit is refused at
once, and a fast request whose body stops arriving for ``body_timeout`` is answered 408.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import trio

from ._bodylimits import BODY_TIMEOUT, TIMEOUT_STATUS, BodyLimits, body_wait, error_headers
from ._fastlane import FastRoute, answer_requests, date_header, encode_response, reason_phrase
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
        body_limits: the routes whose request bodies have a limit, by method and path.
        body_timeout: how long a request body may go without a byte before it is answered 408
            (0: for ever).
    """

    def __init__(
        self,
        app: Any,
        fast_routes: dict[tuple[bytes, bytes], FastRoute],
        make_handoff: Callable[[Any], HandOff],
        *,
        graceful_timeout: float,
        keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
        body_limits: BodyLimits | None = None,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self._app = app
        self._routes = fast_routes
        self._limits = dict(body_limits or {})
        self._body_wait = body_wait(body_timeout)
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
        held_body = False  # ``held`` is a fast request whose body is on its way
        handed_off = False
        try:
            due = trio.current_time() + self._keep_alive_timeout
            while True:
                # A scope per receive, or a deadline moved per answer, cost more than the
                # request they timed. So answers only move ``due`` on; a scope lives until its
                # deadline, and one that fires before ``due`` is replaced by one at ``due``.
                # Only the receive is ever cancelled: answers are sent shielded, and the
                # deadline is lifted before hypercorn takes over (it keeps its own time).
                with trio.CancelScope(deadline=due) as idle:
                    while True:
                        if self._terminated:
                            idle.cancel()
                        self._idle.add(idle)
                        try:
                            data = await stream.receive_some(_MAX_RECV)
                        finally:
                            self._idle.discard(idle)
                        if not data:
                            # The client stopped sending: a request it left unfinished is
                            # h11's to answer (400), as when hypercorn served the lane.
                            rest = held
                        else:
                            turn = answer_requests(
                                held + data, self._routes, date_header, self._limits
                            )
                            held, rest, held_body = turn.held, turn.rest, turn.held_body
                            if turn.answers:
                                await _send_answer(stream, b"".join(turn.answers))
                                if turn.close:
                                    return
                                due = trio.current_time() + self._keep_alive_timeout
                                if due < idle.deadline:  # after a long body wait
                                    idle.deadline = due
                            if held_body:  # the body is arriving: it may pause, not stall
                                due = trio.current_time() + self._body_wait
                        if rest:
                            idle.deadline = math.inf
                            handoff = await self._load_handoff()
                            handed_off = True
                            await handoff.serve(stream, rest)  # closes the stream when done
                            return
                        if not data:
                            return
                if self._terminated or trio.current_time() >= due:
                    break
            # Idle too long (or a body stalled), or the server is stopping.
            if held_body and not self._terminated:
                await _send_answer(stream, _timeout_answer())
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


async def _send_answer(stream: SocketStream, data: bytes) -> None:
    # Nearly every answer fits the socket's buffer at once; the rest of one that does not is
    # sent shielded: never half a response on the wire.
    sent = stream.send_now(data)
    if sent < len(data):
        with trio.CancelScope(shield=True):
            await stream.send_all(memoryview(data)[sent:])


def _timeout_answer() -> bytes:
    """408, as hypercorn writes the errors it answers by itself."""
    reason = reason_phrase(TIMEOUT_STATUS).encode()
    headers = error_headers() + date_header()
    return encode_response(TIMEOUT_STATUS, reason, headers, b"", close=False)

"""hypercorn's HTTP/1.1 connections made to answer as Go's net/http does for nsqd and
nsqlookupd: a reason phrase on every status line, and a connection closed after a response
marked ``Connection: close``.

hypercorn 0.18 builds its h11 responses without a reason, so the line reads ``HTTP/1.1 404 ``.
And under quart-trio it never closes a ``Connection: close`` exchange: quart-trio cancels the
request's task once the response is sent, and that task is the one that closes the socket, so
the close is cancelled and the client waits for an EOF that never comes. hypercorn offers no
hook for either: no setting, and its connection classes are chosen by name inside hypercorn.
So :func:`install` puts a subclass of hypercorn's ``H11Protocol`` under that name, once. The
subclass changes only servers whose config is a :class:`GoStyleConfig`; any other
hypercorn server in the process behaves as before, but for h11's chunk-size limit (see
:func:`install`). HTTP/2 is untouched.

The same subclass carries the fast lane (``_fastlane``): the routes a :class:`GoStyleConfig`
names in ``fast_routes`` are answered from the receive buffer while the connection is between
requests, with no quart request, no stream and no task; whatever is not for the lane goes to
h11 from its first byte, and the connection stays with h11 until it is idle again.

Request bodies are bounded and timed as nsqd bounds them, the lane's as well as h11's (see
``_h11bodies``, of which the subclass is one).
"""

from __future__ import annotations

from typing import Any, Final

import h11
import hypercorn.protocol
import trio
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import H11SendableEvent

from ._fastlane import FastRoute, answer_requests, reason_phrase
from ._h11bodies import BodyConfig, BodyH11Protocol, install_chunk_size_limit

__all__ = ["GoStyleConfig", "install", "reason_phrase"]  # reason_phrase: from _fastlane

# The idle (keep-alive) timer is re-armed at most this often by the lane: a connection busy
# only with fast requests is closed no sooner than keep_alive_timeout minus this when it stops.
_IDLE_REARM: Final = 1.0


class GoStyleConfig(BodyConfig):
    """hypercorn settings for a server whose HTTP/1.1 answers follow Go's net/http.

    ``fast_routes`` maps ``(method, path)`` to the routes the fast lane answers itself; the
    body limits and timeout are :class:`BodyConfig`'s.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fast_routes: dict[tuple[bytes, bytes], FastRoute] = {}


class _ReasonH11Protocol(BodyH11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast_held = b""  # the start of a fast request, waiting for the rest
        self._fast_held_body = False  # ... with its head complete: its body is arriving
        self._fast_rearmed = -_IDLE_REARM  # when the lane last re-armed the idle timer

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if (
            isinstance(self.config, GoStyleConfig)
            and isinstance(event, h11.Response | h11.InformationalResponse)
            and not event.reason
        ):
            event = type(event)(
                status_code=event.status_code,
                headers=event.headers.raw_items(),  # keeps the names as the app wrote them
                http_version=event.http_version,
                reason=reason_phrase(event.status_code),
            )
        await super()._send_h11_event(event)

    async def handle(self, event: Event) -> None:
        config = self.config
        if (
            isinstance(event, RawData)
            and event.data
            and isinstance(config, GoStyleConfig)
            and config.fast_routes
            and self._between_requests()
        ):
            await self._fast_lane(config, event.data)
        else:
            await self._to_h11(event)

    def _between_requests(self) -> bool:
        connection = self.connection
        return (
            self.stream is None
            and isinstance(connection, h11.Connection)
            and connection.our_state is h11.IDLE
            and connection.their_state is h11.IDLE
            and not connection.trailing_data[0]
            and not self.context.terminated.is_set()
        )

    async def _to_h11(self, event: Event) -> None:
        held = self._fast_held
        if held and not self.answered_for_app:  # a request the lane waited for, then gave up on
            self._fast_held = b""
            self._fast_held_body = False
            await super().handle(RawData(data=held))
        await super().handle(event)

    async def _fast_lane(self, config: GoStyleConfig, data: bytes) -> None:
        """Answer every complete fast request at the front of the buffer, in one send; hand
        the rest to h11 once a request is not for the lane."""
        turn = answer_requests(
            self._fast_held + data,
            config.fast_routes,
            lambda: config.response_headers("h11"),
            config.body_limits,
        )
        was_held_body = self._fast_held_body
        self._fast_held, self._fast_held_body = turn.held, turn.held_body
        if turn.answers:
            await self.send(RawData(data=b"".join(turn.answers)))
            if turn.close:
                await self.send(Closed())
                return
        if turn.held_body:  # a body on its way is timed as h11's are, not as idleness
            if not was_held_body:
                await self.send(Updated(idle=False))
            self.arm_body_timer()
        elif turn.answers or was_held_body:
            if was_held_body:
                self.disarm_body_timer()
                self._fast_rearmed = -_IDLE_REARM  # the idle timer was stopped: restart it
            now = trio.current_time()
            if now - self._fast_rearmed >= _IDLE_REARM:
                self._fast_rearmed = now
                await self.send(Updated(idle=True))
        if turn.rest:
            await super().handle(RawData(data=turn.rest))

    async def _maybe_recycle(self) -> None:
        if not isinstance(self.config, GoStyleConfig):
            await super()._maybe_recycle()
            return
        # Runs in the request's task, which quart-trio cancels right after the response:
        # shielded, the close (or the return to keep-alive) completes. Neither waits on the
        # peer: closing is shutdown() and close(); keep-alive only re-arms a timer.
        with trio.CancelScope(shield=True):
            await super()._maybe_recycle()


def install() -> None:
    """Make hypercorn build HTTP/1.1 connections with :class:`_ReasonH11Protocol`, and h11
    refuse a chunk size of more than 16 hex digits, as Go does. The latter holds for every h11
    connection in the process (h11 has no setting per connection); no real peer sends such a
    size, which announces 2**64 bytes or more.

    Idempotent; leaves hypercorn alone if something else already replaced the class.
    """
    # The global that hypercorn's ProtocolWrapper instantiates for each HTTP/1.1 connection.
    namespace = vars(hypercorn.protocol)
    if namespace["H11Protocol"] is H11Protocol:
        namespace["H11Protocol"] = _ReasonH11Protocol
    install_chunk_size_limit()

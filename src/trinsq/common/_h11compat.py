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
hypercorn server in the process behaves as before. HTTP/2 is untouched.

The same subclass carries the fast lane (``_fastlane``): the routes a :class:`GoStyleConfig`
names in ``fast_routes`` are answered from the receive buffer while the connection is between
requests, with no quart request, no stream and no task; whatever is not for the lane goes to
h11 from its first byte, and the connection stays with h11 until it is idle again.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

import h11
import hypercorn.protocol
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import H11SendableEvent

from ._fastlane import NEED_DATA, FastRoute, encode_response, parse_simple_request

__all__ = ["GoStyleConfig", "install", "reason_phrase"]

# The largest body the lane takes; larger ones go through the app, which streams them.
FAST_MAX_BODY: Final = 1 << 20
# The idle (keep-alive) timer is re-armed at most this often by the lane: a connection busy
# only with fast requests is closed no sooner than keep_alive_timeout minus this when it stops.
_IDLE_REARM: Final = 1.0

# Where Go's StatusText differs from http.HTTPStatus (in any Python version).
_GO_TEXT: Final = {
    413: "Request Entity Too Large",
    414: "Request URI Too Long",
    416: "Requested Range Not Satisfiable",
    418: "I'm a teapot",
    422: "Unprocessable Entity",
}


def reason_phrase(status: int) -> str:
    """Go's reason phrase for ``status``; for a code it does not know, ``status code N``."""
    text = _GO_TEXT.get(status)
    if text is not None:
        return text
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status code {status}"


class GoStyleConfig(Config):
    """hypercorn settings for a server whose HTTP/1.1 answers follow Go's net/http.

    ``fast_routes`` maps ``(method, path)`` to the routes the fast lane answers itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fast_routes: dict[tuple[bytes, bytes], FastRoute] = {}


class _ReasonH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast_held = b""  # the start of a fast request, waiting for the rest
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
        if held:  # the start of a request the lane waited for, then gave up on
            self._fast_held = b""
            await super().handle(RawData(data=held))
        await super().handle(event)

    async def _fast_lane(self, config: GoStyleConfig, data: bytes) -> None:
        """Answer every complete fast request at the front of the buffer, in one send; hand
        the rest to h11 once a request is not for the lane."""
        buffer = self._fast_held + data
        self._fast_held = b""
        answers: list[bytes] = []
        close = False
        while buffer:
            request = parse_simple_request(buffer, FAST_MAX_BODY)
            if request == NEED_DATA:
                self._fast_held = buffer  # bounded: MAX_HEAD plus FAST_MAX_BODY
                buffer = b""
                break
            if isinstance(request, str):  # NOT_SIMPLE: h11's, from its first byte
                break
            route = config.fast_routes.get((request.method, request.path))
            if route is None:
                break
            status, headers, body = route(request.query, request.body)
            headers += config.response_headers("h11")
            answers.append(
                encode_response(
                    status, reason_phrase(status).encode(), headers, body, close=request.close
                )
            )
            buffer = buffer[request.consumed :]
            if request.close:
                close = True
                break
        if answers:
            await self.send(RawData(data=b"".join(answers)))
            if close:
                await self.send(Closed())
                return
            now = trio.current_time()
            if now - self._fast_rearmed >= _IDLE_REARM:
                self._fast_rearmed = now
                await self.send(Updated(idle=True))
        if buffer:
            await super().handle(RawData(data=buffer))

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
    """Make hypercorn build HTTP/1.1 connections with :class:`_ReasonH11Protocol`.

    Idempotent; leaves hypercorn alone if something else already replaced the class.
    """
    # The global that hypercorn's ProtocolWrapper instantiates for each HTTP/1.1 connection.
    namespace = vars(hypercorn.protocol)
    if namespace["H11Protocol"] is H11Protocol:
        namespace["H11Protocol"] = _ReasonH11Protocol

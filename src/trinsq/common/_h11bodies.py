"""Request bodies on hypercorn's HTTP/1.1 connections, bounded as nsqd bounds them
(``_bodylimits``): refused as soon as they pass their route's limit, answered 408 when they
stall, and never read to the end once the answer is out.

hypercorn 0.18 hands every byte of a body to the app, however large, and has no read timeout
for a body (its ``read_timeout`` cuts every wait, a long request's too). And once the app has
answered, the rest of the body still goes into the app's queue, which nobody reads any more,
so the connection's reader can wait there forever. For a :class:`BodyConfig` server,
:class:`BodyH11Protocol` (which ``_h11compat`` installs in hypercorn, subclassed) runs
hypercorn's loop over h11's events itself: each body is counted against its route's limit,
timed, and forwarded to the app in a way the connection can call off; an answer sent while
the body is still arriving says ``Connection: close``, and the connection closes after it.

h11 takes chunk sizes of up to 20 hex digits, then waits for 2**80 bytes;
:func:`install_chunk_size_limit` makes it refuse more than 16, as Go's net/http does, so that
hypercorn answers such a chunk 400 like any other malformed one.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

import h11
import h11._readers  # the chunk header pattern (install_chunk_size_limit)
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.events import Body, EndBody
from hypercorn.protocol.events import Data as PassThrough
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h11 import STREAM_ID, H11Protocol
from hypercorn.typing import H11SendableEvent

from ._bodylimits import (
    BODY_TIMEOUT,
    MAX_CHUNK_SIZE_DIGITS,
    TIMEOUT_STATUS,
    BodyLimit,
    BodyLimits,
    body_wait,
    limit_for,
)

__all__ = ["BodyConfig", "BodyH11Protocol", "install_chunk_size_limit"]

_CLOSE: Final = (b"Connection", b"close")  # as h11 writes the header it adds itself
_ANSWERABLE: Final = (h11.IDLE, h11.SEND_RESPONSE)  # nothing of an answer is out yet


class BodyConfig(Config):
    """hypercorn settings with request body limits (by method and path) and a body timeout
    (0: none)."""

    def __init__(self) -> None:
        super().__init__()
        self.body_limits: BodyLimits = {}
        self.body_timeout: float = BODY_TIMEOUT


def _declared_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)  # h11 checked it: digits, one value
    return None


def _closes(response: h11.Response) -> bool:
    return any(
        name == b"connection" and b"close" in value.lower() for name, value in response.headers
    )


def _has_body(request: h11.Request) -> bool:
    return any(
        name == b"transfer-encoding" or (name == b"content-length" and value.strip(b"0") != b"")
        for name, value in request.headers
    )


class BodyH11Protocol(H11Protocol):
    """hypercorn's HTTP/1.1 connection with its request bodies bounded (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit: BodyLimit | None = None  # of the request whose body is arriving
        self._received = 0  # bytes of that body so far
        self._body_timer: trio.CancelScope | None = None  # while a body is awaited
        self._forwarding: trio.CancelScope | None = None  # a piece of body on its way to the app
        # The connection answered for the app (or refused the request): the app is not heard.
        self.answered_for_app = False

    # -- hypercorn's hooks -------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        if isinstance(event, RawData) and self._body_timer is not None:
            self._body_timer.deadline = trio.current_time() + self._body_wait()
        elif isinstance(event, Closed):
            self.disarm_body_timer()
        await super().handle(event)

    async def stream_send(self, event: StreamEvent) -> None:
        if not self.answered_for_app:
            await super().stream_send(event)

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if (
            isinstance(event, h11.Response)
            and isinstance(self.config, BodyConfig)
            and self.connection.their_state is h11.SEND_BODY
            and not _closes(event)
        ):
            # Answered before the body is all in: the connection closes after the answer.
            event = h11.Response(
                status_code=event.status_code,
                headers=[*event.headers.raw_items(), _CLOSE],
                http_version=event.http_version,
                reason=event.reason,
            )
        await super()._send_h11_event(event)

    async def _close_stream(self) -> None:
        forwarding, self._forwarding = self._forwarding, None
        if forwarding is not None:  # the app will not take it: drop it
            forwarding.cancel()
        await super()._close_stream()

    async def _handle_events(self) -> None:
        """hypercorn's loop over h11's events, with each body counted, timed and forwarded
        so that the app can stop taking it."""
        config = self.config
        if not isinstance(config, BodyConfig):
            await super()._handle_events()
            return
        while True:
            if self.connection.they_are_waiting_for_100_continue:
                await self._send_h11_event(
                    h11.InformationalResponse(
                        status_code=100, headers=config.response_headers("h11")
                    )
                )
            try:
                event = self.connection.next_event()
            except h11.RemoteProtocolError as error:  # a malformed request or chunk: 400
                await self.answer_instead(error.error_status_hint, None, b"")
                break
            if isinstance(event, h11.Request):
                await self.send(Updated(idle=False))
                await self._check_protocol(event)
                if not await self._admit(event, config):
                    break
                await self._create_stream(event)
            elif event is h11.PAUSED:
                await self.can_read.clear()
                await self.can_read.wait()
            elif (
                isinstance(event, h11.ConnectionClosed)
                or event is h11.NEED_DATA
                or self.stream is None
            ):
                break
            elif isinstance(event, h11.Data):
                self._received += len(event.data)
                limit = self._limit
                if limit is not None and self._received > limit.size:
                    await self.answer_instead(limit.status, list(limit.headers), limit.body)
                    break
                await self._forward(Body(stream_id=STREAM_ID, data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                self.disarm_body_timer()
                await self._forward(EndBody(stream_id=STREAM_ID))
            elif isinstance(event, PassThrough):  # hypercorn's WebSocket pass-through
                await self.stream.handle(event)

    # -- bodies --------------------------------------------------------------------------

    async def _admit(self, request: h11.Request, config: BodyConfig) -> bool:
        """False when the request is refused for its declared length (and the connection
        closed); otherwise its body, if it has one, is counted and timed from now."""
        path = request.target.partition(b"?")[0]
        limit = limit_for(config.body_limits, request.method, path) if config.body_limits else None
        length = _declared_length(request)
        if limit is not None and length is not None and length > limit.size:
            await self.answer_instead(limit.status, list(limit.headers), limit.body)
            return False
        self._limit = limit
        self._received = 0
        if _has_body(request):
            self.arm_body_timer()
        return True

    async def _forward(self, event: Body | EndBody) -> None:
        """Hand a piece of body to the app; dropped if the stream closes meanwhile."""
        stream = self.stream
        if stream is None:
            return
        timer = self._body_timer
        if timer is not None:  # a wait for the app is not the client's stall
            timer.deadline = math.inf
        with trio.CancelScope() as scope:
            self._forwarding = scope
            try:
                await stream.handle(event)
            finally:
                if self._forwarding is scope:
                    self._forwarding = None
        if timer is not None and timer is self._body_timer:
            timer.deadline = trio.current_time() + self._body_wait()

    def _body_wait(self) -> float:
        config = self.config
        return body_wait(config.body_timeout if isinstance(config, BodyConfig) else BODY_TIMEOUT)

    def arm_body_timer(self) -> None:
        """Answer 408 if no byte arrives for the body timeout (every byte restarts it)."""
        wait = self._body_wait()
        if wait == math.inf:
            return
        deadline = trio.current_time() + wait
        if self._body_timer is not None:
            self._body_timer.deadline = deadline
            return
        scope = trio.CancelScope(deadline=deadline)
        self._body_timer = scope
        self.task_group.spawn(self._time_body, scope)

    def disarm_body_timer(self) -> None:
        scope, self._body_timer = self._body_timer, None
        if scope is not None:
            scope.cancel()

    async def _time_body(self, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep_forever()
        if self._body_timer is scope:  # not disarmed: the deadline passed
            self._body_timer = None
            await self.answer_instead(TIMEOUT_STATUS, None, b"")

    async def answer_instead(
        self, status: int, headers: list[tuple[bytes, bytes]] | None, body: bytes
    ) -> None:
        """Answer for the app (unless its answer has begun), then close the connection; the
        app, if any, is told the client is gone and no longer heard. ``headers`` None: as
        hypercorn answers an error by itself."""
        self.answered_for_app = True
        self.disarm_body_timer()
        if self.connection.our_state in _ANSWERABLE:
            if headers is None:
                await self._send_error_response(status)
            else:
                headers = [*headers, *self.config.response_headers("h11"), _CLOSE]
                await self._send_h11_event(h11.Response(status_code=status, headers=headers))
                if body:
                    await self._send_h11_event(h11.Data(data=body))
                await self._send_h11_event(h11.EndOfMessage())
        await self.send(Closed())


def install_chunk_size_limit() -> None:
    """Make h11 refuse a chunk size of more than 16 hex digits, as Go's net/http does.

    Idempotent; leaves h11 alone if its chunk header pattern is not the one known here.
    """
    pattern = h11._readers.chunk_header_re.pattern
    known = b"){1,20}"
    if known in pattern:
        limited = pattern.replace(known, b"){1,%d}" % MAX_CHUNK_SIZE_DIGITS)
        h11._readers.chunk_header_re = re.compile(limited)

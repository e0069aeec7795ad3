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
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

import h11
import hypercorn.protocol
import trio
from hypercorn.config import Config
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import H11SendableEvent

__all__ = ["GoStyleConfig", "install", "reason_phrase"]

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
    """hypercorn settings for a server whose HTTP/1.1 answers follow Go's net/http."""


class _ReasonH11Protocol(H11Protocol):
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

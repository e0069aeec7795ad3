"""What a client call can raise.

:class:`NSQError` is the base of everything. An error frame from nsqd (``"E_CODE text"``)
becomes a :class:`ProtocolError` subclass chosen by its code (:func:`error_from_frame`), so a
caller catches what it can handle (``except BadTopicError``, ``except PubFailedError``) and
still has ``code`` and ``text``. A lost connection is :class:`ConnectionClosedError`.
"""

from __future__ import annotations

from typing import Final

from ..protocol import ProtocolError as WireError

__all__ = [
    "AuthError",
    "AuthFailedError",
    "BadBodyError",
    "BadChannelError",
    "BadMessageError",
    "BadProtocolError",
    "BadTopicError",
    "ConnectError",
    "ConnectionClosedError",
    "DPubFailedError",
    "FinFailedError",
    "IdentifyError",
    "InvalidError",
    "MPubFailedError",
    "NSQError",
    "ProtocolError",
    "PubFailedError",
    "ReqFailedError",
    "TouchFailedError",
    "UnauthorizedError",
    "error_from_frame",
]


class NSQError(Exception):
    """Base of every error trinsq.client raises about NSQ itself."""


class ConnectionClosedError(NSQError):
    """The connection to nsqd was lost or closed (the call's outcome is unknown)."""


class ConnectError(ConnectionClosedError):
    """No connection could be made, or its setup (magic, IDENTIFY, TLS, AUTH) failed."""


class ProtocolError(NSQError, WireError):
    """nsqd answered with an error frame ``"<code> <text>"``; ``fatal`` says whether nsqd
    closes the connection after it."""

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(code, text)

    @property
    def text(self) -> str:
        return self.description

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.text!r})"


class InvalidError(ProtocolError):
    """``E_INVALID``: a command not valid here (bad parameters, wrong state, a size over
    nsqd's limits)."""


class BadProtocolError(ProtocolError):
    """``E_BAD_PROTOCOL``: the magic was not understood."""


class BadBodyError(ProtocolError):
    """``E_BAD_BODY``: a body of the wrong size or content."""


class BadTopicError(ProtocolError):
    """``E_BAD_TOPIC``: an invalid topic name."""


class BadChannelError(ProtocolError):
    """``E_BAD_CHANNEL``: an invalid channel name."""


class BadMessageError(ProtocolError):
    """``E_BAD_MESSAGE``: an empty or too large message."""


class PubFailedError(ProtocolError):
    """``E_PUB_FAILED`` (and the base of the MPUB/DPUB failures): nsqd could not store it."""


class MPubFailedError(PubFailedError):
    """``E_MPUB_FAILED``."""


class DPubFailedError(PubFailedError):
    """``E_DPUB_FAILED``."""


class FinFailedError(ProtocolError):
    """``E_FIN_FAILED``: no such message in flight (not fatal)."""


class ReqFailedError(ProtocolError):
    """``E_REQ_FAILED``: no such message in flight (not fatal)."""


class TouchFailedError(ProtocolError):
    """``E_TOUCH_FAILED``: no such message in flight (not fatal)."""


class IdentifyError(ProtocolError):
    """``E_IDENTIFY_FAILED``: the IDENTIFY could not be honoured."""


class AuthError(ProtocolError):
    """Base of the AUTH errors (``E_AUTH_DISABLED``, ``E_AUTH_FIRST`` and the two below)."""


class AuthFailedError(AuthError):
    """``E_AUTH_FAILED``: the auth server refused the secret or could not be asked."""


class UnauthorizedError(AuthError):
    """``E_UNAUTHORIZED``: the secret does not allow this topic/channel operation."""


_BY_CODE: Final[dict[str, type[ProtocolError]]] = {
    "E_INVALID": InvalidError,
    "E_BAD_PROTOCOL": BadProtocolError,
    "E_BAD_BODY": BadBodyError,
    "E_BAD_TOPIC": BadTopicError,
    "E_BAD_CHANNEL": BadChannelError,
    "E_BAD_MESSAGE": BadMessageError,
    "E_PUB_FAILED": PubFailedError,
    "E_MPUB_FAILED": MPubFailedError,
    "E_DPUB_FAILED": DPubFailedError,
    "E_FIN_FAILED": FinFailedError,
    "E_REQ_FAILED": ReqFailedError,
    "E_TOUCH_FAILED": TouchFailedError,
    "E_IDENTIFY_FAILED": IdentifyError,
    "E_AUTH_FAILED": AuthFailedError,
    "E_UNAUTHORIZED": UnauthorizedError,
    "E_AUTH_DISABLED": AuthError,
    "E_AUTH_FIRST": AuthError,
}


def error_from_frame(data: bytes) -> ProtocolError:
    """The typed error for an error frame's payload ``"<code> <text>"``; unknown codes give
    a plain :class:`ProtocolError`."""
    code, _, text = data.decode("utf-8", "replace").partition(" ")
    return _BY_CODE.get(code, ProtocolError)(code, text)

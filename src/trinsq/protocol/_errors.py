"""NSQ client-facing errors: the ``E_*`` codes and which of them end a connection."""

from __future__ import annotations

from typing import Final

__all__ = [
    "NON_FATAL_CODES",
    "ConnectionMustClose",
    "ProtocolError",
]

# Only these three leave the connection open (nsqd/protocol_v2.go uses NewClientErr for them);
# every other E_* code is a FatalClientErr: the server sends the error frame, then closes.
NON_FATAL_CODES: Final = frozenset({"E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED"})


class ProtocolError(Exception):
    """An error reported to the client as an error frame ``"<code> <description>"``.

    Args:
        code: the ``E_*`` code, e.g. ``"E_INVALID"``.
        description: free text after one space; empty means the frame carries the code alone
            (as ``E_BAD_PROTOCOL`` does).
    """

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(code, description)
        self.code = code
        self.description = description

    @property
    def fatal(self) -> bool:
        """Whether the server closes the connection after sending this error."""
        return self.code not in NON_FATAL_CODES

    @property
    def frame_data(self) -> bytes:
        """The error frame's payload exactly as nsqd writes it."""
        text = f"{self.code} {self.description}" if self.description else self.code
        return text.encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return self.frame_data.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.description!r})"


class ConnectionMustClose(Exception):
    """The peer broke framing in a way nsqd answers by closing, with no error frame.

    nsqd closes silently when a command line overflows its 16 KiB read buffer.
    """

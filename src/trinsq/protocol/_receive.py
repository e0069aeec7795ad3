"""The receive side shared by the V1 and V2 server parsers: bytes from the peer, not yet
consumed by a command, and whether the peer has closed its side."""

from __future__ import annotations

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    """Subclasses parse from ``_buffer[_pos:]``; ``_scanned`` counts the bytes after ``_pos``
    already searched for a newline, so a long line arriving in pieces is searched once."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0  # start of unconsumed bytes in _buffer
        self._scanned = 0
        self._eof = False

    def receive_data(self, data: bytes | bytearray) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    @property
    def buffered(self) -> int:
        """How many received bytes are not yet consumed by a command."""
        return len(self._buffer) - self._pos

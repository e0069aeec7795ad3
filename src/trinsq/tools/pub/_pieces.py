"""Splitting stdin into messages as to_nsq does (sans-IO): every piece up to a one-byte
delimiter, the delimiter dropped, empty pieces skipped, and at end of input whatever is left.

to_nsq v1.3.0 also cuts the last byte off a final piece that has no delimiter after it (it
trims "the delimiter" unconditionally); that is a bug, and here the final piece is kept whole.
"""

from __future__ import annotations

__all__ = ["PieceSplitter"]


class PieceSplitter:
    """Feed it bytes as they come; it hands back the complete pieces."""

    def __init__(self, delimiter: bytes) -> None:
        if len(delimiter) != 1:
            raise ValueError("the delimiter must be a single byte")
        self.delimiter = delimiter
        self._partial = b""  # the bytes after the last delimiter seen

    @property
    def pending(self) -> int:
        """Bytes held that are not yet a complete piece."""
        return len(self._partial)

    def feed(self, data: bytes) -> list[bytes]:
        """The pieces completed by ``data``, in order, empty ones left out."""
        if self.delimiter not in data:
            self._partial += data
            return []
        parts = data.split(self.delimiter)
        parts[0] = self._partial + parts[0]
        self._partial = parts.pop()
        return [part for part in parts if part]

    def finish(self) -> bytes | None:
        """At end of input: the last piece, if any bytes follow the last delimiter."""
        rest, self._partial = self._partial, b""
        return rest or None

"""Stream layers a V2 connection can be upgraded to after IDENTIFY (nsqd/client_v2.go).

Each is a ``trio.abc.Stream`` over the one below (socket, then TLS, then one compressor), so
the connection keeps reading and writing ``self.stream`` whatever the stack is. Bytes already
received before an upgrade belong to the new layer and are replayed into it.

Each keeps trio's stream contract (``trio.testing.check_two_way_stream`` runs them in
tests/test_streams.py): ``receive_some`` returns at most ``max_bytes`` and ``b""`` only at
EOF, a second concurrent call on the same side raises ``BusyResourceError``, and a closed
stream raises ``ClosedResourceError`` even while it still holds received bytes.
"""

from __future__ import annotations

import operator
import zlib
from types import TracebackType
from typing import Final

import snappy
import trio

__all__ = ["DeflateStream", "PrefixedStream", "SnappyStream"]

RECEIVE_SIZE: Final = 65536
# Plain bytes produced per decompression step: deflate expands up to ~1000:1, and one small
# compressed chunk must not turn into a huge buffer.
MAX_PLAIN_CHUNK: Final = 1024 * 1024


def _receive_limit(max_bytes: int | None) -> int | None:
    """``max_bytes`` checked as trio's own streams check it.

    Raises:
        TypeError: not an integer.
        ValueError: below 1.
    """
    if max_bytes is None:
        return None
    limit = operator.index(max_bytes)
    if limit < 1:
        raise ValueError("max_bytes must be >= 1")
    return limit


class _OneAtATime:
    """Raises ``BusyResourceError`` when a second task enters while one is inside."""

    def __init__(self, action: str) -> None:
        self._action = action
        self._busy = False

    def __enter__(self) -> None:
        if self._busy:
            raise trio.BusyResourceError(f"another task is already {self._action} this stream")
        self._busy = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._busy = False


def _take(buffer: bytearray, limit: int | None) -> bytes:
    """Remove and return up to ``limit`` bytes from the front of ``buffer``."""
    if limit is None or limit >= len(buffer):
        data = bytes(buffer)
        buffer.clear()
        return data
    data = bytes(buffer[:limit])
    del buffer[:limit]  # amortised O(1) at the front of a bytearray
    return data


class PrefixedStream(trio.abc.HalfCloseableStream):
    """Replays ``prefix`` before reading from ``transport``; sends go straight through."""

    def __init__(self, transport: trio.abc.Stream, prefix: bytes) -> None:
        self.transport = transport
        self._prefix = bytearray(prefix)
        self._sending = _OneAtATime("sending to")
        self._receiving = _OneAtATime("receiving from")
        self._closed = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        limit = _receive_limit(max_bytes)
        with self._receiving:
            if self._closed or self._prefix:
                await trio.lowlevel.checkpoint()
                if self._closed:
                    raise trio.ClosedResourceError("the stream is closed")
                return _take(self._prefix, limit)
            return bytes(await self.transport.receive_some(limit))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._sending:
            await self.transport.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        with self._sending:
            await self.transport.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Half-close through the transport.

        Raises:
            TypeError: the transport cannot half-close (TLS, for instance).
        """
        if not isinstance(self.transport, trio.abc.HalfCloseableStream):
            raise TypeError(f"{type(self.transport).__name__} cannot half-close")
        with self._sending:
            await self.transport.send_eof()

    async def aclose(self) -> None:
        self._closed = True
        self._prefix.clear()
        await self.transport.aclose()


class _CompressedStream(trio.abc.Stream):
    """Common shape: compress on send, decompress on receive, never return b"" before EOF.

    A send that fails or is cancelled once it has started writing may leave part of a
    compressed block on the wire, after which the peer cannot decode anything more: later
    sends raise ``BrokenResourceError``. So does every receive after corrupt input.
    """

    def __init__(self, transport: trio.abc.Stream) -> None:
        self.transport = transport
        self._plain = bytearray()  # decompressed, not yet handed out
        self._sending = _OneAtATime("sending to")
        self._receiving = _OneAtATime("receiving from")
        self._closed = False
        self._send_broken = False
        self._receive_error: str | None = None

    def _compress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def _decompress(self, data: bytes) -> bytes:
        """Plain bytes from ``data``; raises ``BrokenResourceError`` for corrupt input."""
        raise NotImplementedError

    def _pending(self) -> bytes:
        """Plain bytes still owed from input already received (none by default)."""
        return b""

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._sending:
            if not data:
                await trio.lowlevel.checkpoint()
                self._check_open()
                return
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_open()
            if self._send_broken:
                raise trio.BrokenResourceError("an earlier send failed part-way")
            compressed = self._compress(bytes(data))
            try:
                await self.transport.send_all(compressed)
            except BaseException:
                self._send_broken = True
                raise

    async def wait_send_all_might_not_block(self) -> None:
        with self._sending:
            if self._closed:
                await trio.lowlevel.checkpoint()
                self._check_open()
            await self.transport.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        limit = _receive_limit(max_bytes)
        with self._receiving:
            if self._closed or self._receive_error is not None:
                await trio.lowlevel.checkpoint()
                self._check_open()
                raise trio.BrokenResourceError(self._receive_error)
            try:
                return await self._receive_plain(limit)
            except trio.BrokenResourceError as error:
                self._receive_error = str(error) or "the stream is broken"
                raise

    async def _receive_plain(self, limit: int | None) -> bytes:
        plain = self._plain
        if not plain:
            plain += self._pending()
        if plain:
            await trio.lowlevel.checkpoint()
            self._check_open()
            return _take(plain, limit)
        # A chunk may hold no complete frame yet: read on until there is plain data or EOF.
        while True:
            data = await self.transport.receive_some(RECEIVE_SIZE)
            if not data:
                return b""
            decoded = self._decompress(bytes(data))
            if decoded:
                if limit is None or len(decoded) <= limit:
                    return decoded  # the common case, without copying it through the buffer
                plain += decoded
                return _take(plain, limit)

    async def aclose(self) -> None:
        self._closed = True
        self._plain.clear()
        await self.transport.aclose()


class SnappyStream(_CompressedStream):
    """Google's snappy framing format both ways (what nsqd uses via golang/snappy); interoperates
    with Go's and accepts input split anywhere (python-snappy's stream classes)."""

    def __init__(self, transport: trio.abc.Stream) -> None:
        super().__init__(transport)
        self._compressor = snappy.StreamCompressor()
        self._decompressor = snappy.StreamDecompressor()

    def _compress(self, data: bytes) -> bytes:
        return bytes(self._compressor.add_chunk(data))

    def _decompress(self, data: bytes) -> bytes:
        try:
            return bytes(self._decompressor.decompress(data))
        except Exception as error:  # python-snappy raises its own types for bad frames
            raise trio.BrokenResourceError(f"invalid snappy stream - {error}") from None


class DeflateStream(_CompressedStream):
    """Raw DEFLATE (RFC 1951) both ways, sync-flushed on every send so frames are decodable at
    once (Go's compress/flate, as nsqd uses it)."""

    def __init__(self, transport: trio.abc.Stream, level: int) -> None:
        super().__init__(transport)
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._decompressor = zlib.decompressobj(-15)

    def _compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def _decompress(self, data: bytes) -> bytes:
        try:
            return self._decompressor.decompress(data, MAX_PLAIN_CHUNK)
        except zlib.error as error:
            raise trio.BrokenResourceError(f"invalid deflate stream - {error}") from None

    def _pending(self) -> bytes:
        tail = self._decompressor.unconsumed_tail
        return self._decompress(tail) if tail else b""

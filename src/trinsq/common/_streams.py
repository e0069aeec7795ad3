"""Stream layers a V2 connection can be upgraded to after IDENTIFY (nsqd/client_v2.go).

Each is a ``trio.abc.Stream`` over the one below (socket, then TLS, then one compressor), so
the connection keeps reading and writing ``self.stream`` whatever the stack is. Bytes already
received before an upgrade belong to the new layer and are replayed into it.

Each keeps trio's stream contract (``trio.testing.check_two_way_stream`` runs them in
tests/common/test_streams.py): ``receive_some`` returns at most ``max_bytes`` and ``b""``
only at EOF, a second concurrent call on the same side raises ``BusyResourceError``, and a
closed stream raises ``ClosedResourceError`` even while it still holds received bytes.

A compressed stream also bounds the work of one ``receive_some``: it decompresses about
``max_bytes`` (:data:`RECEIVE_SIZE` when None) and keeps the rest of the input compressed for
later calls. Deflate expands up to ~1000:1, so one small read from the peer must not turn
into megabytes of commands at once.
"""

from __future__ import annotations

import operator
import zlib
from types import TracebackType
from typing import Final

import trio

__all__ = ["DeflateStream", "PrefixedStream", "SnappyStream"]

RECEIVE_SIZE: Final = 65536
# The largest snappy chunk golang/snappy's reader accepts: its buffer for one block of 64 KiB
# compressed at worst (maxEncodedLen), plus the checksum. Larger is corrupt.
MAX_SNAPPY_CHUNK: Final = 32 + 65536 + 65536 // 6 + 4


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

    def _feed(self, data: bytes) -> None:
        """Take compressed input from the transport."""
        raise NotImplementedError

    def _produce(self, limit: int) -> bytes:
        """Decompress about ``limit`` plain bytes (a little more for snappy, whose chunks
        are decoded whole) from the input fed so far; b"" when it holds no more yet.

        Raises:
            BrokenResourceError: the input is corrupt.
        """
        raise NotImplementedError

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
        step = RECEIVE_SIZE if limit is None else limit
        plain = self._plain
        if not plain:
            plain += self._produce(step)
        if plain:
            await trio.lowlevel.checkpoint()
            self._check_open()
            return _take(plain, limit)
        # A chunk may hold no complete frame yet: read on until there is plain data or EOF.
        while True:
            data = await self.transport.receive_some(RECEIVE_SIZE)
            if not data:
                return b""
            self._feed(bytes(data))
            decoded = self._produce(step)
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
        import snappy  # with cramjam ~1.5 MB: imported by the first client that negotiates it

        super().__init__(transport)
        self._compressor = snappy.StreamCompressor()
        self._decompressor = snappy.StreamDecompressor()
        self._input = bytearray()  # received, not yet decompressed

    def _compress(self, data: bytes) -> bytes:
        return bytes(self._compressor.add_chunk(data))

    def _feed(self, data: bytes) -> None:
        self._input += data

    def _produce(self, limit: int) -> bytes:
        # Whole chunks only, as many as stay within the limit (at least one): each chunk says
        # how much it decodes to before it is decoded.
        data = self._input
        end = len(data)
        pos = plain = 0
        while end - pos >= 4:
            length = int.from_bytes(data[pos + 1 : pos + 4], "little")
            if length > MAX_SNAPPY_CHUNK:
                raise trio.BrokenResourceError("invalid snappy stream - chunk too long")
            if end - pos - 4 < length:
                break
            size = _snappy_plain_size(data, pos, length)
            if plain and plain + size > limit:
                break
            plain += size
            pos += 4 + length
        if not pos:
            return b""
        chunks = bytes(data[:pos])
        del data[:pos]
        try:
            return bytes(self._decompressor.decompress(chunks))
        except Exception as error:  # python-snappy raises its own types for bad frames
            raise trio.BrokenResourceError(f"invalid snappy stream - {error}") from None


def _snappy_plain_size(data: bytearray, pos: int, length: int) -> int:
    """How many plain bytes the chunk at ``pos`` (of body ``length``) decodes to, as it says
    (the decoder checks it): a compressed chunk starts its data, after the checksum, with the
    length as a varint; an uncompressed one is its data. Other chunks decode to nothing."""
    kind = data[pos]
    if kind == 0x01:
        return max(length - 4, 0)
    if kind != 0x00:
        return 0
    size = shift = 0
    for byte in data[pos + 8 : min(pos + 4 + length, pos + 13)]:
        size |= (byte & 0x7F) << shift
        if byte < 0x80:
            return size
        shift += 7
    return 65536  # malformed: the decoder will say so; count it as the most a chunk holds


class DeflateStream(_CompressedStream):
    """Raw DEFLATE (RFC 1951) both ways, sync-flushed on every send so frames are decodable at
    once (Go's compress/flate, as nsqd uses it)."""

    def __init__(self, transport: trio.abc.Stream, level: int) -> None:
        super().__init__(transport)
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._decompressor = zlib.decompressobj(-15)
        self._input = b""  # received, not yet decompressed
        # The last step stopped at its limit: zlib may hold more output even with no input.
        self._full = False

    def _compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def _feed(self, data: bytes) -> None:
        self._input = self._input + data if self._input else data

    def _produce(self, limit: int) -> bytes:
        if not self._input and not self._full:
            return b""
        decompressor = self._decompressor
        try:
            plain = decompressor.decompress(self._input, limit)
        except zlib.error as error:
            raise trio.BrokenResourceError(f"invalid deflate stream - {error}") from None
        self._input = decompressor.unconsumed_tail
        self._full = len(plain) == limit
        return plain

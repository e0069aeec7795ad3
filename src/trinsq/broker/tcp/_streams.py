"""Stream layers a V2 connection can be upgraded to after IDENTIFY (nsqd/client_v2.go).

Each is a ``trio.abc.Stream`` over the one below (socket, then TLS, then one compressor), so
the connection keeps reading and writing ``self.stream`` whatever the stack is. Bytes already
received before an upgrade belong to the new layer and are replayed into it.
"""

from __future__ import annotations

import zlib
from typing import Final

import snappy
import trio

__all__ = ["DeflateStream", "PrefixedStream", "SnappyStream"]

RECEIVE_SIZE: Final = 65536
# Plain bytes produced per decompression step: deflate expands up to ~1000:1, and one small
# compressed chunk must not turn into a huge buffer.
MAX_PLAIN_CHUNK: Final = 1024 * 1024


class PrefixedStream(trio.abc.Stream):
    """Replays ``prefix`` before reading from ``transport``."""

    def __init__(self, transport: trio.abc.Stream, prefix: bytes) -> None:
        self.transport = transport
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            size = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            await trio.lowlevel.checkpoint()
            return data
        return bytes(await self.transport.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        send_eof = getattr(self.transport, "send_eof", None)
        if send_eof is not None:
            await send_eof()

    async def aclose(self) -> None:
        await self.transport.aclose()


class _CompressedStream(trio.abc.Stream):
    """Common shape: compress on send, decompress on receive, never return b"" before EOF."""

    def __init__(self, transport: trio.abc.Stream) -> None:
        self.transport = transport

    def _compress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def _decompress(self, data: bytes) -> bytes:
        raise NotImplementedError

    def _pending(self) -> bytes:
        """Plain bytes still owed from input already received (none by default)."""
        return b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.transport.send_all(self._compress(bytes(data)))

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        # A chunk may hold no complete frame yet: read on until there is plain data or EOF.
        pending = self._pending()
        if pending:
            await trio.lowlevel.checkpoint()
            return pending
        while True:
            data = await self.transport.receive_some(RECEIVE_SIZE)
            if not data:
                return b""
            plain = self._decompress(bytes(data))
            if plain:
                return plain

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def aclose(self) -> None:
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

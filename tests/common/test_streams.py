"""The stream layers of a V2 connection (common/_streams.py) keep trio's stream contract.

trio's generic conformance suites (``trio.testing.check_*_stream``, as trio runs them on its
own ``SSLStream``) drive each wrapper built over in-memory stream pairs. Both ends of a
compressed stream are wrapped, so what one end compresses the other decompresses. The
"clogged" makers use ``lockstep_stream_pair``, which has no buffer at all: a sender blocks
until its peer reads. The generic suites expect to read exactly what the peer sent, so they
run ``PrefixedStream`` with an empty prefix; the tests after them cover the replayed prefix,
``max_bytes`` against one large decompressed chunk, and a corrupt stream.
"""

from __future__ import annotations

import ssl
import zlib
from collections.abc import Awaitable, Callable

import pytest
import snappy
import trio
import trio.testing

from trinsq.common._streams import (
    RECEIVE_SIZE,
    DeflateStream,
    PrefixedStream,
    SnappyStream,
)

HalfCloseablePair = tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]
Wrap = Callable[[trio.abc.Stream], trio.abc.Stream]

WRAPPERS: dict[str, Wrap] = {
    "snappy": SnappyStream,
    "deflate": lambda transport: DeflateStream(transport, 6),
    "deflate-stored": lambda transport: DeflateStream(transport, 0),
}


def make_pair(
    wrap: Wrap, *, clogged: bool
) -> Callable[[], Awaitable[tuple[trio.abc.Stream, trio.abc.Stream]]]:
    async def maker() -> tuple[trio.abc.Stream, trio.abc.Stream]:
        pair = trio.testing.lockstep_stream_pair if clogged else trio.testing.memory_stream_pair
        left, right = pair()
        return wrap(left), wrap(right)

    return maker


@pytest.mark.parametrize("name", list(WRAPPERS))
async def test_compressed_stream_keeps_the_two_way_stream_contract(name: str) -> None:
    wrap = WRAPPERS[name]
    await trio.testing.check_two_way_stream(
        make_pair(wrap, clogged=False), make_pair(wrap, clogged=True)
    )


async def test_prefixed_stream_keeps_the_half_closeable_stream_contract() -> None:
    def make(clogged: bool) -> Callable[[], Awaitable[HalfCloseablePair]]:
        async def maker() -> HalfCloseablePair:
            pair = trio.testing.lockstep_stream_pair if clogged else trio.testing.memory_stream_pair
            left, right = pair()
            return PrefixedStream(left, b""), PrefixedStream(right, b"")

        return maker

    await trio.testing.check_half_closeable_stream(make(False), make(True))


# -- the replayed prefix -------------------------------------------------------------------------


async def test_prefix_comes_first_in_pieces_no_larger_than_asked() -> None:
    left, right = trio.testing.memory_stream_pair()
    stream = PrefixedStream(right, b"abcde")
    await left.send_all(b"fg")
    assert await stream.receive_some(2) == b"ab"
    assert await stream.receive_some(2) == b"cd"
    assert await stream.receive_some() == b"e"  # the prefix alone, never joined to new data
    assert await stream.receive_some() == b"fg"


async def test_prefix_is_never_returned_after_close() -> None:
    _, right = trio.testing.memory_stream_pair()
    stream = PrefixedStream(right, b"left over")
    await stream.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await stream.receive_some(4)


@pytest.mark.parametrize("max_bytes", [0, -1])
async def test_prefix_refuses_a_max_bytes_below_one(max_bytes: int) -> None:
    _, right = trio.testing.memory_stream_pair()
    stream = PrefixedStream(right, b"left over")
    with pytest.raises(ValueError, match="max_bytes"):
        await stream.receive_some(max_bytes)
    assert await stream.receive_some() == b"left over"


async def test_prefix_is_read_by_one_task_at_a_time() -> None:
    _, right = trio.testing.lockstep_stream_pair()
    stream = PrefixedStream(right, b"x")
    with pytest.RaisesGroup(trio.BusyResourceError):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.receive_some, 1)
            nursery.start_soon(stream.receive_some, 1)


async def test_send_eof_needs_a_half_closeable_transport() -> None:
    left, _ = trio.testing.memory_stream_pair()
    tls = trio.SSLStream(left, ssl.create_default_context())  # TLS cannot half-close
    stream = PrefixedStream(tls, b"")
    with pytest.raises(TypeError, match="half-close"):
        await stream.send_eof()


# -- decompression -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["snappy", "deflate"])
async def test_one_large_chunk_is_handed_out_in_pieces_of_max_bytes(name: str) -> None:
    left, right = trio.testing.memory_stream_pair()
    sender, receiver = WRAPPERS[name](left), WRAPPERS[name](right)
    data = bytes(range(256)) * 8192  # 2 MiB: more than one decompression step for deflate
    await sender.send_all(data)
    received = bytearray()
    while len(received) < len(data):
        piece = await receiver.receive_some(1000)
        assert 0 < len(piece) <= 1000
        received += piece
    assert received == data
    assert len(data) > RECEIVE_SIZE


@pytest.mark.parametrize(("name", "slack"), [("snappy", 65536), ("deflate", 0)])
@pytest.mark.parametrize("max_bytes", [None, 4096, 7])
async def test_one_receive_decompresses_about_max_bytes(
    name: str, slack: int, max_bytes: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compression bomb (1 MiB of NOPs in a few KiB) is unpacked a piece per receive, not
    at once: deflate makes at most ``max_bytes``, snappy at most one chunk (64 KiB) more."""
    left, right = trio.testing.memory_stream_pair()
    sender, receiver = WRAPPERS[name](left), WRAPPERS[name](right)
    bomb = b"NOP\n" * (1 << 18)
    await sender.send_all(bomb)
    produced: list[int] = []
    produce = receiver._produce  # type: ignore[attr-defined]

    def counted(limit: int) -> bytes:
        plain: bytes = produce(limit)
        produced.append(len(plain))
        return plain

    monkeypatch.setattr(receiver, "_produce", counted)
    received = bytearray()
    while len(received) < len(bomb):
        received += await receiver.receive_some(max_bytes)
    assert received == bomb
    limit = RECEIVE_SIZE if max_bytes is None else max_bytes
    assert max(produced) <= limit + slack
    if max_bytes == 7:
        return
    assert len(produced) >= len(bomb) // (limit + slack)


async def test_a_snappy_chunk_longer_than_go_accepts_is_corrupt() -> None:
    left, right = trio.testing.memory_stream_pair()
    receiver = SnappyStream(right)
    await left.send_all(b"\xff\x06\x00\x00sNaPpY" + b"\x00\xff\xff\xff")  # a 16 MiB chunk
    with pytest.raises(trio.BrokenResourceError, match="chunk too long"):
        await receiver.receive_some()


@pytest.mark.parametrize("name", ["snappy", "deflate"])
async def test_held_decompressed_bytes_are_read_by_one_task_and_dropped_on_close(
    name: str,
) -> None:
    left, right = trio.testing.memory_stream_pair()
    sender, receiver = WRAPPERS[name](left), WRAPPERS[name](right)
    await sender.send_all(b"x" * 5000)
    assert await receiver.receive_some(10) == b"x" * 10  # the rest is held, decompressed
    with pytest.RaisesGroup(trio.BusyResourceError):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver.receive_some, 10)
            nursery.start_soon(receiver.receive_some, 10)
    await receiver.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await receiver.receive_some(10)


@pytest.mark.parametrize("name", ["snappy", "deflate"])
async def test_a_send_cancelled_part_way_breaks_the_stream(name: str) -> None:
    left, _ = trio.testing.lockstep_stream_pair()  # nobody reads: the send blocks
    sender = WRAPPERS[name](left)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender.send_all, b"half a block")
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
    # The peer may hold part of a compressed block: nothing after it could be decoded.
    with pytest.raises(trio.BrokenResourceError):
        await sender.send_all(b"more")


@pytest.mark.parametrize(
    ("name", "garbage", "message"),
    [
        ("snappy", b"\xff\x06\x00\x00sNaPpX", "invalid snappy stream"),
        ("deflate", b"\xff\xff\xff\xff", "invalid deflate stream"),
    ],
)
async def test_a_corrupt_stream_stays_broken(name: str, garbage: bytes, message: str) -> None:
    left, right = trio.testing.memory_stream_pair()
    receiver = WRAPPERS[name](right)
    await left.send_all(garbage)
    with pytest.raises(trio.BrokenResourceError, match=message):
        await receiver.receive_some()
    await left.send_all(garbage)
    with pytest.raises(trio.BrokenResourceError, match=message):
        await receiver.receive_some()


def reference_bytes() -> tuple[bytes, bytes]:
    """What python-snappy and zlib make of two writes on their own, for the wire check."""
    compressor = snappy.StreamCompressor()
    snappy_bytes = bytes(compressor.add_chunk(b"OK")) + bytes(compressor.add_chunk(b"again"))
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflate_bytes = b"".join(
        deflate.compress(part) + deflate.flush(zlib.Z_SYNC_FLUSH) for part in (b"OK", b"again")
    )
    return snappy_bytes, deflate_bytes


async def test_wire_bytes_are_those_of_the_compressors_alone() -> None:
    """Each send is compressed on its own and flushed; an empty send puts nothing on the
    wire."""
    expected = dict(zip(["snappy", "deflate"], reference_bytes(), strict=True))
    for name, wire in expected.items():
        left, right = trio.testing.memory_stream_pair()
        stream = WRAPPERS[name](left)
        await stream.send_all(b"")
        await stream.send_all(b"OK")
        await stream.send_all(b"again")
        received = bytearray()
        while len(received) < len(wire):
            received += await right.receive_some()
        assert bytes(received) == wire, name

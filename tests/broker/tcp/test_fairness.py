"""No client's input holds the broker from the others, however large or compressed it is.

The broker serves every client on one event loop. A legal MPUB of 1,048,575 one-byte messages
(5 MiB, the default --max-body-size) and a deflate stream whose 4 KiB unpack to 1 MiB of
``NOP``s used to be processed each in one go, for seconds, while every other client waited
and those with a 1 s heartbeat were dropped. Now the transport hands the session a bounded
turn of work at a time and yields in between (broker/tcp/_connection.py).

The checks are about order and outcome, not speed: while both inputs are processed, clients
with a 1 s heartbeat that answer it stay connected; a third client's PUB, sent once the big
MPUB has been received in full and is being published (a consumer already has its first
message), is answered before the MPUB; and every message is delivered exactly once. Speed is
measured by ``python -m benchmarks fairness`` (docs/benchmarks.md).
"""

from __future__ import annotations

import errno
import json
import os
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

from tests.memory import MemoryClient, run_broker_threads_inline
from tests.support import body
from trinsq import RunningBroker, open_broker
from trinsq.broker.core._graph import TopicGraph
from trinsq.protocol import FrameType, Limits

MAX_MPUB_COUNT = (Limits().max_body_size - 4) // 5  # 1,048,575 one-byte messages in 5 MiB
FRAME = struct.Struct(">ii")
HEARTBEAT = b"_heartbeat_"
RESPONSE, ERROR, MESSAGE = 0, 1, 2


def mpub(topic: str, bodies: list[bytes]) -> bytes:
    inner = struct.pack(">i", len(bodies)) + b"".join(body(b) for b in bodies)
    return f"MPUB {topic}\n".encode() + body(inner)


def largest_mpub(topic: str) -> bytes:
    inner = struct.pack(">i", MAX_MPUB_COUNT) + b"\x00\x00\x00\x01x" * MAX_MPUB_COUNT
    assert len(inner) <= Limits().max_body_size < len(inner) + 5  # no room for one more
    return f"MPUB {topic}\n".encode() + body(inner)


def identify(**fields: object) -> bytes:
    return b"IDENTIFY\n" + body(json.dumps({"feature_negotiation": True, **fields}).encode())


class Conn:
    """A V2 connection over TCP that parses frames in bulk and can speak deflate."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self._deflate: Any = None
        self._inflate: Any = None
        # The heartbeat answerer and the test's own sends share the stream: one at a time,
        # and (with deflate) compressed in the order they go out.
        self._sending = trio.Lock()

    @classmethod
    async def open(
        cls, broker: RunningBroker, opened: list[Conn], **identify_fields: object
    ) -> Conn:
        """Connect and IDENTIFY; ``opened`` collects the connection, to close it after."""
        conn = cls(await trio.open_tcp_stream(*broker.addresses.tcp))
        opened.append(conn)
        await conn.send(b"  V2" + identify(**identify_fields))
        (kind, data), *_ = await conn.frames()
        assert kind == RESPONSE, data
        assert data.startswith(b"{"), data
        if json.loads(data).get("deflate"):
            conn._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            conn._inflate = zlib.decompressobj(-15)
            # What came after the JSON reply in the same read is already compressed.
            conn.buffer[:] = conn._inflate.decompress(bytes(conn.buffer))
            assert await conn.frames() == [(RESPONSE, b"OK")]
        return conn

    async def send(self, data: bytes) -> int:
        """Send ``data`` (deflated if negotiated); the number of bytes that went out."""
        async with self._sending:
            if self._deflate is not None:
                data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            await self.stream.send_all(data)
        return len(data)

    async def frames(self) -> list[tuple[int, bytes]]:
        """Every whole frame buffered, reading until there is one; EOFError when closed."""
        found: list[tuple[int, bytes]] = []
        buffer = self.buffer
        while True:
            position = 0
            while len(buffer) - position >= 8:
                size, kind = FRAME.unpack_from(buffer, position)
                if len(buffer) - position < 4 + size:
                    break
                found.append((kind, bytes(buffer[position + 8 : position + 4 + size])))
                position += 4 + size
            del buffer[:position]
            if found:
                return found
            data = await self.stream.receive_some(1 << 16)
            if not data:
                raise EOFError("the broker closed the connection")
            if self._inflate is not None:
                data = self._inflate.decompress(data)
            buffer += data

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


@attrs.define
class Record:
    """What the clients saw, in the order they saw it."""

    events: list[str] = attrs.Factory(list)
    dropped: list[str] = attrs.Factory(list)
    heartbeats: dict[str, int] = attrs.Factory(dict)


async def answer_heartbeats(
    conn: Conn, name: str, record: Record, on_frame: Callable[[int, bytes], None]
) -> None:
    """Read until cancelled, answering each heartbeat with a NOP; a close is a drop."""
    try:
        while True:
            for kind, data in await conn.frames():
                if kind == RESPONSE and data == HEARTBEAT:
                    record.heartbeats[name] = record.heartbeats.get(name, 0) + 1
                    await conn.send(b"NOP\n")
                else:
                    on_frame(kind, data)
    except (EOFError, trio.BrokenResourceError):
        record.dropped.append(name)


async def consume(
    conn: Conn, name: str, record: Record, ids: list[bytes], expected: int, done: trio.Event
) -> None:
    """Take every message, FIN it (all the FINs of one read in one write), note its id."""
    first = True
    while len(ids) < expected:
        fins = bytearray()
        for kind, data in await conn.frames():
            if kind == MESSAGE:
                ids.append(data[10:26])
                fins += b"FIN " + data[10:26] + b"\n"
                if first:
                    record.events.append(f"{name} got a first message")
                    first = False
            elif data == HEARTBEAT:
                fins += b"NOP\n"
            else:
                raise AssertionError(f"{name}: unexpected frame {kind} {data[:100]!r}")
        await conn.send(bytes(fins))
    done.set()


def unexpected(kind: int, data: bytes) -> None:
    raise AssertionError(f"unexpected frame {kind} {data[:100]!r}")


def first_message_seen(record: Record, name: str) -> Callable[[], bool]:
    return lambda: f"{name} got a first message" in record.events


async def wait_for(condition: Callable[[], bool]) -> None:
    """Until ``condition`` holds; a check per scheduling round, no sleeping."""
    while not condition():
        await trio.lowlevel.checkpoint()


@pytest.fixture
async def opened() -> AsyncIterator[list[Conn]]:
    conns: list[Conn] = []
    try:
        yield conns
    finally:
        for conn in conns:
            await conn.aclose()


@pytest.mark.slow
@pytest.mark.deadline(180)
async def test_big_inputs_leave_every_other_client_its_turn(opened: list[Conn]) -> None:
    async with open_broker() as broker:
        record = Record()
        async with trio.open_nursery() as nursery:
            # Consumers of both topics, subscribed first, so every message is delivered.
            big_ids: list[bytes] = []
            small_ids: list[bytes] = []
            big_done, small_done = trio.Event(), trio.Event()
            big_consumer = await Conn.open(broker, opened)
            small_consumer = await Conn.open(broker, opened)
            for conn, topic in ((big_consumer, "fair_big"), (small_consumer, "fair_small")):
                await conn.send(f"SUB {topic} c\n".encode())
                assert await conn.frames() == [(RESPONSE, b"OK")]
                await conn.send(b"RDY 2500\n")
            nursery.start_soon(
                consume, big_consumer, "big consumer", record, big_ids, MAX_MPUB_COUNT, big_done
            )
            nursery.start_soon(
                consume, small_consumer, "small consumer", record, small_ids, 11, small_done
            )

            # Clients that only answer heartbeats, every second.
            watchers = [await Conn.open(broker, opened, heartbeat_interval=1000) for _ in range(5)]
            for number, watcher in enumerate(watchers):
                nursery.start_soon(
                    answer_heartbeats, watcher, f"watcher {number}", record, unexpected
                )

            # The deflate NOP bomb, with a PUB at the end: 4 KiB that unpack to 1 MiB.
            bomber = await Conn.open(broker, opened, heartbeat_interval=1000, deflate=True)
            bomb = b"NOP\n" * (1 << 18) + b"PUB fair_small\n" + body(b"bomb")
            nursery.start_soon(
                answer_heartbeats,
                bomber,
                "bomber",
                record,
                lambda kind, data: record.events.append(f"bomber answered {data!r}"),
            )

            # The largest legal MPUB, from a client with a 1 s heartbeat too.
            publisher = await Conn.open(broker, opened, heartbeat_interval=1000)
            nursery.start_soon(
                answer_heartbeats,
                publisher,
                "publisher",
                record,
                lambda kind, data: record.events.append(f"MPUB answered {data!r}"),
            )
            data = largest_mpub("fair_big")
            assert await bomber.send(bomb) < 5000
            await publisher.send(data)
            record.events.append("MPUB delivered")
            # It is being published (a consumer has its first message), not yet answered.
            await wait_for(first_message_seen(record, "big consumer"))

            third = await Conn.open(broker, opened)
            for number in range(10):
                await third.send(b"PUB fair_small\n" + body(b"%d" % number))
                assert await third.frames() == [(RESPONSE, b"OK")]
            record.events.append("third client's PUBs answered")

            await big_done.wait()
            await small_done.wait()
            await wait_for(lambda: "MPUB answered b'OK'" in record.events)
            await wait_for(lambda: "bomber answered b'OK'" in record.events)
            nursery.cancel_scope.cancel()

        events = record.events
        assert events.index("third client's PUBs answered") < events.index("MPUB answered b'OK'")
        assert events.index("MPUB delivered") < events.index("big consumer got a first message")
        assert record.dropped == []
        assert all(record.heartbeats.get(f"watcher {n}", 0) >= 1 for n in range(5))
        # Everything published arrived, once.
        assert len(big_ids) == len(set(big_ids)) == MAX_MPUB_COUNT
        assert len(small_ids) == len(set(small_ids)) == 11
        channel = broker.topics["fair_big"].channels["c"]
        assert (channel.depth, len(channel.in_flight)) == (0, 0)


# -- the read deadline ----------------------------------------------------------------------------


async def read_until_closed(client: MemoryClient) -> None:
    while True:
        await client.read_frame(timeout=10)


async def test_time_the_broker_spends_on_a_client_does_not_count_against_its_deadline(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read deadline (two heartbeat intervals) runs only while the broker waits for the
    client: a publish that keeps the broker busy for ten virtual seconds is answered to a
    client with a 1 s heartbeat, and a client that then says nothing is dropped two intervals
    after the broker started waiting again."""
    real_publish = TopicGraph.publish

    def slow_publish(graph: TopicGraph, *args: Any, **kwargs: Any) -> bool:
        autojump_clock.jump(10)  # the broker is busy (with this client's input) for 10 s
        return real_publish(graph, *args, **kwargs)

    monkeypatch.setattr(TopicGraph, "publish", slow_publish)
    with run_broker_threads_inline():
        async with open_broker(http_address="") as broker:
            client = await MemoryClient.connect(broker)
            await client.identify(heartbeat_interval=1000)
            start = trio.current_time()
            await client.send(b"PUB slow\n" + body(b"x"))
            frame = await client.read_frame(timeout=60)  # past the jump
            assert (frame.frame_type, frame.data) == (FrameType.RESPONSE, b"OK")
            answered = trio.current_time()
            assert answered - start == pytest.approx(10)
            with pytest.raises(EOFError):
                await read_until_closed(client)
            assert trio.current_time() - answered == pytest.approx(2)


# -- an MPUB that fails midway ------------------------------------------------------------------


async def test_an_mpub_failing_midway_answers_mpub_failed_and_keeps_earlier_messages(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, opened: list[Conn]
) -> None:
    count = 10_000
    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        publisher = await Conn.open(broker, opened)
        real_write = os.write
        writes = 0

        def disk_fills_up(fd: int, data: bytes) -> int:
            nonlocal writes
            if ".diskqueue." in os.readlink(f"/proc/self/fd/{fd}"):
                writes += 1  # each step of the publish writes its messages once
                if writes > 2:
                    raise OSError(errno.ENOSPC, "no space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", disk_fills_up)
        await publisher.send(mpub("full", [b"%05d" % i for i in range(count)]))
        ((kind, data),) = await publisher.frames()
        assert kind == ERROR
        assert data.startswith(b"E_MPUB_FAILED MPUB failed ")
        assert b"no space left on device" in data
        monkeypatch.setattr(os, "write", real_write)
        consumer = await Conn.open(broker, opened)
        await consumer.send(b"SUB full c\n")
        assert await consumer.frames() == [(RESPONSE, b"OK")]
        kept = broker.topics["full"].channels["c"].depth
        assert 0 < kept < count  # what the steps before the failure put stays published
        await consumer.send(b"RDY %d\n" % kept)
        bodies: list[bytes] = []
        while len(bodies) < kept:
            bodies += [data[26:] for kind, data in await consumer.frames() if kind == MESSAGE]
        assert bodies == [b"%05d" % i for i in range(kept)]

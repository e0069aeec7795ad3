"""Durability: messages, topics, channels and deferrals survive restarts (nsqd.md §4, §5, §12)."""

from __future__ import annotations

import errno
import json
import os
import struct
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.conftest import Connect
from tests.support import RawClient, body, mpub_body
from trinsq import open_broker
from trinsq.broker.storage._metadata import MetadataError

TOTAL = 50_000
BATCH = 500


def payload(index: int) -> bytes:
    return b"message-%06d-" % index + bytes([index % 251]) * (index % 97)


async def drain(client: RawClient, count: int) -> list[bytes]:
    """Consume ``count`` messages with FIN, returning their bodies."""
    bodies: list[bytes] = []
    fins: list[bytes] = []
    while len(bodies) < count:
        _, _, message_id, data = await client.read_message(timeout=10)
        bodies.append(data)
        fins.append(b"FIN " + message_id + b"\n")
        if len(fins) >= 100:
            await client.send(b"".join(fins))
            fins.clear()
    if fins:
        await client.send(b"".join(fins))
    return bodies


async def drain_one_at_a_time(client: RawClient, count: int) -> list[bytes]:
    """At RDY 1, consume ``count`` messages, each FIN freeing the slot for the next (the
    pump parks on an empty-looking channel between them); return their bodies."""
    await client.send(b"RDY 1\n")
    bodies: list[bytes] = []
    for _ in range(count):
        _, _, message_id, message = await client.read_message(timeout=10)
        bodies.append(message)
        await client.send(b"FIN " + message_id + b"\n")
    return bodies


async def subscribe_and_publish(client: RawClient, topic: str, count: int) -> None:
    """SUB ``topic`` c without RDY, then MPUB ``payload(0)`` ... ``payload(count - 1)``."""
    await client.send(f"SUB {topic} c\n".encode())
    await client.expect_response(b"OK")
    for start in range(0, count, BATCH):
        batch = [payload(i) for i in range(start, min(start + BATCH, count))]
        await client.send(f"MPUB {topic}\n".encode() + mpub_body(batch))
        await client.expect_response(b"OK")


@pytest.mark.slow
async def test_fifty_thousand_messages_survive_a_graceful_restart(
    tmp_path: Path, connect: Connect
) -> None:
    data_path = str(tmp_path)
    async with open_broker(data_path=data_path) as broker:
        publisher = await connect(broker)
        # A channel exists before publishing, one is paused, the topic "idle" has no channels.
        await publisher.send(b"SUB orders archive\n")
        await publisher.expect_response(b"OK")
        broker.topics["orders"].get_channel("audit").pause()
        await publisher.publish("idle", b"waiting in the topic")
        broker.topics["idle"].pause()
        for start in range(0, TOTAL, BATCH):
            batch = [payload(i) for i in range(start, start + BATCH)]
            await publisher.send(b"MPUB orders\n" + mpub_body(batch))
            await publisher.expect_response(b"OK")
        assert broker.topics["orders"].channels["archive"].depth == TOTAL
    # The broker is gone; its data is in nsqd's layout.
    recorded = json.loads((tmp_path / "nsqd.dat").read_bytes())
    assert recorded["version"] == "1.3.0"
    assert {t["name"]: t["paused"] for t in recorded["topics"]} == {"orders": False, "idle": True}

    async with open_broker(data_path=data_path) as broker:
        orders = broker.topics["orders"]
        assert set(orders.channels) == {"archive", "audit"}
        assert orders.channels["audit"].paused
        assert not orders.channels["archive"].paused
        assert broker.topics["idle"].paused
        assert broker.topics["idle"].depth == 1
        consumer = await connect(broker)
        await consumer.subscribe("orders", "archive", rdy=2500)
        bodies = await drain(consumer, TOTAL)
        assert sorted(bodies) == [payload(i) for i in range(TOTAL)]
        await consumer.publish("marker", b"x")  # every FIN before this has been handled
        archive = orders.channels["archive"]
        assert (archive.depth, len(archive.in_flight)) == (0, 0)
        # The paused channel kept its own copy of everything.
        assert orders.channels["audit"].depth == TOTAL


async def test_in_flight_and_requeued_messages_are_saved_at_shutdown(
    tmp_path: Path, connect: Connect
) -> None:
    async with open_broker(data_path=str(tmp_path)) as broker:
        client = await connect(broker)
        await client.send(b"MPUB t\n" + mpub_body([b"one", b"two", b"three"]))
        await client.expect_response(b"OK")
        await client.subscribe("t", "c", rdy=2)
        first = await client.read_message()
        await client.read_message()
        # RDY 0 first, so the slot the REQ frees is not refilled: "three" stays undelivered.
        await client.send(b"RDY 0\nREQ " + first[2] + b" 0\n")  # back in the queue
        await client.publish("other", b"sync point")
    async with open_broker(data_path=str(tmp_path)) as broker:
        client = await connect(broker)
        await client.subscribe("t", "c", rdy=10)
        got = sorted([(await client.read_message())[1:4:2] for _ in range(3)])
        # Saved with the attempts they had (nsqd does the same): "one" was requeued and "two"
        # was in flight after one delivery each, "three" was never delivered.
        assert got == [(1, b"three"), (2, b"one"), (2, b"two")]


@pytest.mark.slow
async def test_deferred_message_keeps_its_due_time_across_a_restart(
    tmp_path: Path, connect: Connect
) -> None:
    async with open_broker(data_path=str(tmp_path)) as broker:
        client = await connect(broker)
        await client.subscribe("later", "c")
        published = trio.current_time()
        await client.send(b"DPUB later 4000\n" + body(b"not yet"))
        await client.expect_response(b"OK")
        await trio.sleep(2)
    async with open_broker(data_path=str(tmp_path)) as broker:
        restarted = trio.current_time()
        client = await connect(broker)
        await client.subscribe("later", "c", rdy=1)
        _, attempts, _, data = await client.read_message(timeout=30)
        arrived = trio.current_time()
        assert (attempts, data) == (1, b"not yet")
        # Not before its due time (nsqd would deliver it at once after a restart)...
        assert arrived - published >= 3.8, arrived - published
        # ...and not a full delay after the restart either: due ~2 s after it, 1 s of margin.
        assert arrived - restarted <= 4 - 1, arrived - restarted


async def test_a_second_broker_cannot_take_the_same_data_path(tmp_path: Path) -> None:
    async with open_broker(data_path=str(tmp_path)):
        with pytest.raises(MetadataError, match="cannot flock directory"):
            async with open_broker(data_path=str(tmp_path)):
                pass


@pytest.mark.slow
async def test_truncated_queue_file_is_set_aside_and_the_rest_served(
    tmp_path: Path, connect: Connect
) -> None:
    async with open_broker(data_path=str(tmp_path), max_bytes_per_file=2000) as broker:
        client = await connect(broker)
        await client.send(b"SUB t c\n")
        await client.expect_response(b"OK")
        for index in range(60):  # about 40 bytes a record: several files
            await client.publish("t", b"record-%02d" % index)
        assert broker.topics["t"].channels["c"].depth == 60
    files = sorted(tmp_path.glob("t:c.diskqueue.0*.dat"))
    assert len(files) >= 2
    damaged = files[0]
    damaged.write_bytes(damaged.read_bytes()[:-7])  # cut the last record short

    async with open_broker(data_path=str(tmp_path), max_bytes_per_file=2000) as broker:
        client = await connect(broker)
        await client.subscribe("t", "c", rdy=100)
        bodies = []
        with trio.move_on_after(2):
            while True:
                bodies.append((await client.read_message())[3])
        # Everything before the cut and everything in later files is delivered.
        assert bodies[0] == b"record-00"
        assert bodies[-1] == b"record-59"
        assert 55 <= len(bodies) < 60
        queue = broker.server.storage.queues["t:c"]
        assert queue.bad_files == 1
    assert list(tmp_path.glob("t:c.diskqueue.*.dat.bad"))


async def test_disk_full_answers_pub_failed_and_keeps_accepted_messages(
    tmp_path: Path, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        client = await connect(broker)
        await client.send(b"SUB full c\n")
        await client.expect_response(b"OK")
        await client.publish("full", b"accepted before")
        real_write = os.write

        def disk_full(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "no space left on device")

        monkeypatch.setattr(os, "write", disk_full)
        await client.send(b"PUB full\n" + body(b"refused"))
        frame = await client.read_frame()
        assert frame.data.startswith(b"E_PUB_FAILED PUB failed ")
        assert b"no space left on device" in frame.data
        await client.expect_closed()
        monkeypatch.setattr(os, "write", real_write)
        # The broker keeps serving and nothing accepted was lost.
        consumer = await connect(broker)
        await consumer.subscribe("full", "c", rdy=10)
        _, _, _, data = await consumer.read_message()
        assert data == b"accepted before"
        assert broker.topics["full"].channels["c"].depth == 0
        assert not list(tmp_path.glob("*.bad"))


async def test_permission_fault_refuses_publishes_cleanly(
    tmp_path: Path, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refuse_queue_files(path: str, flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if ".diskqueue." in str(path) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "permission denied", path)
        return real_open(path, flags, mode, **kwargs)  # type: ignore[arg-type]

    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        client = await connect(broker)
        await client.publish("ok", b"written before the fault")
        monkeypatch.setattr(os, "open", refuse_queue_files)
        await client.send(b"PUB denied\n" + body(b"x"))
        frame = await client.read_frame()
        assert frame.data.startswith(b"E_PUB_FAILED PUB failed ")
        assert b"permission denied" in frame.data
        monkeypatch.setattr(os, "open", real_open)
        other = await connect(broker)
        await other.subscribe("ok", "c", rdy=1)
        assert (await other.read_message())[3] == b"written before the fault"


def test_record_layout_is_nsqds(tmp_path: Path) -> None:
    from trinsq.broker.core._message import Message
    from trinsq.broker.storage._diskbackend import decode_record, encode_record

    message = Message(b"18a2f26c83669000", b"a", 0x18EA056B45DF3A9F, 0)
    # The record captured from nsqd v1.3.0 in the reference (nsqd.md §4), minus its length.
    expected = bytes.fromhex("18ea056b45df3a9f 0000") + b"18a2f26c83669000" + b"a"
    assert encode_record(message) == expected
    decoded = decode_record(expected)
    assert (decoded.id, decoded.body, decoded.timestamp, decoded.attempts) == (
        message.id,
        b"a",
        message.timestamp,
        0,
    )
    with pytest.raises(ValueError, match="invalid message buffer size"):
        decode_record(struct.pack(">q", 1))


async def test_transient_read_error_keeps_the_consumer_and_the_message(
    tmp_path: Path, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        client = await connect(broker)
        await client.send(b"SUB flaky c\n")
        await client.expect_response(b"OK")
        await client.publish("flaky", b"on disk")
        real_pread = os.pread

        def too_many_files(fd: int, length: int, offset: int) -> bytes:
            raise OSError(errno.EMFILE, "too many open files")

        monkeypatch.setattr(os, "pread", too_many_files)
        await client.send(b"RDY 1\n")
        await client.publish("other", b"sync point")  # the failed read has happened
        monkeypatch.setattr(os, "pread", real_pread)
        assert broker.server.storage.backends["flaky:c"].read_errors >= 1
        await client.send(b"RDY 0\nRDY 1\n")  # look again
        _, _, _, data = await client.read_message()
        assert data == b"on disk"
        assert not list(tmp_path.glob("*.bad"))


@pytest.mark.slow
async def test_spilled_dpub_keeps_its_delay(tmp_path: Path, connect: Connect) -> None:
    # No channel yet and no memory queue: the DPUB goes to the topic's disk queue, where nsqd
    # would lose its delay (nsqd issue #1375).
    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        client = await connect(broker)
        published = trio.current_time()
        await client.send(b"DPUB spill 1500\n" + body(b"deferred on disk"))
        await client.expect_response(b"OK")
        assert broker.topics["spill"].backend_depth == 1
        await client.subscribe("spill", "c", rdy=1)
        _, _, _, data = await client.read_message(timeout=5)
        assert data == b"deferred on disk"
        assert trio.current_time() - published >= 1.4


async def test_spilled_backlog_is_delivered_in_order_in_batches(
    tmp_path: Path, connect: Connect
) -> None:
    # Everything goes through the channel's disk queue; a large RDY takes it in batches
    # straight from the read-ahead, which must keep nsqd's order and lose nothing.
    count = 3000
    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        client = await connect(broker)
        await subscribe_and_publish(client, "spill", count)
        channel = broker.topics["spill"].channels["c"]
        assert channel.backend_depth == count
        await client.send(b"RDY 1000\n")
        assert await drain(client, count) == [payload(i) for i in range(count)]
        await client.publish("marker", b"x")  # every FIN before this has been handled
        assert (channel.depth, len(channel.in_flight)) == (0, 0)


def _impossible(size: int) -> dict[str, bytes]:
    """Metadata no disk queue can have written, for a channel whose 200 records fill
    ``...000000.dat`` (``size`` bytes): each must be read like garbage, losing nothing."""
    return {
        "garbage": b"not\nmetadata\n",
        "negative": b"-3\n-1,-7\n-2,-9\n",
        "23-digit-read-position": b"200\n0,12345678901234567890123\n0,%d\n" % size,
        "read-file-after-write-file": b"200\n1,0\n0,%d\n" % size,
        "read-position-after-write-position": b"200\n0,%d\n0,%d\n" % (size + 10, size),
        "read-position-past-the-read-file": b"200\n0,%d\n1,0\n" % (size + 10),
        "negative-depth": b"-200\n0,0\n0,%d\n" % size,
    }


@pytest.mark.parametrize("case", list(_impossible(0)))
async def test_impossible_disk_queue_metadata_loses_no_message(
    tmp_path: Path, connect: Connect, case: str
) -> None:
    count = 200
    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        await subscribe_and_publish(await connect(broker), "t", count)
        assert broker.topics["t"].channels["c"].backend_depth == count
    data = tmp_path / "t:c.diskqueue.000000.dat"
    (tmp_path / "t:c.diskqueue.meta.dat").write_bytes(_impossible(data.stat().st_size)[case])

    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        channel = broker.topics["t"].channels["c"]
        assert channel.depth == count
        client = await connect(broker)
        await client.subscribe("t", "c")
        assert await drain_one_at_a_time(client, count) == [payload(i) for i in range(count)]
        await client.publish("marker", b"x")  # every FIN before this has been handled
        assert (channel.depth, len(channel.in_flight)) == (0, 0)
        assert broker.server.storage.queues["t:c"].bad_files == 0
    assert not list(tmp_path.glob("*.bad"))


async def test_a_saved_depth_too_low_still_delivers_every_record_to_a_one_at_a_time_consumer(
    tmp_path: Path, connect: Connect
) -> None:
    # Possible metadata whose depth undercounts the file (saved before the last writes were
    # counted): once the count runs out, the channel must not look empty to the pump.
    count = 200
    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        await subscribe_and_publish(await connect(broker), "t", count)
    size = (tmp_path / "t:c.diskqueue.000000.dat").stat().st_size
    (tmp_path / "t:c.diskqueue.meta.dat").write_bytes(b"5\n0,0\n0,%d\n" % size)

    async with open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker:
        client = await connect(broker)
        await client.subscribe("t", "c")
        assert await drain_one_at_a_time(client, count) == [payload(i) for i in range(count)]

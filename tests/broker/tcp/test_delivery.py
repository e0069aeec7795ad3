"""Delivery semantics through real sockets: RDY windows, buffering, pausing, ephemerality."""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing

from tests.conftest import Connect
from tests.support import body, mpub_body
from trinsq import RunningBroker, open_broker


async def settle() -> None:
    """Let the in-process broker finish everything the sockets have handed it."""
    await trio.testing.wait_all_tasks_blocked(cushion=0.05)


async def test_rdy_is_a_window_not_a_countdown(broker: RunningBroker, connect: Connect) -> None:
    consumer = await connect(broker)
    publisher = await connect(broker)
    await publisher.send(b"MPUB w\n" + mpub_body([b"%d" % i for i in range(10)]))
    await publisher.expect_response(b"OK")
    await consumer.subscribe("w", "c", rdy=3)
    first = [await consumer.read_message() for _ in range(3)]
    await settle()
    channel = broker.topics["w"].channels["c"]
    assert len(channel.in_flight) == 3
    assert channel.depth == 7
    # Each FIN frees one slot; RDY 3 keeps applying without being sent again.
    await consumer.send(b"FIN " + first[0][2] + b"\n")
    _, _, _, data = await consumer.read_message()
    assert data == b"3"
    await settle()
    assert len(channel.in_flight) == 3


async def test_rdy_zero_stops_delivery(broker: RunningBroker, connect: Connect) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("z", "c", rdy=0)
    await consumer.publish("z", b"waits")
    await settle()
    assert broker.topics["z"].channels["c"].depth == 1
    await consumer.send(b"RDY 1\n")
    _, _, _, data = await consumer.read_message()
    assert data == b"waits"


async def test_output_buffer_timeout_delays_messages_while_client_is_ready(
    broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.identify(output_buffer_timeout=500)
    await consumer.subscribe("buf", "c", rdy=5)
    publisher = await connect(broker)
    published = trio.current_time()
    await publisher.publish("buf", b"buffered")
    await consumer.read_message()
    # Still ready for 4 more, so nsqd holds the frame until the 500 ms flush.
    assert trio.current_time() - published >= 0.45


async def test_client_that_is_not_ready_gets_its_message_at_once(
    broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.identify(output_buffer_timeout=5000)
    await consumer.subscribe("now", "c", rdy=1)
    publisher = await connect(broker)
    await publisher.publish("now", b"prompt")
    # RDY 1 is used up by this message, so it is flushed immediately, not after 5 s.
    _, _, _, data = await consumer.read_message(timeout=2)
    assert data == b"prompt"


async def test_unbuffered_client(broker: RunningBroker, connect: Connect) -> None:
    consumer = await connect(broker)
    reply = await consumer.identify(output_buffer_size=-1)
    assert b'"output_buffer_size":1,"output_buffer_timeout":0' in reply.data
    await consumer.subscribe("unbuf", "c", rdy=100)
    publisher = await connect(broker)
    await publisher.publish("unbuf", b"straight out")
    _, _, _, data = await consumer.read_message(timeout=2)
    assert data == b"straight out"


async def test_paused_topic_and_channel_hold_delivery(
    broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("p", "c", rdy=10)
    topic = broker.topics["p"]
    channel = topic.channels["c"]
    topic.pause()
    await consumer.publish("p", b"one")
    await settle()
    assert (topic.depth, channel.depth, len(channel.in_flight)) == (1, 0, 0)
    topic.unpause()
    assert (await consumer.read_message())[3] == b"one"
    channel.pause()
    await consumer.publish("p", b"two")
    await settle()
    assert (channel.depth, len(channel.in_flight)) == (1, 1)
    channel.unpause()
    assert (await consumer.read_message())[3] == b"two"


async def test_ephemeral_channel_vanishes_with_its_last_client(
    broker: RunningBroker, connect: Connect
) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("eph#ephemeral", "tail#ephemeral")
    assert "tail#ephemeral" in broker.topics["eph#ephemeral"].channels
    await consumer.aclose()
    await settle()
    assert "eph#ephemeral" not in broker.topics


async def test_cls_stops_delivery(broker: RunningBroker, connect: Connect) -> None:
    consumer = await connect(broker)
    await consumer.subscribe("cls2", "c", rdy=1)
    await consumer.publish("cls2", b"first")
    _, _, message_id, _ = await consumer.read_message()
    await consumer.send(b"CLS\n")
    await consumer.expect_response(b"CLOSE_WAIT")
    await consumer.publish("cls2", b"second")
    await consumer.send(b"FIN " + message_id + b"\n")
    await consumer.publish("cls2", b"third")  # answered after the FIN ran
    await settle()
    channel = broker.topics["cls2"].channels["c"]
    assert (len(channel.in_flight), channel.depth) == (0, 2)


async def test_mpub_with_a_bad_message_queues_nothing(
    broker: RunningBroker, connect: Connect
) -> None:
    client = await connect(broker)
    inner = struct.pack(">i", 3) + body(b"ok") + body(b"ok") + struct.pack(">i", 0)
    await client.send(b"MPUB atomic\n" + body(inner))
    await client.expect_error(b"E_BAD_MESSAGE MPUB invalid message(2) body size 0")
    # nsqd creates the topic before reading the body; trinsq only for a valid MPUB.
    assert "atomic" not in broker.topics


@pytest.mark.slow
async def test_req_delay_is_clamped_to_max_req_timeout(connect: Connect) -> None:
    async with open_broker(max_req_timeout=1.0) as broker:
        consumer = await connect(broker)
        await consumer.subscribe("clamp", "c", rdy=1)
        await consumer.publish("clamp", b"m")
        _, _, message_id, _ = await consumer.read_message()
        requeued = trio.current_time()
        await consumer.send(b"REQ " + message_id + b" 3600000\n")
        _, attempts, _, _ = await consumer.read_message(timeout=30)
        assert attempts == 2
        # Back after the clamped 1 s, not the hour asked for; the upper bound leaves room for a
        # busy machine.
        assert 0.9 <= trio.current_time() - requeued <= 20


async def test_dpub_range_follows_max_req_timeout(connect: Connect) -> None:
    async with open_broker(max_req_timeout=1.0) as broker:
        client = await connect(broker)
        await client.send(b"DPUB t 1001\n")
        await client.expect_error(b"E_INVALID DPUB timeout 1001 out of range 0-1000")


async def test_msg_timeout_redelivers_with_attempts_two(connect: Connect) -> None:
    async with open_broker(msg_timeout=0.3) as broker:
        consumer = await connect(broker)
        await consumer.subscribe("to", "c", rdy=1)
        await consumer.publish("to", b"slow")
        first = await consumer.read_message()
        second = await consumer.read_message(timeout=2)
        assert (first[1], second[1]) == (1, 2)
        assert first[2] == second[2]
        assert broker.topics["to"].channels["c"].timeout_count == 1


async def test_max_msg_size_option_applies(connect: Connect) -> None:
    async with open_broker(max_msg_size=10) as broker:
        client = await connect(broker)
        await client.send(b"PUB t\n" + body(b"x" * 11))
        await client.expect_error(b"E_BAD_MESSAGE PUB message too big 11 > 10")


async def test_sampling_consumer_gets_a_fraction(broker: RunningBroker, connect: Connect) -> None:
    consumer = await connect(broker)
    reply = await consumer.identify(sample_rate=20)
    assert b'"sample_rate":20' in reply.data
    publisher = await connect(broker)
    await publisher.send(b"MPUB s\n" + mpub_body([b"%d" % i for i in range(1000)]))
    await publisher.expect_response(b"OK")
    await consumer.subscribe("s", "c", rdy=2500)
    await settle()
    channel = broker.topics["s"].channels["c"]
    # About 21% are kept (draws 0..20 of 0..99); the rest leave the channel unsent.
    assert channel.depth == 0
    assert 100 < len(channel.in_flight) < 350

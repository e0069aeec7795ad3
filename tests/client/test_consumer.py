"""The consumer over real sockets against trinsq's own broker and registry."""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
import pytest
import trio

from tests.client.consumers import RdyRecorder, finish_all, publish, wait_for
from trinsq import RunningBroker, open_broker
from trinsq.client import (
    BadChannelError,
    BadTopicError,
    ClientConfig,
    ConnectError,
    Message,
    open_consumer,
)


def _channel(broker: RunningBroker, topic: str = "t", channel: str = "c") -> Any:
    return broker.topics[topic].channels[channel]


async def test_everything_published_is_consumed_exactly_once_with_fin() -> None:
    bodies = [b"m%d" % i for i in range(500)]
    async with open_broker() as broker:
        await publish(broker, "t", bodies)
        seen: Counter[bytes] = Counter()
        config = ClientConfig(max_in_flight=50)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            async for message in consumer:
                seen[message.body] += 1
                assert message.attempts == 1
                assert message.nsqd_address == broker.tcp_address
                await message.finish()
                if len(seen) == len(bodies):
                    break
            assert consumer.stats.finished == consumer.stats.received == len(bodies)
        assert seen == Counter(bodies)
        channel = _channel(broker)
        await wait_for(lambda: not channel.clients)
        assert (channel.depth, len(channel.in_flight), channel.requeue_count) == (0, 0, 0)


async def test_requeued_messages_come_back_and_are_then_finished() -> None:
    bodies = [b"r%d" % i for i in range(20)]
    async with open_broker() as broker:
        await publish(broker, "t", bodies)
        attempts: dict[bytes, list[int]] = {}
        config = ClientConfig(max_in_flight=10)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            async for message in consumer:
                attempts.setdefault(message.body, []).append(message.attempts)
                if message.attempts == 1:
                    await message.requeue(delay=0, backoff=False)
                else:
                    await message.finish()
                if sum(len(a) for a in attempts.values()) == 2 * len(bodies):
                    break
            assert consumer.stats.requeued == len(bodies)
        assert attempts == {b: [1, 2] for b in bodies}
        channel = _channel(broker)
        await wait_for(lambda: not channel.clients)
        assert (channel.depth, len(channel.in_flight), channel.requeue_count) == (0, 0, 20)


async def test_requeue_without_a_delay_uses_go_nsqs_linear_delay() -> None:
    async with open_broker() as broker:
        await publish(broker, "t", [b"x"])
        config = ClientConfig(default_requeue_delay=7.0, max_requeue_delay=60.0)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            message = await consumer.__anext__()
            before = trio.current_time()
            await message.requeue(backoff=False)
            channel = _channel(broker)
            await wait_for(lambda: len(channel.deferred) == 1)
            # The broker holds it back for default_requeue_delay * attempts = 7 s.
            (deferred,) = channel.deferrals.messages.values()
            assert deferred.id == message.id
            assert channel.depth == 0
            assert trio.current_time() - before < 7.0


async def test_touch_keeps_a_message_past_its_timeout() -> None:
    async with open_broker() as broker:
        await publish(broker, "t", [b"slow"])
        config = ClientConfig(msg_timeout=1.0)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            message = await consumer.__anext__()
            channel = _channel(broker)
            deadline = trio.current_time() + 2.5
            while trio.current_time() < deadline:
                await message.touch()
                await trio.sleep(0.25)
            assert channel.timeout_count == 0
            await message.finish()
        await wait_for(lambda: not channel.clients)
        assert (channel.timeout_count, channel.depth, len(channel.in_flight)) == (0, 0, 0)


async def test_graceful_stop_finishes_what_is_in_flight() -> None:
    bodies = [b"g%d" % i for i in range(20)]
    async with open_broker() as broker:
        await publish(broker, "t", bodies)
        release = trio.Event()
        started: list[bytes] = []
        handled: list[bytes] = []

        async def handler(message: Message) -> None:
            started.append(message.body)
            await release.wait()
            handled.append(message.body)

        config = ClientConfig(max_in_flight=5)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(consumer.run, handler, 5)
                await wait_for(lambda: len(started) == 5)
                consumer.stop()
                await wait_for(lambda: consumer.stats.connections == 1 and _closing(broker))
                release.set()
            # run() returned: everything handed out was handled and finished.
            assert sorted(handled) == sorted(started)
            assert consumer.stats.finished == 5
        channel = _channel(broker)
        await wait_for(lambda: not channel.clients)
        assert (channel.depth, len(channel.in_flight), channel.requeue_count) == (15, 0, 0)


def _closing(broker: RunningBroker) -> bool:
    """Whether the broker has taken the consumer's CLS (RDY 0, state CLOSING)."""
    return all(c.ready_count == 0 for c in _channel(broker).clients.values())


async def test_leaving_the_block_requeues_what_was_not_handed_out() -> None:
    bodies = [b"q%d" % i for i in range(10)]
    async with open_broker() as broker:
        await publish(broker, "t", bodies)
        config = ClientConfig(max_in_flight=10)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            message = await consumer.__anext__()
            await message.finish()
            await wait_for(lambda: consumer.stats.received == 10)
        channel = _channel(broker)
        await wait_for(lambda: not channel.clients)
        assert (channel.depth, len(channel.in_flight), channel.requeue_count) == (9, 0, 9)


async def test_handler_errors_requeue_and_max_attempts_gives_up() -> None:
    async with open_broker() as broker:
        await publish(broker, "t", [b"poison"])
        given_up: list[Message] = []
        calls: list[int] = []

        async def handler(message: Message) -> None:
            calls.append(message.attempts)
            raise RuntimeError("cannot handle it")

        config = ClientConfig(max_attempts=3, default_requeue_delay=0.0, max_backoff_duration=0)
        async with open_consumer(
            "t",
            "c",
            nsqd_tcp_addresses=[broker.tcp_address],
            config=config,
            on_give_up=given_up.append,
        ) as consumer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(consumer.run, handler, 2)
                await wait_for(lambda: len(given_up) == 1)
                consumer.stop()
            assert calls == [1, 2, 3]
            assert given_up[0].attempts == 4
            assert consumer.stats.given_up == 1
        channel = _channel(broker)
        await wait_for(lambda: not channel.clients)
        assert (channel.depth, len(channel.in_flight), len(channel.deferred)) == (0, 0, 0)


async def test_backoff_is_rdy_0_then_a_single_rdy_1_on_the_wire() -> None:
    async with open_broker() as broker, trio.open_nursery() as nursery:
        proxy = RdyRecorder(broker)
        await nursery.start(proxy.serve)
        await publish(broker, "t", [b"flaky"])
        config = ClientConfig(max_in_flight=4, backoff_multiplier=0.2, max_backoff_duration=10)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[proxy.address], config=config
        ) as consumer:
            message = await consumer.__anext__()
            await proxy.wait_counts([4])
            await message.requeue(delay=0)  # a failure: level 1, 0.4 s
            message = await consumer.__anext__()
            assert message.attempts == 2
            await message.requeue(delay=0)  # the test message failed too: level 2, 0.8 s
            message = await consumer.__anext__()
            assert message.attempts == 3
            await message.finish()  # a success lowers the level: back to 1 (0.4 s)
            await proxy.wait_counts([4, 0, 1, 0, 1, 0, 1])
            await publish(broker, "t", [b"fine"])
            message = await consumer.__anext__()
            await message.finish()  # the test succeeded at level 1: resume
            await proxy.wait_counts([4, 0, 1, 0, 1, 0, 1, 4])
        nursery.cancel_scope.cancel()
    times = [t for t, _ in proxy.rdy]
    waits = [times[2] - times[1], times[4] - times[3], times[6] - times[5]]
    assert waits[0] >= 0.4
    assert waits[1] >= 0.8
    assert waits[2] >= 0.4


async def test_heartbeats_are_answered_while_idle() -> None:
    async with open_broker() as broker:
        config = ClientConfig(heartbeat_interval=1.0, read_timeout=2.5)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            (client,) = _channel(broker).clients.values()
            # nsqd drops a client that misses two heartbeats; the consumer drops nsqd after
            # read_timeout without a frame. Idle for several heartbeats, both stay.
            await trio.sleep(4.0)
            assert consumer.stats.connections == 1
            assert list(_channel(broker).clients.values()) == [client]
            await publish(broker, "t", [b"still here"])
            message = await consumer.__anext__()
            await message.finish()


@pytest.mark.parametrize(
    "config",
    [ClientConfig(snappy=True), ClientConfig(deflate=True, deflate_level=3)],
    ids=["snappy", "deflate"],
)
async def test_consuming_over_compression(config: ClientConfig) -> None:
    bodies = [b"z%d" % i * 50 for i in range(200)]
    async with open_broker() as broker:
        await publish(broker, "t", bodies)
        config = attrs.evolve(config, max_in_flight=20)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            seen = await finish_all(consumer, len(bodies))
        assert sorted(seen) == sorted(bodies)
        channel = _channel(broker)
        await wait_for(lambda: not channel.clients)
        assert (channel.depth, len(channel.in_flight), channel.requeue_count) == (0, 0, 0)


async def test_bad_names_fail_before_connecting() -> None:
    with pytest.raises(BadTopicError):
        async with open_consumer("bad topic", "c", nsqd_tcp_addresses=["127.0.0.1:1"]):
            pass
    with pytest.raises(BadChannelError):
        async with open_consumer("t", "bad/channel", nsqd_tcp_addresses=["127.0.0.1:1"]):
            pass
    with pytest.raises(ValueError, match="needs nsqd_tcp_addresses"):
        async with open_consumer("t", "c"):
            pass


async def test_an_unreachable_direct_nsqd_raises() -> None:
    async with open_broker() as broker:
        address = broker.tcp_address
    with pytest.raises(ConnectError, match=address):
        async with open_consumer("t", "c", nsqd_tcp_addresses=[address]):
            pass


async def test_a_stop_ends_within_graceful_timeout_when_a_message_is_never_answered() -> None:
    async with open_broker() as broker:
        await publish(broker, "t", [b"held"])
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], graceful_timeout=0.5
        ) as consumer:
            held = await consumer.__anext__()
            consumer.stop()
            with trio.fail_after(10):
                async for message in consumer:
                    raise AssertionError(f"handed out after the stop: {message}")
            assert consumer.stats.connections == 0
            await held.finish()  # too late: its connection is gone, nothing is sent
            assert consumer.stats.finished == 0
        channel = _channel(broker)
        await wait_for(lambda: not channel.clients)
        # nsqd keeps it in flight until its timeout, then delivers it again.
        assert (channel.depth, len(channel.in_flight)) == (0, 1)


async def test_answers_to_messages_received_together_go_out_together() -> None:
    async with open_broker() as broker:
        await publish(broker, "t", [b"b%d" % i for i in range(500)])
        config = ClientConfig(max_in_flight=500)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            (subscription,) = consumer._subscriptions
            assert subscription.connection is not None
            await wait_for(lambda: consumer.stats.received == 500)
            writes = subscription.connection.writes
            for _ in range(500):
                message = await consumer.__anext__()
                await message.finish()
            await subscription.connection.drain()
            # One write per message would be 500; batches of up to 64 make at most a dozen.
            assert subscription.connection.writes - writes <= 20

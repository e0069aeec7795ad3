"""A consumer over several brokers: max_in_flight spread over them, and registries that add and
remove brokers while it consumes."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
import trio

from tests.client.consumers import listed, publish, wait_for
from trinsq import open_broker, open_cluster
from trinsq.client import ClientConfig, Message, open_consumer


async def test_max_in_flight_is_spread_over_three_brokers() -> None:
    async with open_cluster(brokers=3, registries=0) as cluster:
        bodies = {b: [b"%d-%d" % (n, i) for i in range(30)] for n, b in enumerate(cluster.brokers)}
        for broker, messages in bodies.items():
            await publish(broker, "t", messages)
        seen: Counter[bytes] = Counter()
        config = ClientConfig(max_in_flight=6)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[b.tcp_address for b in cluster.brokers], config=config
        ) as consumer:
            clients = [b.topics["t"].channels["c"].clients for b in cluster.brokers]

            def ready_counts() -> list[int]:
                return [c.ready_count for cs in clients for c in cs.values()]

            await wait_for(lambda: ready_counts() == [2, 2, 2])
            assert consumer.stats.connections == 3
            async for message in consumer:
                seen[message.body] += 1
                await message.finish()
                if sum(seen.values()) == 90:
                    break
        assert seen == Counter(b for messages in bodies.values() for b in messages)


async def test_more_brokers_than_max_in_flight_are_served_in_turn() -> None:
    """max_in_flight 2 over 3 brokers: two hold RDY 1, and RDY moves to the third as the others
    go idle. Messages are published once every connection is set up: while a connection is
    added, one whose RDY was lowered may still deliver at the old count (RDY has no answer in
    NSQ; go-nsq has the same window)."""
    async with open_cluster(brokers=3, registries=0) as cluster:
        seen: Counter[bytes] = Counter()
        holding = 0
        most = 0

        async def handler(message: Message) -> None:
            nonlocal holding, most
            holding += 1
            most = max(most, holding)
            await trio.sleep(0.005)
            seen[message.body] += 1
            holding -= 1
            if sum(seen.values()) == 30:
                consumer.stop()

        config = ClientConfig(
            max_in_flight=2, rdy_redistribute_interval=0.05, low_rdy_idle_timeout=1.0
        )
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[b.tcp_address for b in cluster.brokers], config=config
        ) as consumer:
            assert consumer.stats.connections == 3
            clients = [b.topics["t"].channels["c"].clients for b in cluster.brokers]
            await wait_for(
                lambda: sorted(c.ready_count for cs in clients for c in cs.values()) == [0, 1, 1]
            )
            expected: Counter[bytes] = Counter()
            for n, broker in enumerate(cluster.brokers):
                messages = [b"%d-%d" % (n, i) for i in range(10)]
                expected.update(messages)
                await publish(broker, "t", messages)
            with trio.fail_after(30):
                await consumer.run(handler, concurrency=10)
        assert seen == expected
        assert most == 2


async def test_a_registry_adds_and_removes_brokers_during_a_consume() -> None:
    async with open_cluster(brokers=2, registries=1) as cluster:
        first, second = cluster.brokers
        registry = cluster.registries[0]
        await publish(first, "t", [b"a1", b"a2"])
        await listed(registry.http_address, "t", 1)
        seen: list[bytes] = []
        config = ClientConfig(max_in_flight=10, lookupd_poll_interval=0.1, lookupd_poll_jitter=0.5)
        async with open_consumer(
            "t", "c", lookupd_http_addresses=cluster.lookupd_http_addresses, config=config
        ) as consumer:
            assert consumer.connected_addresses == [first.tcp_address]

            async def take(count: int) -> None:
                for _ in range(count):
                    message = await consumer.__anext__()
                    seen.append(message.body)
                    await message.finish()

            await take(2)
            # The second broker makes the topic and registers it: the consumer finds it.
            await publish(second, "t", [b"b1"])
            await listed(registry.http_address, "t", 2)
            await take(1)
            assert consumer.connected_addresses == sorted([first.tcp_address, second.tcp_address])
            # The registry stops listing the first: the consumer leaves it (still running).
            async with httpx.AsyncClient() as http:
                node = first.http_address
                answer = await http.post(
                    f"http://{registry.http_address}/topic/tombstone",
                    params={"topic": "t", "node": node},
                )
                assert answer.status_code == 200
            await wait_for(lambda: consumer.connected_addresses == [second.tcp_address])
            assert not first.topics["t"].channels["c"].clients
            await publish(first, "t", [b"a3"])
            await publish(second, "t", [b"b2"])
            await take(1)
        assert seen == [b"a1", b"a2", b"b1", b"b2"]
        assert first.topics["t"].channels["c"].depth == 1


async def test_a_direct_broker_that_restarts_is_connected_again() -> None:
    async with open_broker() as broker:
        address = broker.tcp_address
        port = broker.addresses.tcp[1]
    config = ClientConfig(lookupd_poll_interval=0.1)
    async with open_broker(tcp_address=f"127.0.0.1:{port}") as broker:
        await publish(broker, "t", [b"before"])
        async with open_consumer("t", "c", nsqd_tcp_addresses=[address], config=config) as consumer:
            message = await consumer.__anext__()
            await message.finish()
            broker.request_shutdown()
            await wait_for(lambda: consumer.stats.connections == 0)
            async with open_broker(tcp_address=f"127.0.0.1:{port}") as again:
                await publish(again, "t", [b"after"])
                message = await consumer.__anext__()
                assert message.body == b"after"
                await message.finish()


async def test_connecting_to_another_broker_while_consuming() -> None:
    async with open_cluster(brokers=2, registries=0) as cluster:
        first, second = cluster.brokers
        await publish(second, "t", [b"from the second"])
        config = ClientConfig(max_in_flight=8)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[first.tcp_address], config=config
        ) as consumer:
            await consumer.connect(second.tcp_address)
            await consumer.connect(second.tcp_address)  # already connected: nothing happens
            assert consumer.connected_addresses == sorted([first.tcp_address, second.tcp_address])
            message = await consumer.__anext__()
            assert (message.body, message.nsqd_address) == (b"from the second", second.tcp_address)
            await message.finish()
            clients = [b.topics["t"].channels["c"].clients for b in cluster.brokers]
            await wait_for(lambda: [c.ready_count for cs in clients for c in cs.values()] == [4, 4])
            consumer.stop()
            with pytest.raises(RuntimeError, match="consumer stopped"):
                await consumer.connect("127.0.0.1:1")

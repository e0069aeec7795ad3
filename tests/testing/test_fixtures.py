"""trinsq.testing's pytest fixtures, used as an application's tests use them (the plugin is
registered by trinsq's own installation)."""

from __future__ import annotations

import pytest
import trio

from trinsq import RunningBroker, RunningCluster, RunningRegistry
from trinsq.client import ClientConfig, Producer, open_consumer
from trinsq.testing._plugin import BrokerFactory


async def consume_one(broker: RunningBroker, topic: str) -> bytes:
    async with open_consumer(topic, "ch", nsqd_tcp_addresses=[broker.tcp_address]) as consumer:
        async for message in consumer:
            await message.finish()
            return message.body
    raise AssertionError("the consumer ended")


async def test_a_broker_and_a_connected_producer(
    trinsq_broker: RunningBroker, trinsq_producer: Producer
) -> None:
    await trinsq_producer.publish("orders", b"one")
    assert await consume_one(trinsq_broker, "orders") == b"one"


@pytest.mark.trinsq(msg_timeout=7, max_req_timeout=90)
async def test_marker_options_reach_the_broker(trinsq_broker: RunningBroker) -> None:
    options = trinsq_broker.server.options
    assert (options.msg_timeout, options.max_req_timeout) == (7, 90)


async def test_every_test_gets_a_broker_of_its_own_first(trinsq_broker: RunningBroker) -> None:
    assert trinsq_broker.topics == {}  # whatever other tests published went with their broker


async def test_a_registry(trinsq_registry: RunningRegistry) -> None:
    assert trinsq_registry.http_address is not None
    assert trinsq_registry.tcp_address.startswith("127.0.0.1:")


@pytest.mark.trinsq_cluster(brokers=3, registries=2)
@pytest.mark.trinsq(msg_timeout=9)
async def test_a_cluster_of_the_shape_asked(trinsq_cluster: RunningCluster) -> None:
    assert (len(trinsq_cluster.brokers), len(trinsq_cluster.registries)) == (3, 2)
    assert {broker.server.options.msg_timeout for broker in trinsq_cluster.brokers} == {9}
    assert len(trinsq_cluster.lookupd_http_addresses) == 2


async def test_the_factory_starts_brokers_from_the_test_body(
    trinsq_broker_factory: BrokerFactory,
) -> None:
    first = await trinsq_broker_factory()
    second = await trinsq_broker_factory(msg_timeout=11)
    assert first.tcp_address != second.tcp_address
    assert second.server.options.msg_timeout == 11
    from trinsq.client import open_producer

    async with open_producer(second.tcp_address, ClientConfig()) as producer:
        await producer.publish("t", b"x")
    assert second.topics["t"].message_count == 1


async def test_a_broker_started_in_a_child_task_of_the_test(
    trinsq_broker_factory: BrokerFactory,
) -> None:
    started: list[RunningBroker] = []

    async def start_one() -> None:
        started.append(await trinsq_broker_factory())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(start_one)
    assert started[0].http_address is not None  # still running after its starter ended

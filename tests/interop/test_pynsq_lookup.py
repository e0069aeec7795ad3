"""pynsq discovering trinsq brokers through a trinsq registry.

A pynsq ``Reader`` given only ``lookupd_http_addresses`` discovers two trinsq brokers through a
trinsq registry and consumes what was published to both: the brokers register their topic with
the registry over TCP (protocol V1), pynsq asks the registry's ``GET /lookup`` when it starts,
connects to every producer listed there (``broadcast_address:tcp_port``) and subscribes on each.

pynsq runs on its own IOLoop in a worker thread (see ``pynsq_harness``) while the registry and
both brokers serve in the test's Trio run. Every wait is on a condition of the in-process
servers, checked by the harness's probe after each Trio task step, so nothing sleeps blindly.
"""

from __future__ import annotations

import nsq
import pytest

from tests.interop.pynsq_harness import Delivery, Session, pynsq_against
from tests.support import RawClient
from trinsq import RunningBroker
from trinsq._cluster import open_cluster
from trinsq.registry import RunningRegistry
from trinsq.registry._db import PeerAddress

pytestmark = pytest.mark.interop

TOPIC = "discovered"
CHANNEL = "everything"
PER_BROKER = 10


def bodies_for(index: int) -> list[bytes]:
    return [b"broker%d-message%02d" % (index, n) for n in range(PER_BROKER)]


def producers(registry: RunningRegistry) -> list[PeerAddress]:
    """What the registry's ``/lookup?topic=TOPIC`` lists as producers right now."""
    options = registry.server.options
    result = registry.server.db.lookup(
        TOPIC,
        inactive_timeout=options.inactive_producer_timeout,
        tombstone_lifetime=options.tombstone_lifetime,
    )
    return [] if result is None else result.producers


def drained(broker: RunningBroker) -> bool:
    topic = broker.topics.get(TOPIC)
    channel = None if topic is None else topic.channels.get(CHANNEL)
    return (
        channel is not None
        and channel.message_count == PER_BROKER
        and channel.depth == 0
        and not channel.in_flight
        and not channel.deferred
    )


def consumers(broker: RunningBroker) -> list[str]:
    """User agents of the clients subscribed to the channel."""
    topic = broker.topics.get(TOPIC)
    channel = None if topic is None else topic.channels.get(CHANNEL)
    if channel is None:
        return []
    return [client.user_agent for client in channel.clients.values()]


async def test_reader_finds_both_brokers_through_the_registry() -> None:
    async with open_cluster(brokers=2, registries=1) as cluster:
        (registry,) = cluster.registries
        brokers = cluster.brokers

        # Publish distinct messages to each broker before any consumer exists: PUB creates the
        # topic (no channel yet, so the topic holds them), and each broker REGISTERs it.
        for index, broker in enumerate(brokers):
            publisher = await RawClient.connect(broker)
            try:
                for body in bodies_for(index):
                    await publisher.publish(TOPIC, body)
            finally:
                await publisher.aclose()
            assert broker.topics[TOPIC].depth == PER_BROKER

        async with pynsq_against(brokers[0]) as pynsq:
            # Both brokers are listed by /lookup before the reader starts (it asks only once
            # before its first poll interval).
            await pynsq.probe.until(
                lambda: len(producers(registry)) == 2, what="both brokers to register the topic"
            )
            listed = sorted(f"{p.broadcast_address}:{p.tcp_port}" for p in producers(registry))
            assert listed == sorted(broker.tcp_address for broker in brokers)
            assert registry.http_address is not None
            assert cluster.lookupd_http_addresses == [registry.http_address]

            async def scenario(s: Session) -> tuple[list[Delivery], list[str], list[list[str]]]:
                got: list[Delivery] = []

                def handler(message: nsq.Message) -> bool:
                    try:
                        s.record(message, got)
                    except BaseException as error:
                        s.fail(f"handler raised {error!r}", error)
                        raise
                    return True

                # Session.reader always adds the broker's own address, so build the Reader here:
                # the registry is its only way to find anything.
                reader = nsq.Reader(
                    topic=TOPIC,
                    channel=CHANNEL,
                    message_handler=handler,
                    lookupd_http_addresses=list(cluster.lookupd_http_addresses),
                    max_in_flight=10,
                )
                assert reader.nsqd_tcp_addresses == []
                s.readers.append(reader)
                total = PER_BROKER * len(brokers)
                await s.until(lambda: len(got) >= total, what="every message", state=lambda: got)
                s.broker_until(lambda: all(drained(b) for b in brokers), what="every FIN")
                connected = sorted(reader.conns)
                subscribed = s.in_trio(lambda: [consumers(b) for b in brokers])
                return got, connected, subscribed

            got, connected, subscribed = await pynsq.run(scenario)
            # The harness waited for brokers[0] to see pynsq go; wait for the other one too.
            await pynsq.probe.until(
                lambda: all(not b.server.clients for b in brokers), what="pynsq to disconnect"
            )
            # The channel pynsq's SUB created is registered by both brokers (REGISTER t c).
            await pynsq.probe.until(
                lambda: len(registry.server.db.find_producers("channel", TOPIC, CHANNEL)) == 2,
                what="both brokers to register the channel",
            )
            assert registry.server.db.channels(TOPIC) == [CHANNEL]

        # pynsq connected to exactly the two brokers the registry named, one consumer on each.
        assert connected == listed
        assert subscribed == [[f"pynsq/{nsq.__version__}"]] * len(brokers)

        # Every message from both brokers, exactly once, first attempt.
        expected = sorted(body for index in range(len(brokers)) for body in bodies_for(index))
        assert sorted(delivery.body for delivery in got) == expected
        assert {delivery.attempts for delivery in got} == {1}
        for index, broker in enumerate(brokers):
            # IDs are unique per broker only: both brokers have the same default node id
            # (from the hostname), so, as with two nsqd on one host, their IDs may coincide.
            ids = {d.id for d in got if d.body.startswith(b"broker%d-" % index)}
            assert len(ids) == PER_BROKER, index
            channel = broker.topics[TOPIC].channels[CHANNEL]
            assert (channel.message_count, channel.requeue_count, channel.timeout_count) == (
                PER_BROKER,
                0,
                0,
            ), index

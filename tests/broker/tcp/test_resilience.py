"""Abrupt disconnects: the broker keeps serving and keeps nothing of the dead clients."""

from __future__ import annotations

import gc
import socket
import struct

import pytest
import trio
import trio.testing

from tests.conftest import Connect
from tests.support import RawClient, mpub_body
from trinsq import RunningBroker
from trinsq.broker.tcp._connection import ClientConnection

CONNECTIONS = 1000


def _reset(client: RawClient) -> None:
    """Make the close send a TCP RST instead of a FIN."""
    client.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.slow
async def test_a_thousand_connections_reset_abruptly(
    broker: RunningBroker, connect: Connect
) -> None:
    publisher = await connect(broker)
    await publisher.send(b"MPUB reset\n" + mpub_body([b"m%03d" % i for i in range(300)]))
    await publisher.expect_response(b"OK")
    await trio.testing.wait_all_tasks_blocked(cushion=0.05)
    tasks_before = trio.lowlevel.current_statistics().tasks_living

    victims: list[RawClient] = []
    for index in range(CONNECTIONS):
        client = await RawClient.connect(broker)
        kind = index % 4
        if kind == 1:  # subscribed, holding messages in flight
            await client.send(b"SUB reset c\nRDY 1\n")
        elif kind == 2:  # in the middle of a PUB body
            await client.send(b"PUB reset\n" + struct.pack(">i", 100) + b"partial")
        elif kind == 3:  # subscribed to an ephemeral channel
            await client.send(b"SUB reset e#ephemeral\n")
        victims.append(client)
    await trio.testing.wait_all_tasks_blocked(cushion=0.2)
    assert len(broker.server.clients) == CONNECTIONS + 1

    for client in victims:
        _reset(client)
        await client.aclose()
    del victims, client
    await trio.testing.wait_all_tasks_blocked(cushion=0.2)

    assert list(broker.server.clients) == [1]  # only the publisher is left
    assert trio.lowlevel.current_statistics().tasks_living == tasks_before
    topic = broker.topics["reset"]
    assert list(topic.channels) == ["c"]  # the ephemeral channel went with its clients
    channel = topic.channels["c"]
    assert channel.clients == {}
    assert channel.waiting == {}
    # Messages delivered to the dead consumers stay in flight until they time out (nsqd
    # semantics): nothing is lost.
    assert channel.depth + len(channel.in_flight) == 300
    gc.collect()
    live = [o.client.id for o in gc.get_objects() if isinstance(o, ClientConnection)]
    assert live == [1]  # the publisher's; every victim's connection object is gone

    # And the broker still serves.
    consumer = await connect(broker)
    await consumer.subscribe("reset", "fresh", rdy=1)
    await publisher.publish("reset", b"after the storm")
    _, _, _, data = await consumer.read_message()
    assert data == b"after the storm"

"""Helpers of the ``trinsq pub`` tests: a subscriber that says exactly what a broker got."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.support import RawClient
from trinsq import RunningBroker

TOPIC = "lines"
SENTINEL = b"-- sentinel --"


class Received:
    """A subscriber to :data:`TOPIC` on one broker, subscribed before anything is published."""

    def __init__(self, broker: RunningBroker, client: RawClient) -> None:
        self.broker = broker
        self.client = client

    async def bodies(self, count: int, timeout: float = 30.0) -> list[bytes]:
        """The next ``count`` message bodies, finished."""
        bodies = []
        for _ in range(count):
            _, _, message_id, body = await self.client.read_message(timeout)
            await self.client.send(b"FIN " + message_id + b"\n")
            bodies.append(body)
        return bodies

    async def nothing_else(self) -> None:
        """Assert that nothing more was published before now: a message published now by
        another client is the next one to come."""
        publisher = await RawClient.connect(self.broker)
        try:
            await publisher.publish(TOPIC, SENTINEL)
        finally:
            await publisher.aclose()
        assert await self.bodies(1) == [SENTINEL]


@asynccontextmanager
async def received(broker: RunningBroker) -> AsyncIterator[Received]:
    client = await RawClient.connect(broker)
    try:
        await client.subscribe(TOPIC, "check", rdy=1000)
        yield Received(broker, client)
    finally:
        await client.aclose()

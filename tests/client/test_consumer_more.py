"""The consumer with TLS, a broker's max_rdy_count, and a broker restart in the middle."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import trio

from tests.client.consumers import finish_all, publish, wait_for
from tests.client.support import mutual_tls
from tests.tlsutil import Certificates
from trinsq import RunningBroker, open_broker
from trinsq.client import ClientConfig, open_consumer, open_producer


async def test_consuming_over_tls_with_a_client_certificate_and_snappy(
    certs: Certificates,
) -> None:
    options, config = mutual_tls(certs, snappy=True, max_in_flight=10)
    async with open_broker(**options) as broker:
        async with open_producer([broker.tcp_address], config) as producer:
            await producer.multi_publish("t", [b"secret %d" % i for i in range(30)])
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config
        ) as consumer:
            seen = await finish_all(consumer, 30)
            (client,) = broker.topics["t"].channels["c"].clients.values()
            assert (client.tls, client.snappy) == (True, True)
        assert sorted(seen) == sorted(b"secret %d" % i for i in range(30))


async def test_rdy_is_never_above_the_brokers_max_rdy_count() -> None:
    async with open_broker(max_rdy_count=50) as broker:
        config = ClientConfig(max_in_flight=500)
        async with open_consumer("t", "c", nsqd_tcp_addresses=[broker.tcp_address], config=config):
            clients = broker.topics["t"].channels["c"].clients
            await wait_for(lambda: [c.ready_count for c in clients.values()] == [50])


class _Broker:
    """A broker on ``data_path`` run by a task of its own, so it can stop and start again
    under a consumer."""

    def __init__(self, data_path: Path) -> None:
        self.data_path = data_path
        self.address = "127.0.0.1:0"
        self._stop = trio.Event()
        self._stopped = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[RunningBroker]) -> None:
        self._stop, self._stopped = trio.Event(), trio.Event()
        try:
            async with open_broker(data_path=str(self.data_path), tcp_address=self.address) as b:
                self.address = b.tcp_address
                task_status.started(b)
                await self._stop.wait()
        finally:
            self._stopped.set()

    async def stop(self) -> None:
        self._stop.set()
        await self._stopped.wait()


async def test_nothing_is_lost_across_a_broker_restart(tmp_path: Path) -> None:
    """At-least-once: every message arrives, and only those in flight at the restart (their
    FIN not yet taken by the broker) may arrive twice."""
    bodies = [b"d%d" % i for i in range(300)]
    seen: Counter[bytes] = Counter()
    config = ClientConfig(max_in_flight=10, lookupd_poll_interval=0.1)
    broker = _Broker(tmp_path)
    async with trio.open_nursery() as nursery:
        await publish(await nursery.start(broker.run), "t", bodies)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[broker.address], config=config
        ) as consumer:
            async for message in consumer:
                seen[message.body] += 1
                await message.finish()
                if sum(seen.values()) == 100:
                    break
            await broker.stop()
            await wait_for(lambda: consumer.stats.connections == 0)
            await nursery.start(broker.run)
            async for message in consumer:
                seen[message.body] += 1
                await message.finish()
                if set(seen) == set(bodies):
                    break
        await broker.stop()
    assert set(seen) == set(bodies)
    twice = [body for body, count in seen.items() if count > 1]
    assert len(twice) <= config.max_in_flight


async def test_a_missing_certificate_file_fails_when_the_consumer_opens(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    config = ClientConfig(tls=True, tls_cert_file=missing, tls_key_file=missing)
    with pytest.raises(FileNotFoundError):
        async with open_consumer("t", "c", lookupd_http_addresses=["127.0.0.1:1"], config=config):
            pass  # pragma: no cover

"""statsd: nsqd's metric lines over UDP, counters as deltas, packet size, ephemeral exclusion."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from tests.support import RawClient, mpub_body
from trinsq import open_broker
from trinsq.broker.config._options import OptionError
from trinsq.broker.monitoring._statsd import pack_datagrams, statsd_prefix

INTERVAL = 0.3
Push = dict[str, tuple[int, str]]  # metric name without the prefix -> (value, "c" or "g")


class StatsdListener:
    """A UDP socket standing in for statsd; pushes are split at nsqd's last line."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.datagrams: list[bytes] = []
        self.prefix = ""

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    async def push(self, timeout: float = 5.0) -> Push:
        metrics: Push = {}
        with trio.fail_after(timeout):
            while "mem.gc_runs" not in metrics:
                datagram = await self.sock.recv(65536)
                self.datagrams.append(datagram)
                assert datagram.endswith(b"\n")
                for line in datagram.decode().splitlines():
                    assert line.startswith(self.prefix), line
                    name, _, rest = line.removeprefix(self.prefix).rpartition(":")
                    value, _, kind = rest.partition("|")
                    metrics[name] = (int(value), kind)
        return metrics

    async def settle(self, expected: dict[str, int], timeout: float = 10.0) -> Push:
        """Read pushes until counters summed over all of them and the latest gauges match
        ``expected``; return that push."""
        totals: dict[str, int] = {}
        current: dict[str, int] = {}
        with trio.move_on_after(timeout):
            while True:
                push = await self.push()
                for name, (value, kind) in push.items():
                    if kind == "c":
                        totals[name] = totals.get(name, 0) + value
                current = {n: totals.get(n, v) if k == "c" else v for n, (v, k) in push.items()}
                if all(current.get(name) == value for name, value in expected.items()):
                    return push
        seen = {name: current.get(name) for name in expected}
        raise AssertionError(f"never reached {expected}, last seen {seen}")


@pytest.fixture
async def listener() -> AsyncIterator[StatsdListener]:
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        yield StatsdListener(sock)


def statsd_broker(listener: StatsdListener, **options: Any) -> Any:
    return open_broker(statsd_address=listener.address, statsd_interval=INTERVAL, **options)


async def test_metric_names_and_counter_deltas(listener: StatsdListener) -> None:
    async with statsd_broker(listener, e2e_processing_latency_percentiles=[1.0, 0.99]) as broker:
        listener.prefix = f"nsq.127_0_0_1_{broker.addresses.http[1]}."
        consumer = await RawClient.connect(broker)
        try:
            await consumer.subscribe("t", "c", rdy=10)
            await consumer.send(b"MPUB t\n" + mpub_body([b"one", b"two", b"three"]))
            await consumer.expect_response(b"OK")
            ids = [(await consumer.read_message())[2] for _ in range(3)]
            await consumer.send(b"REQ " + ids[0] + b" 0\n")
            ids[0] = (await consumer.read_message())[2]
            await consumer.send(b"".join(b"FIN " + message_id + b"\n" for message_id in ids))
            final = {
                "topic.t.message_count": 3,
                "topic.t.message_bytes": len(b"onetwothree"),
                "topic.t.depth": 0,
                "topic.t.channel.c.message_count": 3,
                "topic.t.channel.c.requeue_count": 1,
                "topic.t.channel.c.in_flight_count": 0,
                "topic.t.channel.c.clients": 1,
            }
            settled = await listener.settle(final)
            after = await listener.push()
        finally:
            await consumer.aclose()
    assert [name for name in settled if name.startswith("topic.")] == [
        "topic.t.message_count",
        "topic.t.message_bytes",
        "topic.t.depth",
        "topic.t.backend_depth",
        "topic.t.e2e_processing_latency_100",
        "topic.t.e2e_processing_latency_99",
        "topic.t.channel.c.message_count",
        "topic.t.channel.c.depth",
        "topic.t.channel.c.backend_depth",
        "topic.t.channel.c.in_flight_count",
        "topic.t.channel.c.deferred_count",
        "topic.t.channel.c.requeue_count",
        "topic.t.channel.c.timeout_count",
        "topic.t.channel.c.clients",
        "topic.t.channel.c.e2e_processing_latency_100",
        "topic.t.channel.c.e2e_processing_latency_99",
    ]
    assert [name for name in settled if name.startswith("mem.")] == [
        "mem.heap_objects",
        "mem.heap_idle_bytes",
        "mem.heap_in_use_bytes",
        "mem.heap_released_bytes",
        "mem.gc_pause_usec_100",
        "mem.gc_pause_usec_99",
        "mem.gc_pause_usec_95",
        "mem.next_gc_bytes",
        "mem.gc_runs",
    ]
    kinds = {name: kind for name, (_, kind) in settled.items()}
    counters = {name for name, kind in kinds.items() if kind == "c"}
    assert counters == {
        "topic.t.message_count",
        "topic.t.message_bytes",
        "topic.t.channel.c.message_count",
        "topic.t.channel.c.requeue_count",
        "topic.t.channel.c.timeout_count",
        "mem.gc_runs",
    }
    assert settled["topic.t.channel.c.e2e_processing_latency_100"][0] > 0
    # Nothing happened since: every counter of the topic reports no change.
    assert {
        name: after[name][0] for name in counters if name.startswith("topic.")
    } == dict.fromkeys((name for name in counters if name.startswith("topic.")), 0)
    assert after["topic.t.depth"] == (0, "g")


async def test_datagrams_respect_the_packet_size(listener: StatsdListener) -> None:
    size = 120
    async with statsd_broker(listener, statsd_udp_packet_size=size, statsd_prefix="") as broker:
        for index in range(4):
            for channel in ("a", "b", "c"):
                broker.server.graph.get_topic(f"topic{index}").get_channel(channel)
        await listener.settle({"topic.topic3.channel.c.depth": 0})
    datagrams = listener.datagrams
    assert max(len(datagram) for datagram in datagrams) <= size
    # Packed greedily: the next datagram's first line would not have fitted.
    for first, second in itertools.pairwise(datagrams):
        next_line = second.split(b"\n")[0] + b"\n"
        assert len(first) + len(next_line) > size or b"mem.gc_runs:" in first


@pytest.mark.parametrize("exclude", [True, False])
async def test_exclude_ephemeral(listener: StatsdListener, exclude: bool) -> None:
    async with statsd_broker(listener, statsd_exclude_ephemeral=exclude) as broker:
        listener.prefix = f"nsq.127_0_0_1_{broker.addresses.http[1]}."
        graph = broker.server.graph
        graph.get_topic("e#ephemeral")
        graph.get_topic("t").get_channel("durable")
        graph.get_topic("t").get_channel("c#ephemeral")
        push = await listener.settle({"topic.t.channel.durable.depth": 0})
    ephemeral = {name for name in push if "#ephemeral" in name}
    if exclude:
        assert ephemeral == set()
    else:
        assert {"topic.e#ephemeral.depth", "topic.t.channel.c#ephemeral.clients"} <= ephemeral


async def test_without_mem_stats(listener: StatsdListener) -> None:
    async with statsd_broker(listener, statsd_mem_stats=False, statsd_prefix="x") as broker:
        broker.server.graph.get_topic("t")
        with trio.fail_after(5):
            datagram = await listener.sock.recv(65536)
    assert datagram == (
        b"x.topic.t.message_count:0|c\nx.topic.t.message_bytes:0|c\n"
        b"x.topic.t.depth:0|g\nx.topic.t.backend_depth:0|g\n"
    )


def test_prefix_host_key() -> None:
    assert statsd_prefix("nsq.%s", "10.0.0.1", 4151) == "nsq.10_0_0_1_4151."
    assert statsd_prefix("nsq.%s.", "h.example", 80) == "nsq.h_example_80."
    assert statsd_prefix("%s/%s", "::1", 1) == "[__1]_1/[__1]_1."
    assert statsd_prefix("plain", "h", 1) == "plain."
    assert statsd_prefix("", "h", 1) == ""


def test_pack_datagrams() -> None:
    lines = [b"a" * 4 + b"\n", b"b" * 4 + b"\n", b"c" * 12 + b"\n", b"d\n", b"e\n"]
    assert pack_datagrams(lines, 10) == [b"aaaa\nbbbb\n", b"c" * 12 + b"\n", b"d\ne\n"]
    assert pack_datagrams([], 10) == []


async def test_zero_interval_is_refused(listener: StatsdListener) -> None:
    with pytest.raises(OptionError, match="statsd-interval"):
        async with open_broker(statsd_address=listener.address, statsd_interval=0):
            pass

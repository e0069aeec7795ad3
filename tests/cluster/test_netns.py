"""A cluster across hosts: a registry, two brokers and a consumer, each in its own network
namespace, joined by veth links to one switch (tests/cluster/netns.py builds them).

Each broker advertises its own address with ``--broadcast-address``; the consumer
(tests/cluster/netns_agent.py) is given only the registry. The test cuts one broker's link and
checks that it leaves ``/lookup`` after ``--inactive-producer-timeout``, that the consumer keeps
consuming from the other broker meanwhile, and that once the link is back the broker registers
again and the messages published to it while it was cut off are delivered.

It takes about 30 s, up to a minute (its pace is nsqd's: brokers ping their registries every
15 s, so the registry's inactive-producer timeout has to be longer than that, and a broker cut
off backs off up to 15 s between reconnections). It needs root and iproute2 and is skipped, with the
reason, where network namespaces cannot be created.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from tests.cluster.netns import (
    Hosts,
    namespaces_named,
    open_hosts,
    skip_unless_namespaces_can_be_made,
)

TOPIC = "events"
CHANNEL = "archive"
PING_INTERVAL = 15.0  # nsqd's (and trinsq's) registry ping interval, not a flag
# Longer than the ping interval with room for a late ping on a busy machine: shorter, and
# healthy brokers would drop out of /lookup between pings.
INACTIVE_PRODUCER_TIMEOUT = 20.0
# Short, so that messages sent to the consumer over the cut link come back into the queue
# soon (as in nsqd, in-flight messages of a lost connection wait for their timeout).
MSG_TIMEOUT = 10.0
AGENT = (sys.executable, "-m", "tests.cluster.netns_agent")


class ServerProcess:
    """A ``trinsq`` process inside a namespace, and everything it logged."""

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        self.log = bytearray()

    async def wait_listening(self, timeout: float = 30.0) -> None:
        assert self.process.stderr is not None
        with trio.fail_after(timeout):
            while b"TCP: listening on" not in self.log:
                chunk = await self.process.stderr.receive_some(4096)
                assert chunk, f"{self.name} exited early:\n{self.log.decode()}"
                self.log += chunk

    async def drain(self) -> None:
        """Keep reading the log so the process never blocks on a full pipe."""
        assert self.process.stderr is not None
        async for chunk in self.process.stderr:
            self.log += chunk


class ConsumerView:
    """What the consumer agent reported, followed line by line."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.events: list[tuple[float, dict[str, object]]] = []
        self.lookups: list[tuple[float, set[str]]] = []
        self.received: list[str] = []
        self.exited = False
        self._changed = trio.Event()

    @property
    def listed(self) -> set[str]:
        """The brokers the last ``/lookup`` answer listed."""
        return self.lookups[-1][1] if self.lookups else set()

    async def follow(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        async for chunk in self.process.stdout:
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                event = json.loads(line)
                now = trio.current_time()
                self.events.append((now, event))
                if "lookup" in event:
                    self.lookups.append((now, set(event["lookup"])))
                if "message" in event:
                    self.received.append(event["message"])
            self._changed.set()
            self._changed = trio.Event()
        self.exited = True
        self._changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        """Wait for ``condition`` (checked after each report) and return when it held."""
        with trio.move_on_after(timeout):
            while not condition():
                assert not self.exited, f"the consumer exited before {what}"
                await self._changed.wait()
            return trio.current_time()
        recent = "\n".join(json.dumps(event) for _, event in self.events[-30:])
        raise AssertionError(
            f"not within {timeout:g} s: {what}; the consumer's last reports:\n{recent}"
        )


def batch(prefix: str, start: int, stop: int) -> list[str]:
    return [f"{prefix}-{number}" for number in range(start, stop)]


async def start_server(hosts: Hosts, nursery: trio.Nursery, host: str, *argv: str) -> ServerProcess:
    process = await hosts.start(
        host, sys.executable, "-m", "trinsq", *argv, "--log-level=info", stderr=subprocess.PIPE
    )
    server = ServerProcess(host, process)
    await server.wait_listening()
    nursery.start_soon(server.drain)
    return server


@pytest.fixture
def namespaces_allowed() -> None:
    skip_unless_namespaces_can_be_made()


@pytest.mark.slow
@pytest.mark.deadline(300)
@pytest.mark.usefixtures("namespaces_allowed")
async def test_consumer_follows_brokers_across_namespaces_through_a_partition(
    tmp_path: Path,
) -> None:
    servers: list[ServerProcess] = []
    try:
        async with open_hosts("registry", "broker-a", "broker-b", "consumer") as hosts:
            prefix = hosts.prefix
            async with trio.open_nursery() as nursery:
                await _scenario(hosts, nursery, servers, tmp_path)
                nursery.cancel_scope.cancel()
        # Everything the test made is gone again.
        assert await namespaces_named(prefix) == []
    finally:
        for server in servers:  # shown with the failure report
            print(f"--- {server.name} log ---\n{server.log.decode(errors='replace')}")


async def _scenario(
    hosts: Hosts, nursery: trio.Nursery, servers: list[ServerProcess], tmp_path: Path
) -> None:
    began = trio.current_time()
    registry = hosts.addresses["registry"]
    servers.append(
        await start_server(
            hosts, nursery, "registry", "registry",
            f"--tcp-address={registry}:4160", f"--http-address={registry}:4161",
            f"--broadcast-address={registry}",
            f"--inactive-producer-timeout={INACTIVE_PRODUCER_TIMEOUT:g}s",
        )
    )  # fmt: skip
    for node_id, host in enumerate(("broker-a", "broker-b"), 1):
        (tmp_path / host).mkdir()
        servers.append(
            await start_server(
                hosts, nursery, host, "broker",
                "--tcp-address=0.0.0.0:4150", "--http-address=0.0.0.0:4151",
                f"--broadcast-address={hosts.addresses[host]}",
                f"--lookupd-tcp-address={registry}:4160",
                f"--data-path={tmp_path / host}", f"--node-id={node_id}",
                f"--msg-timeout={MSG_TIMEOUT:g}s",
            )
        )  # fmt: skip
    a = f"{hosts.addresses['broker-a']}:4150"
    b = f"{hosts.addresses['broker-b']}:4150"

    published: list[str] = []

    async def publish(host: str, bodies: list[str]) -> None:
        """Publish from the broker's own host, on its loopback."""
        await hosts.run(host, *AGENT, "publish", "127.0.0.1:4151", TOPIC, *bodies)
        published.extend(bodies)

    def received_all(bodies: list[str]) -> Callable[[], bool]:
        return lambda: set(bodies) <= set(consumer.received)

    # A consumer that knows only the registry finds both brokers and gets what each was sent.
    consumer_process = await hosts.start(
        "consumer", *AGENT, "consume", f"{registry}:4161", TOPIC, CHANNEL, stdout=subprocess.PIPE
    )
    consumer = ConsumerView(consumer_process)
    nursery.start_soon(consumer.follow)
    await publish("broker-a", batch("a", 0, 10))
    await publish("broker-b", batch("b", 0, 10))
    await consumer.until(lambda: consumer.listed == {a, b}, 60, "both brokers in /lookup")
    await consumer.until(received_all(list(published)), 60, "the first messages delivered")
    discovered = trio.current_time()

    # broker-b's cable is pulled; what it is sent meanwhile waits there.
    await hosts.set_link("broker-b", up=False)
    cut = trio.current_time()
    await publish("broker-b", batch("b", 10, 20))
    await publish("broker-a", batch("a", 10, 20))
    await consumer.until(received_all(batch("a", 10, 20)), 60, "broker-a still consumed")
    left = await consumer.until(
        lambda: consumer.listed == {a},
        INACTIVE_PRODUCER_TIMEOUT + 30,
        "broker-b out of /lookup, broker-a still in it",
    )
    # It left because its pings stopped, not sooner: its last ping came at most one interval
    # before the cut (1 s for the clocks of two processes).
    assert left - cut >= INACTIVE_PRODUCER_TIMEOUT - PING_INTERVAL - 1
    await publish("broker-a", batch("a", 20, 30))
    await consumer.until(received_all(batch("a", 20, 30)), 60, "broker-a consumed after b left")
    assert not set(batch("b", 10, 20)) & set(consumer.received), "the cut link carried messages"

    # The cable is back: broker-b registers again and its backlog is delivered.
    await hosts.set_link("broker-b", up=True)
    healed = trio.current_time()
    back = await consumer.until(lambda: consumer.listed == {a, b}, 60, "broker-b back in /lookup")
    delivered = await consumer.until(received_all(published), 60, "broker-b's backlog delivered")

    # Nothing lost, nothing made up (a message may come twice: delivery is at least once), and
    # the healthy broker never flickered out of /lookup on the way.
    assert set(consumer.received) == set(published)
    assert all(a in brokers for at, brokers in consumer.lookups if at >= discovered)
    print(
        f"discovered {discovered - began:.1f} s after the start; broker-b left /lookup "
        f"{left - cut:.1f} s after the cut, was back {back - healed:.1f} s after the link "
        f"returned, its backlog delivered {delivered - healed:.1f} s after; "
        f"{len(consumer.received)} deliveries of {len(published)} messages"
    )

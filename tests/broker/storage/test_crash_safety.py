"""Crash-safe mode (--mem-queue-size=0 --sync-every=1): kill -9 loses nothing acknowledged.

Beyond nsqd, which loses in-flight and deferred messages on a crash even in this setting.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio

from tests.support import RawClient, body, run_broker_process

CRASH_SAFE = ("--mem-queue-size=0", "--sync-every=1")


async def publish_until_killed(
    client: RawClient, acknowledged: list[bytes], kill_after: int, kill: trio.Event
) -> None:
    """Pipeline PUBs and add to ``acknowledged`` each body the broker answered OK (responses
    come in command order), until the connection dies."""
    sent: list[bytes] = []
    answered = 0
    try:
        while True:
            batch = [b"durable-%05d" % (len(sent) + i) for i in range(20)]
            await client.send(b"".join(b"PUB crash\n" + body(m) for m in batch))
            sent.extend(batch)
            while answered < len(sent):
                frame = await client.read_frame(timeout=5)
                assert frame.data == b"OK", frame
                acknowledged.append(sent[answered])
                answered += 1
                if answered == kill_after:
                    kill.set()
    except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
        return


@pytest.mark.slow
async def test_kill_9_loses_no_acknowledged_message(tmp_path: Path) -> None:
    data = f"--data-path={tmp_path}"
    acknowledged: list[bytes] = []
    async with run_broker_process(data, *CRASH_SAFE) as broker:
        consumer = await broker.connect()
        await consumer.subscribe("crash", "c")
        publisher = await broker.connect()
        # Before the crash: one message in flight, one deferred by REQ, one deferred by DPUB.
        await publisher.publish("crash", b"in flight at the crash")
        await publisher.publish("crash", b"requeued with a delay")
        await publisher.send(b"DPUB crash 1500\n" + body(b"published deferred"))
        await publisher.expect_response(b"OK")
        acknowledged += [b"in flight at the crash", b"requeued with a delay", b"published deferred"]
        await consumer.send(b"RDY 2\n")
        first = await consumer.read_message()
        second = await consumer.read_message()
        await consumer.send(b"REQ " + second[2] + b" 1000\n")
        await consumer.publish("sync", b"point")  # the REQ has been handled
        assert first[3] == b"in flight at the crash"

        kill = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish_until_killed, publisher, acknowledged, 300, kill)
            await kill.wait()
            broker.process.send_signal(signal.SIGKILL)
        assert await broker.wait() == -signal.SIGKILL
    assert len(acknowledged) >= 303
    # The topic and channel were in nsqd.dat before their first OK.
    assert b'"name":"crash"' in (tmp_path / "nsqd.dat").read_bytes()

    async with run_broker_process(data, *CRASH_SAFE) as broker:
        consumer = await broker.connect()
        await consumer.subscribe("crash", "c", rdy=2500)
        received: set[bytes] = set()
        with trio.move_on_after(8):  # the deferred ones come back after their delay
            while not set(acknowledged) <= received:
                received.add((await consumer.read_message(timeout=8))[3])
        missing = set(acknowledged) - received
        assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:3]}"

"""Heartbeats: sent every interval; a client silent for two intervals is dropped (nsqd.md §2.8)."""

from __future__ import annotations

import pytest
import trio

from tests.conftest import Connect
from trinsq import RunningBroker
from trinsq.protocol import HEARTBEAT_FRAME

INTERVAL = 1.0  # the smallest heartbeat IDENTIFY accepts (1000 ms)
# For the drop test: long enough that "two intervals" and "three" stay apart on a busy machine.
DROP_INTERVAL = 2.0


@pytest.mark.slow
async def test_silent_client_is_dropped_after_two_intervals(
    broker: RunningBroker, connect: Connect
) -> None:
    client = await connect(broker)
    await client.identify(heartbeat_interval=int(DROP_INTERVAL * 1000))
    started = trio.current_time()
    heartbeats = 0
    with trio.fail_after(10 * DROP_INTERVAL):
        try:
            while True:
                frame = await client.read_frame(skip_heartbeats=False)
                assert frame.is_heartbeat, frame
                heartbeats += 1
        except EOFError:
            pass
    elapsed = trio.current_time() - started
    assert heartbeats >= 1
    assert 1.8 * DROP_INTERVAL <= elapsed <= 2.75 * DROP_INTERVAL, elapsed
    assert not broker.server.clients


@pytest.mark.slow
async def test_client_answering_heartbeats_stays(broker: RunningBroker, connect: Connect) -> None:
    client = await connect(broker)
    await client.identify(heartbeat_interval=int(INTERVAL * 1000))
    started = trio.current_time()
    answered = 0
    while trio.current_time() - started < 4 * INTERVAL:
        frame = await client.read_frame(timeout=2 * INTERVAL, skip_heartbeats=False)
        assert frame.is_heartbeat
        await client.send(b"NOP\n")
        answered += 1
    assert answered >= 3
    await client.publish("still-connected", b"x")
    assert len(broker.server.clients) == 1


@pytest.mark.slow
async def test_heartbeat_frame_bytes(broker: RunningBroker, connect: Connect) -> None:
    client = await connect(broker)
    await client.identify(heartbeat_interval=1000)
    assert await client.read_raw(len(HEARTBEAT_FRAME), timeout=3) == (
        bytes.fromhex("0000000f 00000000") + b"_heartbeat_"
    )


async def test_heartbeats_disabled_keeps_silent_client_but_refuses_sub(
    broker: RunningBroker, connect: Connect
) -> None:
    client = await connect(broker)
    await client.identify(heartbeat_interval=-1)
    await client.send(b"SUB t c\n")
    await client.expect_error(b"E_INVALID cannot SUB with heartbeats disabled")

"""Out of file descriptors (issue 13): only what needed a descriptor fails. Reads that fail
are tried again on the storage's tick; the broker keeps serving and recovers once
descriptors are free again."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from tests.conftest import Connect
from tests.support import descriptors_used_up
from trinsq import open_broker


async def test_a_backlog_it_cannot_read_is_tried_again_on_each_tick_then_delivered(
    tmp_path: Path, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "trinsq")
    async with open_broker(data_path=str(tmp_path), mem_queue_size=0, sync_timeout=0.05) as broker:
        publisher = await connect(broker)
        await publisher.publish("held", b"on disk")  # no channel yet: kept in the topic's queue
        consumer = await connect(broker)
        with descriptors_used_up():
            await consumer.send(b"SUB held c\nRDY 1\n")
            await consumer.expect_response(b"OK")
            await trio.sleep(0.3)  # a few ticks out of descriptors
        # Tried on the SUB and again on each tick, not over and over in between.
        assert 1 <= broker.server.storage.backends["held"].read_errors < 50
        _, _, _, data = await consumer.read_message()
        assert data == b"on disk"
        with trio.fail_after(30):
            while "managed to read from disk queues again" not in caplog.text:
                await trio.sleep(0.05)  # said on the tick after the one that worked
    failures = [r for r in caplog.records if "failed to read from disk queues" in r.message]
    assert len(failures) == 1

"""Out of file descriptors (issue 13): only what needed a descriptor fails. A publish to a new
topic answers E_PUB_FAILED, the accept loop waits, syncs and reads that fail are tried again
on the storage's tick; the broker stays up, keeps serving the clients it has, and recovers
once descriptors are free again. The first test runs a real `trinsq broker` process with its
RLIMIT_NOFILE lowered."""

from __future__ import annotations

import logging
import re
import resource
import signal
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import Connect
from tests.support import BrokerProcess, body, descriptors_used_up, run_broker_process
from trinsq import open_broker
from trinsq.protocol import FrameType

# The broker needs 13 descriptors to start: what is left runs out after a few dozen topics
# (each new topic keeps its write file open, as go-diskqueue does).
NOFILE = 64
HOGS = 8  # idle connections holding descriptors, closed to give them back
_HTTP_ADDRESS = re.compile(rb"HTTP: listening on (127\.0\.0\.1:\d+)")


def _lower_the_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class LogReader:
    """Reads the broker's stderr to the end, so it never blocks on a full pipe, and lets a
    test wait for a line."""

    def __init__(self, broker: BrokerProcess) -> None:
        self.broker = broker
        self._grown = trio.Event()

    async def run(self) -> None:
        assert self.broker.process.stderr is not None
        async for chunk in self.broker.process.stderr:
            self.broker.log += chunk
            self._grown.set()
            self._grown = trio.Event()

    async def wait_for(self, text: str) -> None:
        with trio.fail_after(30):
            while text.encode() not in self.broker.log:
                await self._grown.wait()


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_NOFILE"), reason="needs RLIMIT_NOFILE")
async def test_out_of_descriptors_fails_only_what_needs_one_and_recovers(tmp_path: Path) -> None:
    flags = (f"--data-path={tmp_path}", "--mem-queue-size=0", "--sync-timeout=50ms")
    async with (
        run_broker_process(*flags, preexec_fn=_lower_the_limit) as broker,
        trio.open_nursery() as nursery,
    ):
        address = _HTTP_ADDRESS.search(broker.log)
        assert address is not None
        log = LogReader(broker)
        nursery.start_soon(log.run)
        consumer = await broker.connect()
        await consumer.subscribe("kept", "c", rdy=10)
        publisher = await broker.connect()
        await publisher.publish("kept", b"before")  # its queue files are open from now on
        assert (await consumer.read_message())[3] == b"before"
        hogs = [await broker.connect() for _ in range(HOGS)]
        for hog in hogs:
            assert (await hog.identify()).frame_type == FrameType.RESPONSE  # accepted

        # Publish to new topics until the broker has no descriptor left for one.
        newcomer = await broker.connect()
        published: list[str] = []
        for number in range(NOFILE):
            await newcomer.send(f"PUB new{number}\n".encode() + body(b"x"))
            frame = await newcomer.read_frame(timeout=30)
            if frame.frame_type == FrameType.ERROR:
                break
            assert frame.data == b"OK"
            published.append(f"new{number}")
        else:
            pytest.fail(f"{NOFILE} topics and never out of descriptors")
        refused = f"new{len(published)}"
        assert frame.data.startswith(b"E_PUB_FAILED PUB failed "), frame.data
        assert b"Too many open files" in frame.data
        await newcomer.expect_closed(timeout=30)  # E_PUB_FAILED is fatal, as in nsqd

        # The process is up and serves the clients it has.
        await publisher.publish("kept", b"while out of descriptors")
        assert (await consumer.read_message())[3] == b"while out of descriptors"
        assert broker.process.returncode is None

        # Descriptors come back: new connections are accepted, the topic that could not be
        # written to is written to, and every sync that failed meanwhile is done.
        for hog in hogs:
            host, port = hog.stream.socket.getsockname()[:2]
            await hog.aclose()
            await log.wait_for(f"[{host}:{port}] disconnected")  # its descriptor is free
        latecomer = await broker.connect()
        await latecomer.send(f"PUB {refused}\n".encode() + body(b"after"))
        assert (await latecomer.read_frame(timeout=30)).data == b"OK"
        await latecomer.publish("brand-new", b"after")
        await publisher.publish("kept", b"after")
        assert (await consumer.read_message())[3] == b"after"
        metas = [tmp_path / f"{topic}.diskqueue.meta.dat" for topic in published]
        async with httpx.AsyncClient(base_url=f"http://{address.group(1).decode()}") as http:
            with trio.fail_after(30):  # NOK while syncs fail; they are done again on the tick
                while (await http.get("/ping")).text != "OK" or not all(map(Path.exists, metas)):
                    await trio.sleep(0.05)
        assert {meta.read_text() for meta in metas} == {"1\n0,0\n0,31\n"}

        broker.process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await broker.process.wait() == 0
    text = broker.log.decode()
    assert "E_PUB_FAILED" in text
    assert "internal error" not in text
    assert "Traceback" not in text


async def test_a_backlog_it_cannot_read_is_tried_again_on_each_tick_then_delivered(
    tmp_path: Path, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "trinsq")
    async with open_broker(data_path=str(tmp_path), mem_queue_size=0, sync_timeout=0.05) as broker:
        publisher = await connect(broker)
        await publisher.publish("held", b"on disk")  # no channel yet: kept in the topic's queue
        consumer = await connect(broker)
        # Once nsqd.dat and the queue are synced, no thread holds a descriptor that it could
        # give back while they are used up.
        queue_meta, nsqd_dat = tmp_path / "held.diskqueue.meta.dat", tmp_path / "nsqd.dat"
        with trio.fail_after(30):
            while not queue_meta.exists() or b'"held"' not in nsqd_dat.read_bytes():
                await trio.sleep(0.02)
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

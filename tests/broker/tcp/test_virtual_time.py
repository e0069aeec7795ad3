"""Timing behaviour in virtual time: heartbeats, message timeouts, TOUCH, REQ and DPUB delays,
output buffering, at nsqd's real durations (a 60 s msg_timeout, a one-hour DPUB), each test in
a fraction of a second of wall time.

Each test runs under ``MockClock(autojump_threshold=0)`` (pytest-trio's ``autojump_clock``):
trio's clock stands still while any task can run and jumps to the next deadline as soon as
none can. The broker is embedded in the test's own Trio run and its clients talk to it over
in-memory streams (tests/memory.py), so nothing outside the run can move while the clock
jumps, and the times asserted are exact.

What is virtual: everything the broker times with trio's clock, that is every deadline and
duration in the protocol: heartbeats and the two-interval read deadline, the per-write
deadline, in-flight timeouts (msg_timeout, TOUCH, --max-msg-timeout), REQ and DPUB delays,
the output-buffer flush, the storage's --sync-timeout tick; and the tests' own timeouts.

What is not:
- wall-clock stamps: message timestamps (``time.time_ns``, as nsqd stamps them), a client's
  connect time and the broker's start time, and the end-to-end latency windows
  (``time.monotonic``) stay real;
- the disk: the broker still writes its data path (a temporary directory), nsqd.dat included.
  It hands those writes to worker threads, and the clock could jump while a thread runs, so
  here they run on the event loop instead (``run_broker_threads_inline``) and take no virtual
  time. The fixture checks afterwards that nothing else used a thread but the real-time
  watchdog of tests/deadlines.py;
- sockets: the broker still binds its TCP listener on 127.0.0.1 (nobody connects to it), and
  runs with no HTTP server (``http_address=""``), no registries and no statsd, which would
  otherwise do real network I/O while the clock jumps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from tests.memory import BrokerThreads, MemoryClient, run_broker_threads_inline
from tests.support import body
from trinsq import RunningBroker, open_broker
from trinsq.protocol import FrameType

HOUR = 3600.0
MSG_TIMEOUT = 60.0  # nsqd's default --msg-timeout
HEARTBEAT = 30.0  # nsqd's default heartbeat interval


@pytest.fixture(autouse=True)
def broker_threads() -> Iterator[BrokerThreads]:
    with run_broker_threads_inline() as threads:
        yield threads
    assert set(threads.threaded) <= {"Event.wait"}, threads.threaded  # the watchdog only


@asynccontextmanager
async def virtual_broker(**overrides: Any) -> AsyncIterator[RunningBroker]:
    """An embedded broker with nsqd's default timings and nothing that does network I/O."""
    async with open_broker(http_address="", **overrides) as broker:
        yield broker


async def consumer_of(broker: RunningBroker, topic: str, *, lockstep: bool = False) -> MemoryClient:
    client = await MemoryClient.connect(broker, lockstep=lockstep)
    await client.subscribe(topic, "c", rdy=1)
    return client


def elapsed_since(start: float) -> float:
    return trio.current_time() - start


# -- heartbeats ------------------------------------------------------------------------------------


async def test_heartbeats_are_sent_every_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with virtual_broker() as broker:
        client = await MemoryClient.connect(broker)
        start = trio.current_time()
        arrivals = []
        for _ in range(10):
            frame = await client.read_frame(timeout=HEARTBEAT + 1, skip_heartbeats=False)
            assert frame.is_heartbeat, frame
            arrivals.append(elapsed_since(start))
            await client.send(b"NOP\n")
        assert arrivals == pytest.approx([HEARTBEAT * n for n in range(1, 11)])


@pytest.mark.parametrize(
    ("heartbeat_ms", "interval"),
    [(None, HEARTBEAT), (5000, 5.0), (60_000, 60.0)],
    ids=["default", "5s", "max"],
)
async def test_silent_client_is_dropped_after_two_intervals(
    autojump_clock: trio.testing.MockClock, heartbeat_ms: int | None, interval: float
) -> None:
    async with virtual_broker() as broker:
        client = await MemoryClient.connect(broker)
        if heartbeat_ms is not None:
            await client.identify(heartbeat_interval=heartbeat_ms)
        start = trio.current_time()
        heartbeats = []
        while True:
            try:
                frame = await client.read_frame(timeout=3 * interval, skip_heartbeats=False)
            except EOFError:
                break
            assert frame.is_heartbeat, frame
            heartbeats.append(elapsed_since(start))
        # Dropped at exactly two intervals since its last command; the heartbeat due at that
        # same moment goes out first.
        assert elapsed_since(start) == pytest.approx(2 * interval)
        assert heartbeats == pytest.approx([interval, 2 * interval])
        assert not broker.server.clients


async def test_a_body_trickled_in_is_cut_two_intervals_after_its_command_began(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """nsqd sets the read deadline once per command, body included: a client that sends a
    PUB's 1 MiB body one byte every 0.7 s (each byte well within the deadline) is still
    closed two intervals after the command began, with nsqd's error for the unread body."""
    async with virtual_broker() as broker:
        client = await MemoryClient.connect(broker)
        await client.identify(heartbeat_interval=1000)
        start = trio.current_time()
        await client.send(b"PUB slow\n" + (1 << 20).to_bytes(4, "big"))
        sent = 0
        with trio.move_on_after(12):
            while True:
                await trio.sleep(0.7)
                try:
                    await client.send(b"x")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                sent += 1
        frames = []
        while True:
            try:
                frames.append(await client.read_frame(timeout=1, skip_heartbeats=True))
            except EOFError:
                break
        assert not broker.server.clients
        assert sent == 2  # the bytes at 0.7 s and 1.4 s; the deadline fell at 2 s
        assert frames, "no error frame before the close"
        assert frames[-1].frame_type == FrameType.ERROR, frames
        assert frames[-1].data.startswith(b"E_BAD_MESSAGE"), frames[-1]
        assert elapsed_since(start) <= 2.8 + 1


async def test_client_answering_heartbeats_stays_for_an_hour(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with virtual_broker() as broker:
        client = await MemoryClient.connect(broker)
        start = trio.current_time()
        await client.answer_heartbeats_until(start + HOUR)
        await client.publish("still-here", b"x")
        assert len(broker.server.clients) == 1
        assert elapsed_since(start) == pytest.approx(HOUR)


async def test_a_publisher_not_taking_its_answer_is_dropped_after_one_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with virtual_broker() as broker:
        # Lockstep: the broker's write of the OK waits until the client reads, which it never
        # does. The reader writes its answers itself, and each write has one interval.
        client = await MemoryClient.connect(broker, lockstep=True)
        await client.send(b"PUB unread\n" + body(b"x"))
        start = trio.current_time()
        while broker.server.clients:  # virtual seconds: no event tells of a write deadline
            await trio.sleep(0.5)
        assert HEARTBEAT <= elapsed_since(start) <= HEARTBEAT + 0.5
        assert broker.topics["unread"].message_count == 1


# -- in-flight timeouts ----------------------------------------------------------------------------


@pytest.mark.parametrize("lockstep", [False, True], ids=["memory", "lockstep"])
async def test_unfinished_message_is_redelivered_after_msg_timeout(
    autojump_clock: trio.testing.MockClock, lockstep: bool
) -> None:
    async with virtual_broker() as broker:
        consumer = await consumer_of(broker, "to", lockstep=lockstep)
        await consumer.publish("to", b"forgotten")
        _, attempts, first_id, _ = await consumer.next_message(timeout=1)
        delivered = trio.current_time()
        assert attempts == 1
        _, attempts, second_id, data = await consumer.next_message(timeout=2 * MSG_TIMEOUT)
        assert elapsed_since(delivered) == pytest.approx(MSG_TIMEOUT)
        assert (attempts, second_id, data) == (2, first_id, b"forgotten")
        assert broker.topics["to"].channels["c"].timeout_count == 1


async def test_touch_restarts_the_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async with virtual_broker() as broker:
        consumer = await consumer_of(broker, "touch")
        await consumer.publish("touch", b"slow work")
        _, _, message_id, _ = await consumer.next_message(timeout=1)
        delivered = trio.current_time()
        await consumer.answer_heartbeats_until(delivered + 50)
        await consumer.send(b"TOUCH " + message_id + b"\n")
        _, attempts, _, _ = await consumer.next_message(timeout=2 * MSG_TIMEOUT)
        # One msg_timeout after the TOUCH, not after the delivery.
        assert elapsed_since(delivered) == pytest.approx(50 + MSG_TIMEOUT)
        assert attempts == 2


async def test_touch_never_extends_past_max_msg_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with virtual_broker() as broker:  # --max-msg-timeout: 15 minutes
        consumer = await consumer_of(broker, "capped")
        await consumer.publish("capped", b"endless work")
        _, _, message_id, _ = await consumer.next_message(timeout=1)
        delivered = trio.current_time()
        for touch_at in range(50, 900, 50):
            await consumer.answer_heartbeats_until(delivered + touch_at)
            await consumer.send(b"TOUCH " + message_id + b"\n")
        # The last TOUCH (at 850 s) asked for 910 s; the cap is 900 s after delivery.
        _, attempts, _, _ = await consumer.next_message(timeout=2 * MSG_TIMEOUT)
        assert elapsed_since(delivered) == pytest.approx(900)
        assert attempts == 2


# -- REQ and DPUB delays ---------------------------------------------------------------------------


async def test_req_with_a_delay_comes_back_after_the_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with virtual_broker() as broker:
        consumer = await consumer_of(broker, "req")
        await consumer.publish("req", b"try again")
        _, _, message_id, _ = await consumer.next_message(timeout=1)
        requeued = trio.current_time()
        await consumer.send(b"REQ " + message_id + b" 5000\n")
        _, attempts, again_id, _ = await consumer.next_message(timeout=MSG_TIMEOUT)
        assert elapsed_since(requeued) == pytest.approx(5.0)
        assert (attempts, again_id) == (2, message_id)
        assert broker.topics["req"].channels["c"].requeue_count == 1


async def test_req_delay_is_clamped_to_max_req_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with virtual_broker() as broker:  # --max-req-timeout: one hour
        consumer = await consumer_of(broker, "clamp")
        await consumer.publish("clamp", b"m")
        _, _, message_id, _ = await consumer.next_message(timeout=1)
        requeued = trio.current_time()
        await consumer.send(b"REQ " + message_id + b" 7200000\n")  # two hours asked
        _, attempts, _, _ = await consumer.next_message(timeout=3 * HOUR)
        assert elapsed_since(requeued) == pytest.approx(HOUR)
        assert attempts == 2


@pytest.mark.parametrize("lockstep", [False, True], ids=["memory", "lockstep"])
async def test_dpub_of_one_hour_arrives_after_one_hour(
    autojump_clock: trio.testing.MockClock, lockstep: bool
) -> None:
    async with virtual_broker() as broker:
        consumer = await consumer_of(broker, "later", lockstep=lockstep)
        refused = await MemoryClient.connect(broker, lockstep=lockstep)
        await refused.send(b"DPUB later 3600001\n" + body(b"too late"))
        await refused.expect_error(b"E_INVALID DPUB timeout 3600001 out of range 0-3600000")
        await refused.expect_closed()  # a fatal error, as in nsqd
        publisher = await MemoryClient.connect(broker, lockstep=lockstep)
        await publisher.send(b"DPUB later 3600000\n" + body(b"in an hour"))
        await publisher.expect_response(b"OK")
        published = trio.current_time()
        await publisher.publish("later", b"now")
        assert len(broker.topics["later"].channels["c"].deferred) == 1
        _, _, now_id, data = await consumer.next_message(timeout=1)
        assert (data, elapsed_since(published)) == (b"now", 0)
        await consumer.send(b"FIN " + now_id + b"\n")
        _, attempts, _, data = await consumer.next_message(timeout=2 * HOUR)
        assert elapsed_since(published) == pytest.approx(HOUR)
        assert (data, attempts) == (b"in an hour", 1)


# -- output buffering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identify", "rdy", "delay"),
    [
        ({}, 5, 0.25),  # nsqd's default --output-buffer-timeout
        ({"output_buffer_timeout": 500}, 5, 0.5),
        ({"output_buffer_timeout": 5000}, 1, 0.0),  # RDY used up: flushed at once
        ({"output_buffer_size": -1}, 5, 0.0),  # unbuffered
    ],
    ids=["default", "500ms", "rdy-used-up", "unbuffered"],
)
async def test_output_buffer_timeout_holds_messages_while_the_client_is_ready(
    autojump_clock: trio.testing.MockClock, identify: dict[str, int], rdy: int, delay: float
) -> None:
    async with virtual_broker() as broker:
        consumer = await MemoryClient.connect(broker)
        await consumer.identify(**identify)
        await consumer.subscribe("buf", "c", rdy=rdy)
        publisher = await MemoryClient.connect(broker)
        await publisher.publish("buf", b"buffered")
        published = trio.current_time()
        frame = await consumer.next_frame_answering_heartbeats(timeout=10)
        assert frame.frame_type == FrameType.MESSAGE
        assert elapsed_since(published) == pytest.approx(delay)


# -- what ran where --------------------------------------------------------------------------------


async def test_broker_disk_work_ran_on_the_event_loop(
    autojump_clock: trio.testing.MockClock, broker_threads: BrokerThreads
) -> None:
    async with virtual_broker() as broker:
        consumer = await consumer_of(broker, "disk")
        await consumer.publish("disk", b"x")
        await consumer.next_message(timeout=1)
        await trio.sleep(10)  # past a --sync-timeout tick
    # nsqd.dat at start-up and after the topic and channel appeared; nothing in a thread.
    assert broker_threads.inline[0] == "write_initial_metadata"
    assert "write_metadata" in broker_threads.inline


async def test_crash_safe_publish_is_answered_when_its_fsync_is_done(
    autojump_clock: trio.testing.MockClock, broker_threads: BrokerThreads
) -> None:
    """With --sync-every=1 the OK waits for an fsync in a worker thread: were it a real
    thread, the clock would jump while it runs, to the next heartbeat or the test's own
    timeout."""
    async with virtual_broker(sync_every=1) as broker:
        publisher = await MemoryClient.connect(broker)
        start = trio.current_time()
        for number in range(5):
            await publisher.send(b"PUB safe\n" + body(b"%d" % number))
            await publisher.expect_response(b"OK")
        assert elapsed_since(start) == 0
        assert broker.topics["safe"].depth == 5
    assert "_run_jobs" in broker_threads.inline

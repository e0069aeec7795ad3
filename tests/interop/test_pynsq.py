"""The real pynsq Reader and Writer (Tornado) against a trinsq broker.

Each scenario runs pynsq on its own IOLoop in a worker thread (see ``pynsq_harness``) while the
broker serves in the test's Trio run; the scenario returns what the handlers saw and the test
checks that, and the broker's channel counters, exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nsq
import pytest

import trinsq
from tests.interop.pynsq_harness import Delivery, Session, pynsq_against
from trinsq import RunningBroker

pytestmark = pytest.mark.interop

TOPIC = "interop"


def seen(deliveries: list[Delivery]) -> list[tuple[bytes, int]]:
    return [(delivery.body, delivery.attempts) for delivery in deliveries]


def counters(broker: RunningBroker, channel: str, topic: str = TOPIC) -> dict[str, int]:
    """A channel's state once everything is over: what it got, and what is left in it."""
    state = broker.topics[topic].channels[channel]
    return {
        "messages": state.message_count,
        "requeued": state.requeue_count,
        "timed_out": state.timeout_count,
        "depth": state.depth,
        "in_flight": len(state.in_flight),
        "deferred": len(state.deferred),
    }


def settled(messages: int, *, requeued: int = 0, timed_out: int = 0) -> dict[str, int]:
    return {
        "messages": messages,
        "requeued": requeued,
        "timed_out": timed_out,
        "depth": 0,
        "in_flight": 0,
        "deferred": 0,
    }


def drained(broker: RunningBroker, channel: str, topic: str = TOPIC) -> bool:
    """Nothing left queued, in flight or deferred (e.g. every FIN has been handled)."""
    state = broker.topics[topic].channels[channel]
    return state.depth == 0 and not state.in_flight and not state.deferred


# -- 1. publishing --------------------------------------------------------------------------------


async def test_pub_round_trip(broker: RunningBroker) -> None:
    async def scenario(s: Session) -> list[Delivery]:
        got: list[Delivery] = []

        def handler(message: nsq.Message) -> bool:
            s.record(message, got)
            return True

        await s.subscribed(s.reader(TOPIC, "pub", handler))
        writer = await s.writer()
        assert await s.pub(writer, TOPIC, b"hello pynsq") == b"OK"
        await s.until(lambda: len(got) >= 1, what="the message")
        s.broker_until(lambda: drained(broker, "pub"), what="the FIN")
        return got

    async with pynsq_against(broker) as pynsq:
        got = await pynsq.run(scenario)

    assert seen(got) == [(b"hello pynsq", 1)]
    assert len(got[0].id) == 16
    assert abs(got[0].timestamp - time.time_ns()) < 60 * 10**9
    assert counters(broker, "pub") == settled(1)


async def test_mpub_round_trip(broker: RunningBroker) -> None:
    bodies = [b"first", b"second", b"third \x00\xff binary", b"x" * 5000, b"fifth"]

    async def scenario(s: Session) -> list[Delivery]:
        got: list[Delivery] = []

        def handler(message: nsq.Message) -> bool:
            s.record(message, got)
            return True

        await s.subscribed(s.reader(TOPIC, "mpub", handler))
        writer = await s.writer()
        assert await s.mpub(writer, TOPIC, bodies) == b"OK"
        await s.until(lambda: len(got) >= len(bodies), what="every MPUB message")
        s.broker_until(lambda: drained(broker, "mpub"), what="the FINs")
        return got

    async with pynsq_against(broker) as pynsq:
        got = await pynsq.run(scenario)

    # One consumer with RDY 1 sees the batch in order; nothing is missing or extra.
    assert seen(got) == [(body, 1) for body in bodies]
    assert len({delivery.id for delivery in got}) == len(bodies)
    assert counters(broker, "mpub") == settled(len(bodies))


@pytest.mark.slow
async def test_dpub_round_trip(broker: RunningBroker) -> None:
    delay_ms = 1000

    async def scenario(s: Session) -> tuple[float, list[Delivery], int]:
        got: list[Delivery] = []

        def handler(message: nsq.Message) -> bool:
            s.record(message, got)
            return True

        await s.subscribed(s.reader(TOPIC, "dpub", handler))
        writer = await s.writer()
        sent = time.monotonic()
        assert await s.dpub(writer, TOPIC, delay_ms, b"later") == b"OK"
        deferred = s.in_trio(lambda: len(broker.topics[TOPIC].channels["dpub"].deferred))
        # A plain PUB after it overtakes it: the reader was ready all along.
        assert await s.pub(writer, TOPIC, b"now") == b"OK"
        await s.until(lambda: len(got) >= 2, timeout=5.0, what="both messages")
        s.broker_until(lambda: drained(broker, "dpub"), what="the FINs")
        return sent, got, deferred

    async with pynsq_against(broker) as pynsq:
        sent, got, deferred_after_dpub = await pynsq.run(scenario)

    assert deferred_after_dpub == 1
    assert seen(got) == [(b"now", 1), (b"later", 1)]
    waited = got[1].at - sent
    assert 0.9 * delay_ms / 1000 <= waited < delay_ms / 1000 + 2.0, waited
    assert counters(broker, "dpub") == settled(2)


# -- 2. REQ with a delay --------------------------------------------------------------------------


@pytest.mark.slow
async def test_req_with_delay_redelivers_with_attempts_incremented(
    broker: RunningBroker,
) -> None:
    delay = 1  # seconds; pynsq's Message.requeue(delay=) takes whole seconds

    async def scenario(s: Session) -> list[Delivery]:
        got: list[Delivery] = []

        def handler(message: nsq.Message) -> bool | None:
            s.record(message, got)
            if message.attempts == 1:
                message.requeue(delay=delay, backoff=False)
                return None
            return True

        await s.subscribed(s.reader(TOPIC, "req", handler))
        writer = await s.writer()
        assert await s.pub(writer, TOPIC, b"try again") == b"OK"
        await s.until(lambda: len(got) >= 2, what="the redelivery")
        s.broker_until(lambda: drained(broker, "req"), what="the FIN")
        return got

    async with pynsq_against(broker) as pynsq:
        got = await pynsq.run(scenario)

    assert seen(got) == [(b"try again", 1), (b"try again", 2)]
    assert got[0].id == got[1].id
    assert got[0].timestamp == got[1].timestamp
    waited = got[1].at - got[0].at
    assert 0.9 * delay <= waited < delay + 2.0, waited
    assert counters(broker, "req") == settled(1, requeued=1)


# -- 3. msg_timeout -------------------------------------------------------------------------------


@pytest.mark.slow
async def test_unanswered_message_is_redelivered_after_msg_timeout() -> None:
    msg_timeout = 1.0
    async with trinsq.open_broker(msg_timeout=msg_timeout) as broker:

        async def scenario(s: Session) -> list[Delivery]:
            got: list[Delivery] = []

            def handler(message: nsq.Message) -> bool | None:
                s.record(message, got)
                if message.attempts == 1:
                    message.enable_async()  # and never answer it
                    return None
                return True

            await s.subscribed(s.reader(TOPIC, "timeout", handler))
            writer = await s.writer()
            assert await s.pub(writer, TOPIC, b"forgotten") == b"OK"
            await s.until(lambda: len(got) >= 2, what="the redelivery")
            s.broker_until(lambda: drained(broker, "timeout"), what="the FIN")
            return got

        async with pynsq_against(broker) as pynsq:
            got = await pynsq.run(scenario)

        assert seen(got) == [(b"forgotten", 1), (b"forgotten", 2)]
        assert got[0].id == got[1].id
        waited = got[1].at - got[0].at
        assert 0.9 * msg_timeout <= waited < msg_timeout + 2.0, waited
        assert counters(broker, "timeout") == settled(1, timed_out=1)


# -- 4. TOUCH -------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_touch_keeps_a_message_in_flight_past_its_timeout() -> None:
    """Touching every 0.3 s keeps a message 2.5 s past a 1 s msg_timeout: one delivery, no
    timeout, and the broker still has it in flight just before the FIN."""
    msg_timeout = 1.0
    touch_every = 0.3
    hold_for = 2.5
    async with trinsq.open_broker(msg_timeout=msg_timeout) as broker:

        def in_flight() -> list[bytes]:
            return list(broker.topics[TOPIC].channels["touch"].in_flight)

        async def scenario(s: Session) -> tuple[list[Delivery], int, list[bytes]]:
            got: list[Delivery] = []
            messages: list[nsq.Message] = []

            def handler(message: nsq.Message) -> None:
                s.record(message, got)
                messages.append(message)
                message.enable_async()  # keep working on it after the handler returns

            await s.subscribed(s.reader(TOPIC, "touch", handler))
            writer = await s.writer()
            assert await s.pub(writer, TOPIC, b"slow work") == b"OK"
            await s.until(lambda: len(got) >= 1, what="the message")
            touches = 0
            while time.monotonic() - got[0].at < hold_for:
                await asyncio.sleep(touch_every)
                messages[0].touch()
                touches += 1
            # Well past the first deadline, the broker still has it in flight.
            still_in_flight = s.in_trio(in_flight)
            messages[0].finish()
            s.broker_until(lambda: drained(broker, "touch"), what="the FIN")
            return got, touches, still_in_flight

        async with pynsq_against(broker) as pynsq:
            got, touches, still_in_flight = await pynsq.run(scenario)

        assert seen(got) == [(b"slow work", 1)]
        assert still_in_flight == [got[0].id]
        assert touches >= int(hold_for / touch_every) - 1
        assert counters(broker, "touch") == settled(1)


# -- 5 and 6. channels and consumers --------------------------------------------------------------


async def test_every_channel_gets_every_message(broker: RunningBroker) -> None:
    bodies = [b"m%d" % i for i in range(20)]

    async def scenario(s: Session) -> dict[str, list[Delivery]]:
        got: dict[str, list[Delivery]] = {"left": [], "right": []}

        def handler_for(channel: str) -> Callable[[nsq.Message], bool]:
            def handler(message: nsq.Message) -> bool:
                s.record(message, got[channel])
                return True

            return handler

        readers = [s.reader(TOPIC, name, handler_for(name)) for name in got]
        await s.subscribed(*readers)
        writer = await s.writer()
        assert await s.mpub(writer, TOPIC, bodies[:10]) == b"OK"
        for body in bodies[10:]:
            assert await s.pub(writer, TOPIC, body) == b"OK"
        await s.until(
            lambda: all(len(each) >= len(bodies) for each in got.values()),
            what="both channels to get everything",
        )
        s.broker_until(lambda: drained(broker, "left") and drained(broker, "right"))
        return got

    async with pynsq_against(broker) as pynsq:
        got = await pynsq.run(scenario)

    for channel in ("left", "right"):
        assert seen(got[channel]) == [(body, 1) for body in bodies], channel
        assert counters(broker, channel) == settled(len(bodies)), channel
    # The copies are of the same messages.
    assert [d.id for d in got["left"]] == [d.id for d in got["right"]]


async def test_consumers_on_one_channel_split_the_messages(broker: RunningBroker) -> None:
    bodies = {b"job-%03d" % i for i in range(200)}

    async def scenario(s: Session) -> tuple[list[Delivery], list[Delivery]]:
        first: list[Delivery] = []
        second: list[Delivery] = []

        def handler_into(into: list[Delivery]) -> Callable[[nsq.Message], bool]:
            def handler(message: nsq.Message) -> bool:
                s.record(message, into)
                return True

            return handler

        readers = [
            s.reader(TOPIC, "shared", handler_into(into), max_in_flight=10)
            for into in (first, second)
        ]
        await s.subscribed(*readers)
        writer = await s.writer()
        # Pipelined: all 200 PUBs go out before the first reply is read.
        replies = await s.replies([s.publish(writer, "pub", TOPIC, body) for body in bodies])
        assert replies == [b"OK"] * len(bodies)
        await s.until(lambda: len(first) + len(second) >= len(bodies), what="all messages")
        s.broker_until(lambda: drained(broker, "shared"), what="the FINs")
        return first, second

    async with pynsq_against(broker) as pynsq:
        first, second = await pynsq.run(scenario)

    first_bodies = [delivery.body for delivery in first]
    second_bodies = [delivery.body for delivery in second]
    assert len(first_bodies) == len(set(first_bodies))
    assert len(second_bodies) == len(set(second_bodies))
    assert set(first_bodies) | set(second_bodies) == bodies
    assert set(first_bodies) & set(second_bodies) == set()
    assert min(len(first), len(second)) > 0, (len(first), len(second))
    assert {delivery.attempts for delivery in first + second} == {1}
    assert counters(broker, "shared") == settled(len(bodies))


# -- 7. RDY ---------------------------------------------------------------------------------------


async def test_rdy_bounds_unacknowledged_messages(broker: RunningBroker) -> None:
    """max_in_flight=5 (pynsq sends RDY 5): the handler never holds more than 5 unfinished
    messages and does reach 5; the broker's in-flight table, checked after every Trio task
    step, peaks at exactly 5 too."""
    rdy = 5
    total = 40

    async def scenario(s: Session) -> tuple[list[Delivery], list[int]]:
        got: list[Delivery] = []
        held: list[nsq.Message] = []
        outstanding: list[int] = []  # how many were held after each delivery

        def release() -> None:
            for message in held:
                message.finish()
            held.clear()
            s.notify()

        def handler(message: nsq.Message) -> None:
            message.enable_async()
            s.record(message, got)
            held.append(message)
            outstanding.append(len(held))
            # Hold a full window for a moment, so an extra delivery would show up.
            if len(held) == rdy or len(got) == total:
                s.loop.call_later(0.05, release)

        await s.subscribed(s.reader(TOPIC, "rdy", handler, max_in_flight=rdy))
        writer = await s.writer()
        assert await s.mpub(writer, TOPIC, [b"%d" % i for i in range(total)]) == b"OK"
        await s.until(lambda: len(got) >= total and not held, what="every message")
        s.broker_until(lambda: drained(broker, "rdy"), what="the FINs")
        return got, outstanding

    async with pynsq_against(broker) as pynsq:
        pynsq.probe.track_in_flight(TOPIC, "rdy")
        got, outstanding = await pynsq.run(scenario)
        broker_peak = pynsq.probe.in_flight_peaks[(TOPIC, "rdy")]

    assert max(outstanding) == rdy, outstanding
    assert broker_peak == rdy
    assert sorted(delivery.body for delivery in got) == sorted(b"%d" % i for i in range(total))
    assert {delivery.attempts for delivery in got} == {1}
    assert counters(broker, "rdy") == settled(total)

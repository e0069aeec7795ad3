"""The consumer's timing with go-nsq's default durations, in virtual time (MockClock) over
memory streams to a scripted nsqd: minutes of backoff take milliseconds."""

from __future__ import annotations

import json
import random
from collections import deque

import pytest
import trio
import trio.testing

from tests.client.consumers import wait_for
from trinsq.client import BackoffStrategy, ClientConfig, Message, open_consumer
from trinsq.protocol import (
    HEARTBEAT_FRAME,
    NEED_DATA,
    OK_FRAME,
    Finish,
    Identify,
    Limits,
    Ready,
    Requeue,
    Subscribe,
    V2ServerConnection,
    encode_message,
    encode_response,
)

IDENTIFY_REPLY = encode_response(json.dumps({"max_rdy_count": 2500}).encode())


class ScriptedNsqd:
    """One channel's queue behind memory streams: delivers while RDY allows, puts a REQ'd
    message back at the front (delay ignored), forgets a FIN'd one, heartbeats every 30 s, and
    records every RDY with the time it arrived."""

    def __init__(self, nursery: trio.Nursery, bodies: list[bytes]) -> None:
        self._nursery = nursery
        self.queue = deque((b"%016d" % n, body, 1) for n, body in enumerate(bodies))
        self.in_flight: dict[bytes, tuple[bytes, bytes, int]] = {}
        self.rdy: list[tuple[float, int]] = []

    async def open_stream(self, address: str) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        self._nursery.start_soon(self._serve, server)
        return client

    async def _serve(self, stream: trio.abc.Stream) -> None:
        parser = V2ServerConnection(Limits())
        ready = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._heartbeats, stream)
            while data := await stream.receive_some(65536):
                parser.receive_data(data)
                out = bytearray()
                while (command := parser.next_command()) is not NEED_DATA:
                    if isinstance(command, Identify):
                        out += IDENTIFY_REPLY
                    elif isinstance(command, Subscribe):
                        parser.subscribed()
                        out += OK_FRAME
                    elif isinstance(command, Ready):
                        ready = command.count
                        self.rdy.append((trio.current_time(), ready))
                    elif isinstance(command, Finish):
                        del self.in_flight[command.message_id]
                    elif isinstance(command, Requeue):
                        message_id, body, attempts = self.in_flight.pop(command.message_id)
                        self.queue.appendleft((message_id, body, attempts + 1))
                while ready > len(self.in_flight) and self.queue:
                    message_id, body, attempts = self.queue.popleft()
                    self.in_flight[message_id] = (message_id, body, attempts)
                    out += encode_message(0, attempts, message_id, body)
                await stream.send_all(bytes(out))
            nursery.cancel_scope.cancel()

    async def _heartbeats(self, stream: trio.abc.Stream) -> None:
        while True:
            await trio.sleep(30)
            await stream.send_all(HEARTBEAT_FRAME)

    def backoff_waits(self) -> list[float]:
        """The time from each RDY 0 to the RDY 1 that follows it."""
        waits = []
        for (zero_at, zero), (one_at, one) in zip(self.rdy, self.rdy[1:], strict=False):
            if (zero, one) == (0, 1):
                waits.append(one_at - zero_at)
        return waits


async def _consume(nsqd: ScriptedNsqd, config: ClientConfig, count: int, seed: int = 0) -> None:
    """Requeue the message ``poison`` until its 9th attempt, finish everything else."""
    async with open_consumer(
        "t",
        "c",
        nsqd_tcp_addresses=["nsqd:4150"],
        config=config,
        stream_factory=nsqd.open_stream,
        rng=random.Random(seed),
    ) as consumer:
        handled = 0
        async for message in consumer:
            if message.body == b"poison" and message.attempts < 9:
                await message.requeue(delay=0)
            else:
                await message.finish()
                handled += 1
                if handled == count:
                    break


def _messages() -> list[bytes]:
    return [b"poison", *(b"fine %d" % n for n in range(8))]


async def test_go_nsq_default_backoff_doubles_to_the_cap_and_walks_back_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        nsqd = ScriptedNsqd(nursery, _messages())
        # go-nsq's defaults: backoff_multiplier 1 s, max_backoff_duration 2 min.
        await _consume(nsqd, ClientConfig(max_in_flight=4, max_attempts=10), count=9)
        nursery.cancel_scope.cancel()
    counts = [count for _, count in nsqd.rdy]
    assert counts[0] == 4
    # Eight failures: 2 s, 4 s ... 64 s (128 s would pass the 120 s cap, so the level stays).
    # Then each success lowers the level by one: 32 s, 16 s, 8 s, 4 s, 2 s, and RDY 4 again.
    assert nsqd.backoff_waits() == [2, 4, 8, 16, 32, 64, 64, 64, 32, 16, 8, 4, 2]
    assert counts[-1] == 4
    assert set(counts[1:-1]) == {0, 1}


async def test_full_jitter_waits_a_random_share_of_each_level(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        nsqd = ScriptedNsqd(nursery, _messages())
        config = ClientConfig(
            max_in_flight=4, max_attempts=10, backoff_strategy=BackoffStrategy.FULL_JITTER
        )
        await _consume(nsqd, config, count=9, seed=3)
        nursery.cancel_scope.cancel()
    nominal = [2, 4, 8, 16, 32, 64, 64, 64, 32, 16, 8, 4, 2]
    waits = nsqd.backoff_waits()
    assert len(waits) == len(nominal)
    assert all(0 <= wait < cap for wait, cap in zip(waits, nominal, strict=True))
    assert len(set(waits)) == len(waits)


@pytest.mark.parametrize("max_in_flight", [1, 3])
async def test_every_message_is_handled_once_in_virtual_time(
    autojump_clock: trio.testing.MockClock, max_in_flight: int
) -> None:
    bodies = [b"m%d" % n for n in range(50)]
    seen: list[bytes] = []

    async def handler(message: Message) -> None:
        await trio.sleep(1)  # a slow handler: 50 s of work in virtual time
        seen.append(message.body)
        if len(seen) == len(bodies):
            consumer.stop()

    async with trio.open_nursery() as nursery:
        nsqd = ScriptedNsqd(nursery, bodies)
        async with open_consumer(
            "t",
            "c",
            nsqd_tcp_addresses=["nsqd:4150"],
            config=ClientConfig(max_in_flight=max_in_flight),
            stream_factory=nsqd.open_stream,
        ) as consumer:
            await consumer.run(handler, concurrency=4)
        nursery.cancel_scope.cancel()
    assert sorted(seen) == sorted(bodies)
    assert not nsqd.in_flight


async def test_an_async_give_up_hook_runs_before_the_message_is_finished(
    autojump_clock: trio.testing.MockClock,
) -> None:
    given_up: list[tuple[bytes, int, float]] = []

    async def dead_letter(message: Message) -> None:
        await trio.sleep(5)  # e.g. publishing it elsewhere
        assert message.owner.live
        assert not message.responded
        given_up.append((message.body, message.attempts, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nsqd = ScriptedNsqd(nursery, [b"poison", b"fine"])
        config = ClientConfig(max_attempts=2, max_backoff_duration=0)
        async with open_consumer(
            "t",
            "c",
            nsqd_tcp_addresses=["nsqd:4150"],
            config=config,
            stream_factory=nsqd.open_stream,
            on_give_up=dead_letter,
        ) as consumer:
            handed_out = []
            async for message in consumer:
                handed_out.append((message.body, message.attempts))
                if message.body == b"poison":
                    await message.requeue(delay=0)
                else:
                    await message.finish()
                    break
            await wait_for(lambda: not nsqd.in_flight and not nsqd.queue)
            assert consumer.stats.given_up == 1
        nursery.cancel_scope.cancel()
    assert sorted(handed_out) == [(b"fine", 1), (b"poison", 1), (b"poison", 2)]
    assert [(body, attempts) for body, attempts, _ in given_up] == [(b"poison", 3)]

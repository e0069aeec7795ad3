"""``client-sub``: consume throughput of one consumer of each Python NSQ client, side by side.

Issue 14's consumer figure: one consumer with max-in-flight ``--rdy`` (2,500 by default) on one
connection drains a channel pre-filled with ``--messages`` messages, finishing each one, against
the same broker in the same run. Each client runs in its own process, one after another (the
order rotates each round), on its own fresh topic and channel, with its native interface:

- trinsq: ``async for message in consumer`` over ``trinsq.client.open_consumer``, then
  ``await message.finish()``;
- pynsq: Tornado's ``nsq.Reader`` with a handler that returns True (pynsq finishes it);
- gnsq: ``gnsq.Consumer`` with an ``on_message`` handler that finishes it (gevent, nothing
  monkey-patched);
- ansq: ``async for message in reader.messages()``, then ``await message.fin()`` (its RDY
  raised by hand: ansq 0.3.0 keeps 1 per connection).

The clock runs from the moment the consumer is connected to the moment it has finished every
message; the broker must then hold none of them (the channel's depth and in-flight count are
checked). The report gives msg/s per client (the mean over ``--rounds``) and trinsq's ratio to
the fastest of the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from benchmarks._clientrace import race
from benchmarks._common import delete_topic, unique
from benchmarks._procs import Go, Result
from benchmarks._pub import ensure_channel
from benchmarks._report import Report
from benchmarks._target import Target, http_get
from benchmarks._throughput import fill

CLIENTS = ("trinsq", "pynsq", "gnsq", "ansq")


def _address(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def trinsq_consumer(
    go: Go, address: tuple[str, int], topic: str, channel: str, expected: int, rdy: int
) -> Result:
    import trio

    from trinsq.client import ClientConfig, open_consumer

    async def main() -> Result:
        count = 0
        config = ClientConfig(max_in_flight=rdy)
        async with open_consumer(
            topic, channel, nsqd_tcp_addresses=[_address(address)], config=config
        ) as consumer:
            go()
            start = time.monotonic()
            async for message in consumer:
                await message.finish()
                count += 1
                if count >= expected:
                    break
            end = time.monotonic()
        return {"count": count, "start": start, "end": end}

    return trio.run(main)


def pynsq_reader(
    go: Go, address: tuple[str, int], topic: str, channel: str, expected: int, rdy: int
) -> Result:
    import asyncio
    import logging

    import nsq

    async def main() -> Result:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        state = {"count": 0, "start": 0.0}

        def handler(message: object) -> bool:
            state["count"] += 1
            if state["count"] >= expected and not done.done():
                done.set_result(None)
            return True  # pynsq finishes it

        reader = nsq.Reader(
            topic=topic,
            channel=channel,
            message_handler=handler,
            nsqd_tcp_addresses=[_address(address)],
            max_in_flight=rdy,
        )
        # pynsq tells nobody when it has connected: look
        while not any(conn.connected() for conn in reader.conns.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        go()
        start = time.monotonic()
        await done
        end = time.monotonic()
        await asyncio.sleep(0.2)  # the last FINs go out
        logging.getLogger("nsq").setLevel(logging.CRITICAL)  # closing is no error
        reader.close()
        return {"count": int(state["count"]), "start": start, "end": end}

    return asyncio.run(main())


def gnsq_consumer(
    go: Go, address: tuple[str, int], topic: str, channel: str, expected: int, rdy: int
) -> Result:
    import logging

    import gevent
    import gevent.event
    import gnsq

    consumer = gnsq.Consumer(
        topic, channel, nsqd_tcp_addresses=[_address(address)], max_in_flight=rdy
    )
    done = gevent.event.Event()
    counts = [0]

    @consumer.on_message.connect  # type: ignore[untyped-decorator]
    def handler(consumer: object, message: object) -> None:
        message.finish()  # type: ignore[attr-defined]
        counts[0] += 1
        if counts[0] >= expected:
            done.set()

    consumer.start(block=False)
    while not consumer._connections:  # gnsq says nothing when it has connected: look
        gevent.sleep(0.001)
    go()
    start = time.monotonic()
    done.wait()
    end = time.monotonic()
    gevent.sleep(0.2)  # the last FINs go out
    logging.getLogger("gnsq").setLevel(logging.CRITICAL)  # closing is no error
    consumer.close()
    consumer.join(5)
    return {"count": counts[0], "start": start, "end": end}


def ansq_reader(
    go: Go, address: tuple[str, int], topic: str, channel: str, expected: int, rdy: int
) -> Result:
    import asyncio

    import ansq

    async def main() -> Result:
        reader = await ansq.create_reader(
            topic=topic, channel=channel, nsqd_tcp_addresses=[_address(address)]
        )
        # ansq 0.3.0 keeps RDY 1 per connection (its set_max_in_flight is not implemented):
        # raise it as its user would, so that it runs at the same max in flight.
        for connection in reader._connections.values():
            await connection.rdy(rdy)
        go()
        start = time.monotonic()
        count = 0
        async for message in reader.messages():
            await message.fin()
            count += 1
            if count >= expected:
                break
        end = time.monotonic()
        await asyncio.sleep(0.2)  # the last FINs go out
        await reader.close()
        return {"count": count, "start": start, "end": end}

    return asyncio.run(main())


WORKERS = {
    "trinsq": trinsq_consumer,
    "pynsq": pynsq_reader,
    "gnsq": gnsq_consumer,
    "ansq": ansq_reader,
}


def _left_in(target: Target, topic: str, channel: str) -> int | None:
    """Messages the channel still holds (depth + in flight + deferred), or None without HTTP."""
    if target.http is None:
        return None
    stats = json.loads(http_get(target.http, f"/stats?format=json&topic={topic}"))
    for entry in stats.get("topics", []):
        for found in entry.get("channels", []):
            if found.get("channel_name") == channel:
                return int(found["depth"] + found["in_flight_count"] + found["deferred_count"])
    return None


def client_sub(
    target: Target,
    size: int = 200,
    messages: int = 200_000,
    rdy: int = 2500,
    rounds: int = 1,
    clients: Sequence[str] = CLIENTS,
    timeout: float = 300.0,
) -> Report:
    """Each client's consumer in turn, ``rounds`` times: msg/s and trinsq's ratio."""
    report = Report("client-sub")

    def prepare(name: str) -> dict[str, Any]:
        topic, channel = unique(f"client_sub_{name}"), "ch"
        ensure_channel(target.tcp, topic, channel)
        fill(target, topic, messages, procs=1, size=size, batch_size=200)
        return dict(address=target.tcp, topic=topic, channel=channel, expected=messages, rdy=rdy)

    def finish(name: str, kwargs: dict[str, Any]) -> None:
        left = _left_in(target, kwargs["topic"], kwargs["channel"])
        delete_topic(target, kwargs["topic"])
        if left:
            raise RuntimeError(f"{name}: {left} messages still in the channel after the run")

    how = f"max in flight {rdy}, one connection"
    race(report, target, WORKERS, clients, rounds, prepare, finish, timeout, how)
    return report

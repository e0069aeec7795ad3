"""``client-pub``: publish throughput of one producer of each Python NSQ client, side by side.

Issue 14's producer figure: one message per call, many concurrent callers (``--callers``, 1,000
by default) sharing one producer with one connection, against the same broker in the same run.
Each client runs in its own process, one after another (the order rotates each round), on its
own fresh topic, with its native concurrency:

- trinsq: ``trinsq.client`` ``Producer.publish`` from that many Trio tasks;
- pynsq: Tornado's ``nsq.Writer.pub`` with that many callbacks outstanding (each answer sends
  the next);
- gnsq: ``gnsq.Producer.publish`` from that many gevent greenlets (nothing monkey-patched);
- ansq: ``Writer.pub`` from that many asyncio tasks.

Every call waits for its own answer and an error answer fails the run. The report gives msg/s
per client (the mean over ``--rounds``) and trinsq's ratio to the fastest of the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from benchmarks._clientrace import race
from benchmarks._common import delete_topic, unique
from benchmarks._procs import Go, Result
from benchmarks._report import Report
from benchmarks._target import Target

CLIENTS = ("trinsq", "pynsq", "gnsq", "ansq")


def _address(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def trinsq_producer(
    go: Go, address: tuple[str, int], topic: str, size: int, duration: float, callers: int
) -> Result:
    import trio

    from trinsq.client import open_producer

    body = b"a" * size

    async def main() -> Result:
        count = 0
        async with open_producer(_address(address)) as producer:
            await producer.publish(topic, body)  # connected, the topic made
            go()
            start = time.monotonic()
            end_at = start + duration

            async def caller() -> None:
                nonlocal count
                while time.monotonic() < end_at:
                    await producer.publish(topic, body)
                    count += 1

            async with trio.open_nursery() as nursery:
                for _ in range(callers):
                    nursery.start_soon(caller)
            end = time.monotonic()
        return {"count": count, "start": start, "end": end}

    return trio.run(main)


def pynsq_writer(
    go: Go, address: tuple[str, int], topic: str, size: int, duration: float, callers: int
) -> Result:
    import asyncio

    import nsq

    body = b"a" * size

    async def main() -> Result:
        loop = asyncio.get_running_loop()
        writer = nsq.Writer([_address(address)])
        # pynsq's Writer tells nobody when it has connected: look
        while not any(conn.connected() for conn in writer.conns.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        first: asyncio.Future[object] = loop.create_future()
        writer.pub(topic, body, lambda conn, data: first.set_result(data))
        if isinstance(await first, nsq.Error):
            raise RuntimeError(f"pynsq: {first.result()}")
        go()
        start = time.monotonic()
        end_at = start + duration
        done: asyncio.Future[None] = loop.create_future()
        state = {"count": 0, "open": callers}

        def answered(conn: object, data: object) -> None:
            if isinstance(data, nsq.Error):
                if not done.done():
                    done.set_exception(RuntimeError(f"pynsq: {data}"))
                return
            state["count"] += 1
            if time.monotonic() < end_at:
                writer.pub(topic, body, answered)
                return
            state["open"] -= 1
            if state["open"] == 0:
                done.set_result(None)

        for _ in range(callers):
            writer.pub(topic, body, answered)
        await done
        end = time.monotonic()
        logging.getLogger("nsq").setLevel(logging.CRITICAL)  # closing is no error
        for conn in writer.conns.values():
            conn.close()
        return {"count": state["count"], "start": start, "end": end}

    return asyncio.run(main())


def gnsq_producer(
    go: Go, address: tuple[str, int], topic: str, size: int, duration: float, callers: int
) -> Result:
    import gevent
    import gnsq

    body = b"a" * size
    producer = gnsq.Producer([_address(address)])
    producer.start()
    producer.publish(topic, body)  # connected, the topic made
    go()
    start = time.monotonic()
    end_at = start + duration
    counts = [0] * callers

    def caller(index: int) -> None:
        while time.monotonic() < end_at:
            producer.publish(topic, body)
            counts[index] += 1

    greenlets = [gevent.spawn(caller, index) for index in range(callers)]
    gevent.joinall(greenlets, raise_error=True)
    end = time.monotonic()
    logging.getLogger("gnsq").setLevel(logging.CRITICAL)  # closing is no error
    producer.close()
    producer.join(5)
    return {"count": sum(counts), "start": start, "end": end}


def ansq_writer(
    go: Go, address: tuple[str, int], topic: str, size: int, duration: float, callers: int
) -> Result:
    import asyncio

    import ansq

    body = b"a" * size

    async def main() -> Result:
        writer = await ansq.create_writer(nsqd_tcp_addresses=[_address(address)])
        response = await writer.pub(topic, body)  # connected, the topic made
        if response is None or not response.is_ok:
            raise RuntimeError(f"ansq: {response}")
        go()
        start = time.monotonic()
        end_at = start + duration
        count = 0

        async def caller() -> None:
            nonlocal count
            while time.monotonic() < end_at:
                answer = await writer.pub(topic, body)
                if answer is None or not answer.is_ok:
                    raise RuntimeError(f"ansq: {answer}")
                count += 1

        await asyncio.gather(*(caller() for _ in range(callers)))
        end = time.monotonic()
        await writer.close()
        return {"count": count, "start": start, "end": end}

    return asyncio.run(main())


WORKERS = {
    "trinsq": trinsq_producer,
    "pynsq": pynsq_writer,
    "gnsq": gnsq_producer,
    "ansq": ansq_writer,
}


def client_pub(
    target: Target,
    size: int = 200,
    duration: float = 5.0,
    callers: int = 1000,
    rounds: int = 1,
    clients: Sequence[str] = CLIENTS,
) -> Report:
    """Each client's producer in turn, ``rounds`` times: msg/s and trinsq's ratio."""
    report = Report("client-pub")

    def prepare(name: str) -> dict[str, Any]:
        topic = unique(f"client_pub_{name}")
        return dict(address=target.tcp, topic=topic, size=size, duration=duration, callers=callers)

    def finish(name: str, kwargs: dict[str, Any]) -> None:
        delete_topic(target, kwargs["topic"])

    how = f"{callers} callers, one connection"
    race(report, target, WORKERS, clients, rounds, prepare, finish, duration + 120, how)
    return report

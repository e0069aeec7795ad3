"""Helpers for the consumer tests: publishing by hand, waiting on a condition, and a TCP proxy
that records the RDY counts a consumer sends."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Final

import httpx
import trio

from tests.support import RawClient, mpub_body
from trinsq import RunningBroker
from trinsq.client import Consumer

__all__ = ["RdyRecorder", "finish_all", "listed", "publish", "wait_for"]

_RDY: Final = re.compile(rb"RDY (\d+)\n")


async def publish(broker: RunningBroker, topic: str, bodies: list[bytes]) -> None:
    """MPUB ``bodies`` to ``topic`` over a raw connection (independent of the client)."""
    client = await RawClient.connect(broker)
    try:
        for start in range(0, len(bodies), 1000):
            await client.send(f"MPUB {topic}\n".encode() + mpub_body(bodies[start : start + 1000]))
            await client.expect_response(b"OK")
    finally:
        await client.aclose()


async def finish_all(consumer: Consumer, count: int) -> list[bytes]:
    """Take ``count`` messages, finishing each; return their bodies in arrival order."""
    bodies: list[bytes] = []
    async for message in consumer:
        bodies.append(message.body)
        await message.finish()
        if len(bodies) == count:
            break
    return bodies


async def listed(registry: str | None, topic: str, count: int) -> None:
    """Wait until the registry at ``registry`` (HTTP ``host:port``) lists ``count`` producers
    of ``topic`` (a broker registers a new topic in the background)."""
    async with httpx.AsyncClient() as http:
        with trio.fail_after(20):
            while True:
                answer = await http.get(f"http://{registry}/lookup", params={"topic": topic})
                if answer.status_code == 200 and len(answer.json()["producers"]) == count:
                    return
                await trio.sleep(0.02)


class _Until(trio.abc.Instrument):
    def __init__(self, predicate: Callable[[], bool]) -> None:
        self.predicate = predicate
        self.event = trio.Event()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if not self.event.is_set() and _holds(self.predicate):
            self.event.set()


def _holds(predicate: Callable[[], bool]) -> bool:
    try:
        return predicate()
    except LookupError:  # a topic or channel not made yet
        return False


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Return once ``predicate()`` is true, checked now and after every Trio task step (so a
    broker's or consumer's state is seen as soon as it changes, with no polling)."""
    if _holds(predicate):
        return
    probe = _Until(predicate)
    trio.lowlevel.add_instrument(probe)
    try:
        with trio.fail_after(timeout):
            await probe.event.wait()
    finally:
        trio.lowlevel.remove_instrument(probe)


class RdyRecorder:
    """A TCP proxy in front of a broker that records, with the time it passed, each RDY count
    a client sends (clients without snappy/deflate/TLS, whose commands are plain text)."""

    def __init__(self, broker: RunningBroker) -> None:
        self._target = broker.addresses.tcp
        self.rdy: list[tuple[float, int]] = []
        self.address = ""
        self._changed = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        host, port = listeners[0].socket.getsockname()[:2]
        self.address = f"{host}:{port}"
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    def counts(self) -> list[int]:
        return [count for _, count in self.rdy]

    async def wait_counts(self, expected: list[int], timeout: float = 20.0) -> None:
        """Wait until the RDY counts seen so far are ``expected``."""
        with trio.fail_after(timeout):
            while len(self.rdy) < len(expected):
                self._changed = trio.Event()
                await self._changed.wait()
        assert self.counts() == expected

    async def _handle(self, client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream(*self._target)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(self._pump, client, server, record=True))
            nursery.start_soon(partial(self._pump, server, client, record=False))

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream, record: bool) -> None:
        seen = bytearray()
        try:
            while data := await source.receive_some(65536):
                if record:
                    seen += data
                    self._scan(seen)
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(sink)

    def _scan(self, seen: bytearray) -> None:
        end = 0
        for match in _RDY.finditer(seen):
            self.rdy.append((trio.current_time(), int(match.group(1))))
            end = match.end()
            self._changed.set()
        # Keep what may be the start of a command split across reads.
        del seen[: max(end, len(seen) - 16)]

"""JSON nested far too deep, from every source trinsq reads JSON from (issue 13 point 5).

Python's decoder gives up on deep nesting with a RecursionError, which is no ValueError: each
source must still answer as it does for any other malformed JSON, fail only the operation
that read it, and log no traceback.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from tests.registry.test_registry import V1Peer
from tests.support import RawClient, body
from tests.test_rough_edges import log_line
from trinsq import RunningBroker, open_broker, open_registry

DEEP = b"[" * 100_000
PROCESS_TIMEOUT = 60  # seconds; a start-up failure takes well under one even on a busy machine
BAD_IDENTIFY = b"E_BAD_BODY IDENTIFY failed to decode JSON body"


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every logged record that carries a traceback (or a RecursionError in its text)."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.exc_info or "Traceback" in record.getMessage() or "recursion" in record.message
    ]


async def still_serves(broker: RunningBroker) -> None:
    client = await RawClient.connect(broker)
    try:
        await client.publish("alive", b"yes")
    finally:
        await client.aclose()


# -- the broker's own inputs ---------------------------------------------------------------------


async def test_config_put_of_deep_json_is_an_invalid_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with (
        open_broker() as broker,
        httpx.AsyncClient(base_url=f"http://{broker.http_address}") as http,
    ):
        reply = await http.put("/config/nsqlookupd_tcp_addresses", content=DEEP)
        assert (reply.status_code, reply.json()) == (400, {"message": "INVALID_VALUE"})
        assert (await http.get("/config/nsqlookupd_tcp_addresses")).json() == []
        await still_serves(broker)
    assert tracebacks(caplog) == []


async def test_identify_with_deep_json_is_a_bad_body(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with open_broker() as broker:
        client = await RawClient.connect(broker)
        try:
            await client.send(b"IDENTIFY\n" + body(b'{"client_id": ' + DEEP))
            await client.expect_error(BAD_IDENTIFY)
            await client.expect_closed()
        finally:
            await client.aclose()
        await still_serves(broker)
    assert tracebacks(caplog) == []


async def test_registry_identify_with_deep_json_is_a_bad_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with open_registry() as registry:
        peer = await V1Peer.connect(registry)
        try:
            await peer.stream.send_all(b"IDENTIFY\n" + body(DEEP))
            assert await peer.response() == BAD_IDENTIFY
            assert await peer.closed()
        finally:
            await peer.aclose()
        other = await V1Peer.connect(registry)
        try:
            await other.stream.send_all(b"PING\n")
            assert await other.response() == b"OK"
        finally:
            await other.aclose()
    assert tracebacks(caplog) == []


def test_deep_nsqd_dat_is_one_line_at_start_up(tmp_path: Path) -> None:
    metadata = tmp_path / "nsqd.dat"
    metadata.write_bytes(b"[" * 200_000)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "trinsq", "broker", f"--data-path={tmp_path}"),
            *("--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=PROCESS_TIMEOUT,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"trinsq broker: failed to parse metadata in {metadata} - exceeded max depth\n"
    )


async def test_deep_deferred_due_times_are_ignored_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_broker(data_path=str(tmp_path)) as broker:
        await still_serves(broker)
    due = tmp_path / "alive.diskqueue.deferred.json"
    due.write_bytes(DEEP)
    caplog.set_level(logging.INFO)
    async with open_broker(data_path=str(tmp_path)) as broker:
        await still_serves(broker)
    assert f"ignoring unreadable deferred due times in {due} - exceeded max depth" in (
        caplog.messages
    )
    assert tracebacks(caplog) == []


# -- what a registry answers the broker ----------------------------------------------------------


class FakeRegistry:
    """A registry's TCP side (protocol V1) that answers IDENTIFY with ``identify_reply`` and
    everything else with OK, and an HTTP side that answers every GET with ``http_reply``."""

    def __init__(self, identify_reply: bytes, http_reply: bytes = b"{}") -> None:
        self.identify_reply = identify_reply
        self.http_reply = http_reply
        self.tcp_port = 0
        self.http_port = 0
        self.http_requests: list[bytes] = []

    async def serve_tcp(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()

        async def read(count: int) -> bytes | None:
            while len(buffer) < count:
                data = await stream.receive_some(65536)
                if not data:
                    return None
                buffer.extend(data)
            taken = bytes(buffer[:count])
            del buffer[:count]
            return taken

        async def read_line() -> bytes | None:
            while b"\n" not in buffer:
                data = await stream.receive_some(65536)
                if not data:
                    return None
                buffer.extend(data)
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            return line

        async with stream:
            try:
                if await read(4) is None:
                    return
                while (line := await read_line()) is not None:
                    reply = b"OK"
                    if line == b"IDENTIFY":
                        size = await read(4)
                        if size is None or await read(struct.unpack(">i", size)[0]) is None:
                            return
                        reply = self.identify_reply
                    await stream.send_all(body(reply))
            except trio.BrokenResourceError:
                pass  # the broker went away

    async def serve_http(self, stream: trio.SocketStream) -> None:
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request:
                data = await stream.receive_some(65536)
                if not data:
                    return
                request += data
            self.http_requests.append(request.partition(b"\r\n")[0])
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.http_reply)}\r\nConnection: close\r\n\r\n"
            )
            with contextlib.suppress(trio.BrokenResourceError):  # the broker went away
                await stream.send_all(head.encode() + self.http_reply)

    @property
    def tcp_address(self) -> str:
        return f"127.0.0.1:{self.tcp_port}"


@pytest.fixture
async def fake_registry_nursery() -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


async def start(registry: FakeRegistry, nursery: trio.Nursery) -> None:
    serve = partial(trio.serve_tcp, host="127.0.0.1")
    tcp = await nursery.start(serve, registry.serve_tcp, 0)
    http = await nursery.start(serve, registry.serve_http, 0)
    registry.tcp_port = tcp[0].socket.getsockname()[1]
    registry.http_port = http[0].socket.getsockname()[1]


async def test_a_deep_identify_reply_from_a_registry_fails_that_session(
    fake_registry_nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    registry = FakeRegistry(DEEP)
    await start(registry, fake_registry_nursery)
    failed = f"LOOKUPD({registry.tcp_address}): parsing response - "
    with log_line("trinsq.broker", failed) as seen:
        async with open_broker(lookupd_tcp_addresses=[registry.tcp_address]) as broker:
            with trio.fail_after(10):
                await seen.wait()
            await still_serves(broker)
    assert tracebacks(caplog) == []


async def test_a_deep_channels_reply_from_a_registry_fails_that_query(
    fake_registry_nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    registry = FakeRegistry(b"", DEEP)
    await start(registry, fake_registry_nursery)
    registry.identify_reply = (
        b'{"tcp_port":%d,"http_port":%d,"version":"1.3.0","broadcast_address":"127.0.0.1"}'
        % (registry.tcp_port, registry.http_port)
    )
    with log_line("trinsq.broker", "peer info") as identified:
        async with open_broker(lookupd_tcp_addresses=[registry.tcp_address]) as broker:
            with trio.fail_after(10):
                await identified.wait()
            consumer = await RawClient.connect(broker)
            producer = await RawClient.connect(broker)
            try:
                await producer.publish("fresh", b"held until the registries were asked")
                await consumer.subscribe("fresh", "c", rdy=1)
                *_, message = await consumer.read_message(timeout=10)
                assert message == b"held until the registries were asked"
            finally:
                await consumer.aclose()
                await producer.aclose()
    assert registry.http_requests == [b"GET /channels?topic=fresh HTTP/1.1"]
    assert (
        "failed to query nsqlookupd for channels of fresh - "
        f"GET 127.0.0.1:{registry.http_port}/channels?topic=fresh - invalid JSON"
        " - exceeded max depth"
    ) in caplog.messages
    assert tracebacks(caplog) == []

"""`trinsq broker` as a real process: serves, and exits 0 on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio

from tests.support import body, run_broker_process


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_broker_process_serves_and_stops_gracefully(
    stop_signal: signal.Signals, tmp_path: Path
) -> None:
    with trio.fail_after(20):
        async with run_broker_process(f"--data-path={tmp_path}", "--log-level=info") as broker:
            client = await broker.connect()
            await client.send(b"PUB cli\n" + body(b"hello"))
            await client.expect_response(b"OK")
            await client.aclose()
            broker.process.send_signal(stop_signal)
            assert await broker.wait() == 0
            assert b"shutting down" in broker.log
    # The published message was saved at exit, in nsqd's layout.
    assert (tmp_path / "nsqd.dat").exists()
    assert (tmp_path / "cli.diskqueue.meta.dat").read_bytes().startswith(b"1\n")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_registry_process_serves_and_stops_gracefully(stop_signal: signal.Signals) -> None:
    with trio.fail_after(20):
        async with run_broker_process(command="registry") as registry:
            stream = await trio.open_tcp_stream("127.0.0.1", registry.port)
            await stream.send_all(b"  V1PING\n")
            with trio.fail_after(5):
                reply = b""
                while len(reply) < 6:
                    reply += await stream.receive_some(6 - len(reply))
            assert reply == b"\x00\x00\x00\x02OK"
            await stream.aclose()
            registry.process.send_signal(stop_signal)
            assert await registry.wait() == 0
            assert b"shutting down" in registry.log


async def test_registry_exits_promptly_after_its_http_stack_was_loaded() -> None:
    """A request the fast lane does not serve loads hypercorn and quart; their teardown
    once held the exit back by 0.3-4 s after "shutting down". The bound is loose (a busy
    machine); the last log line must still reach the log."""
    with trio.fail_after(30):
        async with run_broker_process(command="registry") as registry:
            assert registry.http_port is not None
            stream = await trio.open_tcp_stream("127.0.0.1", registry.http_port)
            await stream.send_all(b"GET /no-such-page HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += await stream.receive_some(4096)
            assert reply.startswith(b"HTTP/1.1 404")
            await stream.aclose()
            registry.process.send_signal(signal.SIGTERM)
            started = trio.current_time()
            assert await registry.wait() == 0
            assert trio.current_time() - started < 10
            assert registry.log.rstrip().endswith(b"shutting down")

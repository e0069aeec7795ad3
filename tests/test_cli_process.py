"""`trinsq broker` as a real process: serves, and exits 0 on SIGTERM and SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from .support import RawClient, body

LISTENING = re.compile(rb"TCP: listening on 127\.0\.0\.1:(\d+)")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_broker_process_serves_and_stops_gracefully(
    stop_signal: signal.Signals, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "trinsq",
        "broker",
        f"--data-path={tmp_path}",
        "--tcp-address=127.0.0.1:0",
        "--http-address=127.0.0.1:0",
        "--log-level=info",
    ]
    with trio.fail_after(20):
        process = await trio.lowlevel.open_process(command, stderr=subprocess.PIPE)
        assert process.stderr is not None
        try:
            log = bytearray()
            while (match := LISTENING.search(log)) is None:
                chunk = await process.stderr.receive_some(4096)
                assert chunk, f"broker exited early: {log.decode()}"
                log += chunk
            stream = await trio.open_tcp_stream("127.0.0.1", int(match.group(1)))
            client = RawClient(stream)
            await client.send(b"  V2PUB cli\n" + body(b"hello"))
            await client.expect_response(b"OK")
            await client.aclose()
            process.send_signal(stop_signal)
            assert await process.wait() == 0
            async for chunk in process.stderr:
                log += chunk
            assert b"shutting down" in log
            # The published message was saved at exit, in nsqd's layout.
            assert (tmp_path / "nsqd.dat").exists()
            assert (tmp_path / "cli.diskqueue.meta.dat").read_bytes().startswith(b"1\n")
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stderr.aclose()

"""A broker in a process of its own, for test suites that are not Trio: plain pytest, pynsq
(Tornado), gnsq (gevent), ansq (asyncio).

``python -m trinsq broker`` is started on 127.0.0.1 with OS-chosen ports (``:0``) and a
temporary data directory; the ports it bound are read from its own log lines (``TCP: listening
on ...``, ``HTTP: listening on ...``). :meth:`BrokerProcess.empty` deletes every topic through
the HTTP API, so one process serves a whole test session with a clean broker for each test.
Synchronous throughout (subprocess and urllib): usable from any test, whatever its event loop.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import IO, Final

import attrs

__all__ = ["BrokerProcess", "start_broker_process"]

_LISTENING: Final = re.compile(rb"INFO: (TCP|HTTP): listening on (\S+)")
START_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 30.0


@attrs.define(eq=False)
class BrokerProcess:
    """A running ``trinsq broker`` process.

    Attributes:
        tcp_address: ``host:port`` for NSQ clients (``nsqd_tcp_addresses``).
        http_address: ``host:port`` of its HTTP API.
        process: the process (its ``pid``, ``returncode``).
        data_path: its data directory (removed by :meth:`stop`).
    """

    tcp_address: str
    http_address: str
    process: subprocess.Popen[bytes]
    data_path: str
    _log: IO[bytes]

    def _http(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(f"http://{self.http_address}{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body: bytes = response.read()
            return body

    def topics(self) -> list[str]:
        """The names of the broker's topics (from ``/stats``)."""
        stats = json.loads(self._http("GET", "/stats?format=json&include_clients=false"))
        return [topic["topic_name"] for topic in stats.get("topics", [])]

    def empty(self) -> None:
        """Delete every topic (and so every channel and message): a clean broker for the next
        test, as a fresh one would be."""
        for topic in self.topics():
            query = urllib.parse.urlencode({"topic": topic})
            self._http("POST", f"/topic/delete?{query}")

    def stop(self) -> int:
        """SIGTERM, as a service manager stops nsqd, then wait; returns the exit status (0 for
        a clean stop) and removes the data directory."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(STOP_TIMEOUT)
        finally:
            self._log.close()
            shutil.rmtree(self.data_path, ignore_errors=True)
        return self.process.returncode


def start_broker_process(
    args: Sequence[str] = (), *, python: str = sys.executable
) -> BrokerProcess:
    """Start ``python -m trinsq broker`` with ``args`` (extra flags, e.g. ``--msg-timeout=5s``)
    on 127.0.0.1 with OS-chosen ports, and return it once it listens.

    Raises:
        RuntimeError: it exited, or did not listen within ``START_TIMEOUT``; the message has
            the end of its log.
    """
    data_path = tempfile.mkdtemp(prefix="trinsq-test-broker-")
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the BrokerProcess owns it; stop() closes it
    command = [
        python,
        "-m",
        "trinsq",
        "broker",
        "--tcp-address=127.0.0.1:0",
        "--http-address=127.0.0.1:0",
        "--broadcast-address=127.0.0.1",
        f"--data-path={data_path}",
        *args,
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        addresses = _wait_listening(process, log)
    except BaseException:
        process.kill()
        process.wait()
        log.close()
        shutil.rmtree(data_path, ignore_errors=True)
        raise
    return BrokerProcess(addresses["TCP"], addresses["HTTP"], process, data_path, log)


def _wait_listening(process: subprocess.Popen[bytes], log: IO[bytes]) -> dict[str, str]:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        log.seek(0)
        text = log.read()
        found = {kind.decode(): address.decode() for kind, address in _LISTENING.findall(text)}
        if "TCP" in found and "HTTP" in found:
            return found
        if process.poll() is not None or time.monotonic() > deadline:
            tail = text[-2000:].decode(errors="replace")
            state = (
                f"exited with status {process.returncode}"
                if process.poll() is not None
                else (f"did not listen within {START_TIMEOUT:g} s")
            )
            raise RuntimeError(f"trinsq broker {state}:{os.linesep}{tail}")
        time.sleep(0.02)  # a child's log has no event to wait on from a synchronous caller

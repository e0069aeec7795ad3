"""Test helpers: a raw protocol-V2 client that reads and writes exact bytes."""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Generic, TypeVar

import trio

from trinsq import RunningBroker
from trinsq.protocol import Frame, FrameDecoder, FrameType

__all__ = [
    "BrokerProcess",
    "RawClient",
    "StreamClient",
    "body",
    "descriptors_used_up",
    "mpub_body",
    "run_broker_process",
    "run_trinsq",
    "unused_port",
]

_LISTENING = re.compile(rb"TCP: listening on 127\.0\.0\.1:(\d+)")
_HTTP_LISTENING = re.compile(rb"HTTP: listening on 127\.0\.0\.1:(\d+)")


def unused_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released): connecting is refused."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port: int = closed.getsockname()[1]
    return port


async def run_trinsq(
    *args: str, stdin: bytes = b"", timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``python -m trinsq <args>`` to its end, ``stdin`` fed in, its output captured."""
    with trio.fail_after(timeout):
        return await trio.run_process(
            [sys.executable, "-m", "trinsq", *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=None if env is None else {**os.environ, **env},
        )


def body(data: bytes) -> bytes:
    """``[int32 size][data]`` as PUB, DPUB, IDENTIFY and AUTH carry it."""
    return struct.pack(">i", len(data)) + data


def mpub_body(messages: list[bytes]) -> bytes:
    """The MPUB body: ``[int32 size][int32 count]([int32 size][bytes])*``."""
    inner = struct.pack(">i", len(messages)) + b"".join(body(m) for m in messages)
    return body(inner)


StreamT = TypeVar("StreamT", bound=trio.abc.Stream)


class StreamClient(Generic[StreamT]):
    """Speaks V2 by hand over any byte stream, for byte-exact tests (tests/memory.py opens
    one over an in-memory stream)."""

    def __init__(self, stream: StreamT) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()
        self.raw_received = bytearray()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def identify(self, **fields: object) -> Frame:
        """IDENTIFY with feature negotiation and return the reply frame."""
        fields.setdefault("feature_negotiation", True)
        await self.send(b"IDENTIFY\n" + body(json.dumps(fields).encode()))
        return await self.read_frame()

    async def read_frame(self, timeout: float = 5.0, *, skip_heartbeats: bool = True) -> Frame:
        """Return the next frame (by default skipping heartbeats)."""
        with trio.fail_after(timeout):
            while True:
                frame = self.decoder.next_frame()
                if frame is not None:
                    if skip_heartbeats and frame.is_heartbeat:
                        continue
                    return frame
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError("connection closed before a frame arrived")
                self.raw_received += data
                self.decoder.feed(bytes(data))

    async def read_raw(self, count: int, timeout: float = 5.0) -> bytes:
        """Return exactly the next ``count`` bytes off the wire, unparsed."""
        buffered = bytearray()
        with trio.fail_after(timeout):
            while len(buffered) < count:
                data = await self.stream.receive_some(count - len(buffered))
                if not data:
                    raise EOFError(f"closed after {len(buffered)} of {count} bytes")
                buffered += data
        return bytes(buffered)

    async def expect_response(self, data: bytes) -> None:
        frame = await self.read_frame()
        assert (frame.frame_type, frame.data) == (FrameType.RESPONSE, data)

    async def expect_error(self, data: bytes) -> None:
        frame = await self.read_frame()
        assert (frame.frame_type, frame.data) == (FrameType.ERROR, data)

    async def expect_closed(self, timeout: float = 5.0) -> None:
        """Assert the server closes the connection with nothing more sent."""
        with trio.fail_after(timeout):
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                return
        assert data == b"", f"expected close, got {data!r}"

    async def read_message(self, timeout: float = 5.0) -> tuple[int, int, bytes, bytes]:
        """Return the next message frame as (timestamp_ns, attempts, id, body)."""
        frame = await self.read_frame(timeout)
        assert frame.frame_type == FrameType.MESSAGE, frame
        return frame.message_fields()

    async def subscribe(self, topic: str, channel: str, rdy: int | None = None) -> None:
        await self.send(f"SUB {topic} {channel}\n".encode())
        await self.expect_response(b"OK")
        if rdy is not None:
            await self.send(f"RDY {rdy}\n".encode())

    async def publish(self, topic: str, data: bytes) -> None:
        await self.send(f"PUB {topic}\n".encode() + body(data))
        await self.expect_response(b"OK")

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


class RawClient(StreamClient[trio.SocketStream]):
    """A plain TCP connection speaking V2 by hand."""

    @classmethod
    async def connect(cls, broker: RunningBroker, *, magic: bytes = b"  V2") -> RawClient:
        host, port = broker.addresses.tcp
        client = cls(await trio.open_tcp_stream(host, port))
        if magic:
            await client.send(magic)
        return client


class BrokerProcess:
    """A ``trinsq broker`` child process and what it logged."""

    def __init__(self, process: trio.Process, port: int, log: bytearray) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.clients: list[RawClient] = []

    async def connect(self) -> RawClient:
        """A raw V2 client, closed when the process context ends."""
        client = RawClient(await trio.open_tcp_stream("127.0.0.1", self.port))
        self.clients.append(client)
        await client.send(b"  V2")
        return client

    @property
    def http_port(self) -> int | None:
        """The HTTP port it logged it listens on (both are logged before TCP's)."""
        match = _HTTP_LISTENING.search(self.log)
        return None if match is None else int(match.group(1))

    async def wait(self) -> int:
        """Wait for the exit and collect the rest of the log."""
        status = await self.process.wait()
        assert self.process.stderr is not None
        async for chunk in self.process.stderr:
            self.log += chunk
        return status


@asynccontextmanager
async def run_broker_process(
    *flags: str, command: str = "broker", preexec_fn: Callable[[], object] | None = None
) -> AsyncIterator[BrokerProcess]:
    """Start ``python -m trinsq broker`` (or another ``command``) on OS-chosen ports with
    ``flags``; kill it on exit if it is still running. ``preexec_fn`` runs in the child
    before it starts Python (e.g. to lower a resource limit)."""
    command_line = [
        sys.executable, "-m", "trinsq", command,
        "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", *flags,
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(
        command_line, stderr=subprocess.PIPE, preexec_fn=preexec_fn
    )
    assert process.stderr is not None
    try:
        log = bytearray()
        with trio.fail_after(20):
            while (match := _LISTENING.search(log)) is None:
                chunk = await process.stderr.receive_some(4096)
                assert chunk, f"broker exited early: {log.decode()}"
                log += chunk
        broker = BrokerProcess(process, int(match.group(1)), log)
        try:
            yield broker
        finally:
            for client in broker.clients:
                await client.aclose()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.stderr.aclose()


@contextmanager
def descriptors_used_up() -> Iterator[None]:
    """While inside, this process can open no file descriptor (EMFILE): its soft
    RLIMIT_NOFILE is lowered to a little above what is open and the rest taken by sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hog: list[socket.socket] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
        assert _open_sockets_until_refused(hog) == errno.EMFILE
        yield
    finally:
        for sock in hog:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _open_sockets_until_refused(hog: list[socket.socket]) -> int | None:
    """Open sockets into ``hog`` until the process may open no more; return the errno."""
    while True:
        try:
            hog.append(socket.socket())
        except OSError as error:
            return error.errno

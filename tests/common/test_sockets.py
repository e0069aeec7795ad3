"""The socket stream and listener of common/_sockets.py: trio's stream contract, and the
accept loop's handling of a process out of descriptors."""

from __future__ import annotations

import contextlib
import resource
import socket
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from tests.support import descriptors_used_up
from trinsq.common._sockets import (
    SocketStream,
    TcpListener,
    open_tcp_listeners,
    serve_tcp_listeners,
)


class _CheckpointingStream(SocketStream):
    """The stream with trio's checkpoint-per-call rule added back, the one rule SocketStream
    leaves out on purpose, so trio's checker can test everything else."""

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await super().receive_some(max_bytes)
        await trio.lowlevel.checkpoint()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await super().send_all(data)
        await trio.lowlevel.checkpoint()


async def _stream_pair() -> tuple[SocketStream, SocketStream]:
    left, right = socket.socketpair()
    return SocketStream(left), SocketStream(right)


async def _checkpointing_pair() -> tuple[SocketStream, SocketStream]:
    left, right = socket.socketpair()
    return _CheckpointingStream(left), _CheckpointingStream(right)


async def _clogged_pair() -> tuple[SocketStream, SocketStream]:
    left, right = await _checkpointing_pair()
    # Both directions full: the next send blocks until the other side reads.
    for stream in (left, right):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        with contextlib.suppress(BlockingIOError):
            while True:
                stream.socket.send(b"x" * 10000)
    return left, right


async def test_socket_stream_keeps_trios_stream_contract() -> None:
    await trio.testing.check_half_closeable_stream(_checkpointing_pair, _clogged_pair)


async def _turns_of_others_during(work: Callable[[], Awaitable[None]]) -> int:
    """How many times another task ran while ``work`` ran (it never waits on purpose)."""
    others_ran = 0

    async def other() -> None:
        nonlocal others_ran
        while True:
            others_ran += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await trio.lowlevel.checkpoint()  # it starts
        before = others_ran
        await work()
        nursery.cancel_scope.cancel()
    return others_ran - before


async def test_receive_passes_a_checkpoint_when_data_keeps_coming() -> None:
    """A stream that always finds data ready still lets other tasks run."""
    left, right = await _stream_pair()

    async def receive_ready_data() -> None:
        for _ in range(20):
            right.socket.send(b"x")
            assert await left.receive_some(10) == b"x"

    assert await _turns_of_others_during(receive_ready_data) >= 5
    await left.aclose()
    await right.aclose()


async def test_sends_pass_a_checkpoint_when_the_receiver_never_waits() -> None:
    left, right = await _stream_pair()

    async def send_without_waiting() -> None:
        for _ in range(40):
            await left.send_all(b"x")

    assert await _turns_of_others_during(send_without_waiting) >= 5
    assert right.socket.recv(100) == b"x" * 40
    await left.aclose()
    await right.aclose()


async def test_send_and_receive_on_a_closed_stream_raise_closed() -> None:
    left, right = await _stream_pair()
    await left.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await left.send_all(b"x")
    with pytest.raises(trio.ClosedResourceError):
        await left.receive_some(1)
    await right.aclose()


async def test_a_peer_reset_is_a_broken_stream() -> None:
    listeners = await open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    await client.aclose()  # RST, not FIN
    with pytest.raises(trio.BrokenResourceError):
        await server.receive_some(10)
    await server.aclose()
    await listeners[0].aclose()


async def _echo(stream: SocketStream) -> None:
    while data := await stream.receive_some():
        await stream.send_all(data)


async def test_serve_tcp_listeners_serves_each_connection() -> None:
    listeners = await open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve_tcp_listeners(
                _echo, listeners, handler_nursery=nursery, task_status=task_status
            )
        )
        clients = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(100)]
        for number, client in enumerate(clients):
            await client.send_all(b"%d" % number)
        for number, client in enumerate(clients):
            assert await client.receive_some() == b"%d" % number
            await client.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_NOFILE"), reason="needs RLIMIT_NOFILE")
async def test_out_of_descriptors_the_accept_loop_waits_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """EMFILE from accept(2) is logged and retried; connections are served once descriptors
    free up, as Go's servers do."""
    listeners = await open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve_tcp_listeners(
                _echo, listeners, handler_nursery=nursery, task_status=task_status
            )
        )
        client = socket.socket()
        client.setblocking(False)
        # Use up every descriptor, then let the client (made before) connect: the kernel
        # completes the handshake, but accept(2) fails with EMFILE until some are freed.
        with descriptors_used_up():
            with pytest.raises(BlockingIOError):
                client.connect(("127.0.0.1", port))
            while "EMFILE" not in caplog.text:
                await trio.sleep(0.05)
        stream = SocketStream(client)
        await stream.send_all(b"still serving")
        assert await stream.receive_some() == b"still serving"
        await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_listener_accept_returns_a_stream() -> None:
    listener = TcpListener(socket.create_server(("127.0.0.1", 0)))
    port = listener.socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listener.accept()
    await client.send_all(b"hi")
    assert await server.receive_some() == b"hi"
    await server.aclose()
    await client.aclose()
    await listener.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await listener.accept()

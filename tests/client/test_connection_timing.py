"""A client connection's deadlines in virtual time (trio's MockClock), over memory streams
with a scripted server: read_timeout, heartbeats over minutes, write_timeout, and a setup
that never gets its answer. Each takes virtual minutes and real milliseconds."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from trinsq.client import ClientConfig, ConnectError
from trinsq.client._connection import open_connection
from trinsq.client._protocol import Event, encode_pub
from trinsq.protocol import (
    HEARTBEAT_FRAME,
    NEED_DATA,
    Command,
    Identify,
    Limits,
    Nop,
    V2ServerConnection,
    encode_response,
)

IDENTIFY_REPLY = json.dumps({"max_rdy_count": 2500, "version": "1.3.0"}).encode()


class ScriptedServer:
    """The server end of a memory stream: parses what the client sends with the broker's
    own parser."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.parser = V2ServerConnection(Limits())

    async def command(self) -> Command:
        while (command := self.parser.next_command()) is NEED_DATA:
            data = await self.stream.receive_some(65536)
            assert data, "the client closed the connection"
            self.parser.receive_data(data)
        assert not isinstance(command, type(NEED_DATA))
        return command  # type: ignore[return-value]

    async def identify(self) -> None:
        assert isinstance(await self.command(), Identify)
        await self.stream.send_all(encode_response(IDENTIFY_REPLY))


def ignore(event: Event) -> None:
    pass


async def test_silence_past_read_timeout_ends_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, server_end = trio.testing.memory_stream_pair()
    server = ScriptedServer(server_end)
    config = ClientConfig(read_timeout=60, heartbeat_interval=30)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.identify)
        async with open_connection("nsqd:4150", config, ignore, stream=client) as conn:
            start = trio.current_time()
            error = await conn.wait_closed()
            assert error is not None
            assert "read_timeout" in str(error)
            assert trio.current_time() - start == pytest.approx(60, abs=0.01)


async def test_heartbeats_for_minutes_are_answered_and_keep_it_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, server_end = trio.testing.memory_stream_pair()
    server = ScriptedServer(server_end)
    config = ClientConfig(read_timeout=60, heartbeat_interval=30)
    answered = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.identify)
        async with open_connection("nsqd:4150", config, ignore, stream=client) as conn:
            for _ in range(10):  # five minutes, five read_timeouts
                await trio.sleep(30)
                await server_end.send_all(HEARTBEAT_FRAME)
                assert isinstance(await server.command(), Nop)
                answered += 1
            assert not conn.closed
            assert conn.heartbeats == answered == 10


async def test_a_write_that_cannot_finish_ends_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, server_end = trio.testing.lockstep_stream_pair()  # a send waits for the reader
    server = ScriptedServer(server_end)
    config = ClientConfig(write_timeout=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.identify)
        async with open_connection("nsqd:4150", config, ignore, stream=client) as conn:
            start = trio.current_time()
            conn.send_nowait(encode_pub("t", b"nobody reads this"))  # the server stopped reading
            error = await conn.wait_closed()
            assert error is not None
            assert "write_timeout" in str(error)
            assert trio.current_time() - start == pytest.approx(2, abs=0.01)


@pytest.mark.parametrize("answer", [None, b"garbage that is not a frame header"])
async def test_setup_without_an_answer_times_out(
    autojump_clock: trio.testing.MockClock, answer: Any
) -> None:
    client, server_end = trio.testing.memory_stream_pair()
    server = ScriptedServer(server_end)

    async def stay_silent() -> None:
        await server.command()
        if answer is not None:
            await server_end.send_all(answer)

    config = ClientConfig(read_timeout=10, heartbeat_interval=5)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stay_silent)
        start = trio.current_time()
        with pytest.raises(ConnectError, match="timed out" if answer is None else "invalid frame"):
            async with open_connection("nsqd:4150", config, ignore, stream=client):
                pass  # pragma: no cover
        if answer is None:
            assert trio.current_time() - start == pytest.approx(10, abs=0.01)

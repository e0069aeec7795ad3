"""``trinsq pub``'s run (publish_stream) in-process, against trinsq's broker: stdin from a
memory stream, signals from a channel the test owns."""

from __future__ import annotations

import errno

import pytest
import trio
import trio.testing

from tests.client.support import fake_nsqd
from tests.tools.pub.support import TOPIC, received
from trinsq import open_broker
from trinsq.tools.pub import PubOptions, publish_stream


def _options(*addresses: str, **values: object) -> PubOptions:
    return PubOptions(topic=TOPIC, nsqd_tcp_address=list(addresses), **values)  # type: ignore[arg-type]


async def test_a_signal_stops_reading_whole_pieces_read_are_published() -> None:
    send_signal, signals = trio.open_memory_channel[int](1)
    writer, stdin = trio.testing.memory_stream_one_way_pair()
    async with open_broker() as broker, received(broker) as got:
        options = _options(broker.tcp_address)
        async with trio.open_nursery() as nursery:
            status: list[int] = []

            async def run() -> None:
                status.append(
                    await publish_stream(options, options.client_config(), stdin, signals)
                )

            nursery.start_soon(run)
            await writer.send_all(b"one\ntwo\npart")
            assert await got.bodies(2) == [b"one", b"two"]
            await send_signal.send(2)  # SIGINT, while it waits for more input
        assert status == [0]
        await got.nothing_else()  # "part" was never finished by a delimiter


async def test_end_of_input_publishes_the_last_piece_and_exits_0() -> None:
    writer, stdin = trio.testing.memory_stream_one_way_pair()
    async with open_broker() as broker, received(broker) as got:
        options = _options(broker.tcp_address, delimiter="|")
        await writer.send_all(b"a|b||c")
        await writer.aclose()
        assert await publish_stream(options, options.client_config(), stdin) == 0
        assert await got.bodies(3) == [b"a", b"b", b"c"]
        await got.nothing_else()


async def test_a_second_signal_gives_up_on_a_publish_that_hangs() -> None:
    send_signal, signals = trio.open_memory_channel[int](2)
    writer, stdin = trio.testing.memory_stream_one_way_pair()
    # an nsqd that reads the PUB and never answers it
    async with fake_nsqd([], after=1, close=False) as nsqd:
        options = _options(nsqd.address)
        status: list[int] = []
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                status.append(
                    await publish_stream(options, options.client_config(), stdin, signals)
                )

            nursery.start_soon(run)
            await writer.send_all(b"stuck\n")
            while not nsqd.commands:
                await nsqd.received.wait()
            await send_signal.send(15)
            await trio.testing.wait_all_tasks_blocked()
            assert status == []  # the first signal waits for what was read
            await send_signal.send(15)
        assert status == [1]


class _FailingStdin(trio.abc.ReceiveStream):
    """Reads fail as a terminal that went away does."""

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        raise trio.BrokenResourceError from OSError(errno.EIO, "Input/output error")

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_an_unreadable_stdin_is_a_fatal_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    async with open_broker() as broker:
        options = _options(broker.tcp_address)
        assert await publish_stream(options, options.client_config(), _FailingStdin()) == 1
    assert capsys.readouterr().err.endswith(" read /dev/stdin: input/output error\n")

"""The consumer against a fake nsqd that misbehaves, and registries that fail."""

from __future__ import annotations

import struct
from functools import partial

import trio

from tests.client.consumers import listed, publish, wait_for
from trinsq import open_broker, open_registry
from trinsq.client import ClientConfig, open_consumer
from trinsq.protocol import OK_FRAME, encode_message


class FakeNsqd:
    """Answers IDENTIFY (without feature negotiation) and SUB with OK, then sends
    ``messages`` message frames as soon as it reads a RDY, whatever its count."""

    def __init__(self, messages: int) -> None:
        self.messages = messages
        self.commands: list[bytes] = []
        self.closed_by_client = trio.Event()

    async def handle(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()

        async def line() -> bytes:
            while b"\n" not in buffer:
                data = await stream.receive_some(4096)
                if not data:
                    raise EOFError
                buffer.extend(data)
            end = buffer.index(b"\n")
            command = bytes(buffer[:end])
            del buffer[: end + 1]
            return command

        async def skip(count: int) -> bytes:
            while len(buffer) < count:
                buffer.extend(await stream.receive_some(4096))
            taken = bytes(buffer[:count])
            del buffer[:count]
            return taken

        try:
            await skip(4)  # magic
            while True:
                command = await line()
                self.commands.append(command)
                if command == b"IDENTIFY":
                    (size,) = struct.unpack(">i", await skip(4))
                    await skip(size)
                    await stream.send_all(OK_FRAME)
                elif command.startswith(b"SUB "):
                    await stream.send_all(OK_FRAME)
                elif command.startswith(b"RDY ") and command != b"RDY 0":
                    await stream.send_all(
                        b"".join(
                            encode_message(0, 1, b"%016d" % n, b"body %d" % n)
                            for n in range(self.messages)
                        )
                    )
        except EOFError:
            self.closed_by_client.set()


async def test_a_server_sending_more_than_rdy_allows_is_dropped() -> None:
    fake = FakeNsqd(messages=5)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, fake.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        config = ClientConfig(max_in_flight=2, lookupd_poll_interval=60)
        async with open_consumer(
            "t", "c", nsqd_tcp_addresses=[f"127.0.0.1:{port}"], config=config
        ) as consumer:
            with trio.fail_after(20):
                await fake.closed_by_client.wait()
            await wait_for(lambda: consumer.stats.connections == 0)
            assert consumer.stats.received == 2
        assert fake.commands[-1] == b"RDY 2"
        nursery.cancel_scope.cancel()


async def test_a_poll_asks_the_next_registry_when_one_fails() -> None:
    async with open_registry() as gone:
        dead = gone.http_address
    assert dead is not None
    async with (
        open_registry() as registry,
        open_broker(lookupd_tcp_addresses=[registry.tcp_address]) as broker,
    ):
        assert registry.http_address is not None
        await publish(broker, "t", [b"found"])
        await listed(registry.http_address, "t", 1)
        config = ClientConfig(lookupd_poll_interval=60)
        async with open_consumer(
            "t", "c", lookupd_http_addresses=[dead, registry.http_address], config=config
        ) as consumer:
            assert consumer.connected_addresses == [broker.tcp_address]
            message = await consumer.__anext__()
            assert message.body == b"found"
            await message.finish()

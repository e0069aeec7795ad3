"""Connection.drain: a command queued just before closing is written, not dropped."""

from __future__ import annotations

from tests.client.consumers import wait_for
from trinsq import open_broker
from trinsq.client import ClientConfig
from trinsq.client._connection import open_connection
from trinsq.client._protocol import encode_pub


async def test_drain_then_close_writes_what_was_queued() -> None:
    async with open_broker() as broker:
        async with open_connection(broker.tcp_address, ClientConfig(), lambda event: None) as conn:
            for n in range(100):
                conn.send_nowait(encode_pub("t", b"%d" % n))
            await conn.drain()
            conn.close()
        await wait_for(lambda: broker.topics["t"].message_count == 100)

"""The largest HTTP ``/mpub`` leaves every other client its turn.

Up to ``--max-body-size`` (5 MiB) of one-byte lines is 2,621,440 messages. The handler reads
and publishes them a step at a time (broker/http/_app.py), so a TCP client's PUB, sent while
the body is being published, is answered before the HTTP request, and a client with a 1 s
heartbeat stays connected. As in tests/broker/tcp/test_fairness.py, the checks are about order
and outcome; the speed is for the benchmarks.
"""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.support import RawClient
from trinsq import open_broker
from trinsq.protocol import Limits

LINES = Limits().max_body_size // 2  # "x\n" each: exactly the largest body


@pytest.mark.slow
@pytest.mark.deadline(180)
async def test_largest_http_mpub_is_published_in_turns() -> None:
    events: list[str] = []
    async with (
        open_broker() as broker,
        httpx.AsyncClient(base_url=f"http://{broker.http_address}", timeout=120) as http,
    ):
        watcher = await RawClient.connect(broker)
        await watcher.identify(heartbeat_interval=1000)
        third = await RawClient.connect(broker)
        answered = trio.Event()

        async def post_mpub() -> None:
            reply = await http.post("/mpub?topic=http_big", content=b"x\n" * LINES)
            events.append(f"mpub answered {reply.status_code} {reply.text}")
            answered.set()

        async def answer_heartbeats() -> None:
            while True:
                frame = await watcher.read_frame(timeout=30, skip_heartbeats=False)
                assert frame.is_heartbeat, frame
                events.append("heartbeat")
                await watcher.send(b"NOP\n")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_heartbeats)
            nursery.start_soon(post_mpub)
            # Wait until the publish is under way: the topic has its first messages.
            while "http_big" not in broker.topics or broker.topics["http_big"].message_count == 0:
                await trio.sleep(0.001)
            for number in range(10):
                await third.publish("http_small", b"%d" % number)
            events.append("third client's PUBs answered")
            await answered.wait()
            # Two heartbeat intervals more: the watcher is still served afterwards.
            heartbeats = events.count("heartbeat")
            while events.count("heartbeat") < heartbeats + 2:
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()

        assert events.index("third client's PUBs answered") < events.index("mpub answered 200 OK")
        assert broker.topics["http_big"].message_count == LINES
        assert broker.topics["http_small"].message_count == 10
        await watcher.aclose()
        await third.aclose()

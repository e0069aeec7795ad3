"""trinsq.testing's fixtures for test suites that are not Trio: one broker process per session,
emptied for each test, used with plain sockets and with pynsq, gnsq and ansq."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import urllib.request

import pytest

from trinsq.testing import BrokerProcess, start_broker_process


def publish(address: str, topic: str, body: bytes) -> None:
    """PUB over a plain socket (magic, PUB, read the OK)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"  V2" + f"PUB {topic}\n".encode() + struct.pack(">i", len(body)) + body)
        size, frame_type = struct.unpack(">ii", sock.recv(8))
        assert (frame_type, sock.recv(size - 4)) == (0, b"OK")


def depth(broker: BrokerProcess, topic: str) -> int:
    url = f"http://{broker.http_address}/stats?format=json&topic={topic}"
    with urllib.request.urlopen(url, timeout=10) as response:
        stats = json.loads(response.read())
    return sum(t["depth"] for t in stats["topics"] if t["topic_name"] == topic)


def test_a_plain_test_publishes_to_the_session_broker(trinsq_nsqd: BrokerProcess) -> None:
    publish(trinsq_nsqd.tcp_address, "plain", b"hello")
    assert depth(trinsq_nsqd, "plain") == 1


def test_empty_deletes_every_topic_as_each_test_gets_it(
    trinsq_nsqd: BrokerProcess, trinsq_broker_process: BrokerProcess
) -> None:
    assert trinsq_nsqd is trinsq_broker_process  # one process for the session
    assert trinsq_nsqd.topics() == []  # whatever earlier tests published is gone
    publish(trinsq_nsqd.tcp_address, "left-over", b"x")
    publish(trinsq_nsqd.tcp_address, "other", b"y")
    assert sorted(trinsq_nsqd.topics()) == ["left-over", "other"]
    trinsq_nsqd.empty()
    assert trinsq_nsqd.topics() == []


@pytest.mark.interop
def test_pynsq_reads_from_it(trinsq_nsqd: BrokerProcess) -> None:
    import nsq

    publish(trinsq_nsqd.tcp_address, "pynsq", b"for pynsq")
    received: list[bytes] = []

    async def main() -> None:
        done = asyncio.get_running_loop().create_future()

        def handler(message: nsq.Message) -> bool:
            received.append(message.body)
            done.set_result(None)
            return True

        reader = nsq.Reader(
            topic="pynsq",
            channel="c",
            message_handler=handler,
            nsqd_tcp_addresses=[trinsq_nsqd.tcp_address],
        )
        await asyncio.wait_for(done, 30)
        reader.close()

    asyncio.run(main())
    assert received == [b"for pynsq"]


@pytest.mark.interop
def test_gnsq_publishes_to_it(trinsq_nsqd: BrokerProcess) -> None:
    import gnsq

    producer = gnsq.Producer([trinsq_nsqd.tcp_address])
    producer.start()
    producer.publish("gnsq", b"from gnsq")
    producer.close()
    producer.join(5)
    assert depth(trinsq_nsqd, "gnsq") == 1


@pytest.mark.interop
def test_ansq_publishes_to_it(trinsq_nsqd: BrokerProcess) -> None:
    import ansq

    async def main() -> None:
        writer = await ansq.create_writer(nsqd_tcp_addresses=[trinsq_nsqd.tcp_address])
        answer = await writer.pub("ansq", b"from ansq")
        await writer.close()
        assert answer is not None
        assert answer.is_ok

    asyncio.run(main())
    assert depth(trinsq_nsqd, "ansq") == 1


def test_a_process_stops_cleanly_and_flags_reach_it() -> None:
    broker = start_broker_process(["--max-msg-size=4"])
    try:
        with pytest.raises(AssertionError):
            publish(broker.tcp_address, "t", b"too big")  # E_BAD_MESSAGE, not OK
    finally:
        assert broker.stop() == 0


def test_a_broker_that_cannot_start_says_why() -> None:
    with pytest.raises(RuntimeError, match="exited with status 2"):
        start_broker_process(["--no-such-flag"])

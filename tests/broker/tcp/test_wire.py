"""Exact bytes on the wire between a raw socket and a running broker (nsqd.md §2)."""

from __future__ import annotations

import json
import struct
import time

import pytest

from tests.conftest import Connect
from tests.support import RawClient, body, mpub_body
from trinsq import RunningBroker, open_broker
from trinsq.protocol import FrameType

OK_BYTES = bytes.fromhex("00000006 00000000") + b"OK"


async def test_wrong_magic_gets_bad_protocol_then_close(
    broker: RunningBroker, connect: Connect
) -> None:
    client = await connect(broker, magic=b"  V1")
    assert await client.read_raw(22) == bytes.fromhex("00000012 00000001") + b"E_BAD_PROTOCOL"
    await client.expect_closed()


async def test_ok_response_bytes(raw: RawClient) -> None:
    await raw.send(b"PUB t\n" + body(b"x"))
    assert await raw.read_raw(10) == OK_BYTES


async def test_identify_without_negotiation_answers_ok(raw: RawClient) -> None:
    await raw.send(b"IDENTIFY\n" + body(b'{"client_id":"c"}'))
    assert await raw.read_raw(10) == OK_BYTES


async def test_identify_negotiated_reply_is_nsqds_json(raw: RawClient) -> None:
    reply = await raw.identify(client_id="x", heartbeat_interval=5000, msg_timeout=2000)
    assert reply.frame_type == FrameType.RESPONSE
    assert json.loads(reply.data) == {
        "max_rdy_count": 2500,
        "version": "1.3.0",
        "max_msg_timeout": 900000,
        "msg_timeout": 2000,
        "tls_v1": False,
        "deflate": False,
        "deflate_level": 6,
        "max_deflate_level": 6,
        "snappy": False,
        "sample_rate": 0,
        "auth_required": False,
        "output_buffer_size": 16384,
        "output_buffer_timeout": 250,
    }
    assert list(json.loads(reply.data)) == list(json.loads(reply.data).keys())
    assert reply.data.startswith(b'{"max_rdy_count":2500,"version":"1.3.0",')


async def test_message_frame_layout(raw: RawClient) -> None:
    before = time.time_ns()
    await raw.publish("layout", b"hello")
    after = time.time_ns()
    await raw.subscribe("layout", "c", rdy=1)
    header = await raw.read_raw(8)
    size, frame_type = struct.unpack(">Ii", header)
    assert (size, frame_type) == (4 + 26 + 5, 2)
    data = await raw.read_raw(size - 4)
    timestamp, attempts = struct.unpack(">qH", data[:10])
    assert before <= timestamp <= after
    assert attempts == 1
    message_id = data[10:26]
    assert all(c in b"0123456789abcdef" for c in message_id)
    assert data[26:] == b"hello"


async def test_close_wait_and_fin_after_cls(raw: RawClient) -> None:
    await raw.publish("cls", b"m")
    await raw.subscribe("cls", "c", rdy=1)
    _, _, message_id, _ = await raw.read_message()
    await raw.send(b"CLS\n")
    assert await raw.read_raw(18) == bytes.fromhex("0000000e 00000000") + b"CLOSE_WAIT"
    # After CLS: RDY is ignored, FIN still works, nothing more is delivered.
    await raw.send(b"RDY 5\nFIN " + message_id + b"\n")
    await raw.publish("cls", b"after")
    await raw.send(b"FIN " + message_id + b"\n")
    await raw.expect_error(b"E_FIN_FAILED FIN " + message_id + b" failed ID not in flight")


async def test_mpub_and_dpub_are_answered_ok(raw: RawClient, broker: RunningBroker) -> None:
    await raw.send(b"MPUB m\n" + mpub_body([b"a", b"bb", b"ccc"]))
    await raw.expect_response(b"OK")
    await raw.send(b"DPUB m 60000\n" + body(b"later"))
    await raw.expect_response(b"OK")
    topic = broker.topics["m"]
    assert (topic.depth, topic.message_count, topic.message_bytes) == (4, 4, 11)


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"PUB bad!topic\n" + body(b"x"), b'E_BAD_TOPIC PUB topic name "bad!topic" is not valid'),
        (
            b"PUB " + b"t" * 65 + b"\n",
            b'E_BAD_TOPIC PUB topic name "' + b"t" * 65 + b'" is not valid',
        ),
        (b"SUB t bad/channel\n", b'E_BAD_CHANNEL SUB channel name "bad/channel" is not valid'),
        (b"SUB t\n", b"E_INVALID SUB insufficient number of parameters"),
        (
            b"PUB t\n" + struct.pack(">i", 1048577),
            b"E_BAD_MESSAGE PUB message too big 1048577 > 1048576",
        ),
        (b"PUB t\n" + struct.pack(">i", 0), b"E_BAD_MESSAGE PUB invalid message body size 0"),
        (
            b"MPUB t\n" + struct.pack(">ii", 8, 0),
            b"E_BAD_BODY MPUB invalid message count 0",
        ),
        (
            b"MPUB t\n" + struct.pack(">ii", 8, 1048576),
            b"E_BAD_BODY MPUB invalid message count 1048576",
        ),
        (
            b"MPUB t\n" + struct.pack(">iii", 100, 1, 0),
            b"E_BAD_MESSAGE MPUB invalid message(0) body size 0",
        ),
        (
            b"MPUB t\n" + struct.pack(">iii", 100, 2, 1) + b"x" + struct.pack(">i", 1048577),
            b"E_BAD_MESSAGE MPUB message too big 1048577 > 1048576",
        ),
        (
            b"MPUB t\n" + struct.pack(">i", 5242881),
            b"E_BAD_BODY MPUB body too big 5242881 > 5242880",
        ),
        (b"DPUB t 3600001\n", b"E_INVALID DPUB timeout 3600001 out of range 0-3600000"),
        (b"DPUB t -5\n", b"E_INVALID DPUB could not parse timeout -5"),
        (b"BOGUS\n", b"E_INVALID invalid command BOGUS"),
        (b"\n", b"E_INVALID invalid command "),
        (b"RDY 1\n", b"E_INVALID cannot RDY in current state"),
        (b"FIN 0123456789abcdef\n", b"E_INVALID cannot FIN in current state"),
        (b"REQ 0123456789abcdef 0\n", b"E_INVALID cannot REQ in current state"),
        (b"TOUCH 0123456789abcdef\n", b"E_INVALID cannot TOUCH in current state"),
        (b"CLS\n", b"E_INVALID cannot CLS in current state"),
        (b"AUTH\n" + body(b"secret"), b"E_AUTH_DISABLED AUTH disabled"),
        (b"IDENTIFY\n" + body(b"{bad json"), b"E_BAD_BODY IDENTIFY failed to decode JSON body"),
        (
            b"IDENTIFY\n" + body(b'{"heartbeat_interval":999}'),
            b"E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid",
        ),
        (
            b"IDENTIFY\n" + body(b'{"msg_timeout":900001}'),
            b"E_BAD_BODY IDENTIFY msg timeout (900001) is invalid",
        ),
    ],
)
async def test_fatal_errors_send_exact_frame_then_close(
    raw: RawClient, command: bytes, error: bytes
) -> None:
    await raw.send(command)
    await raw.expect_error(error)
    await raw.expect_closed()


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (b"SUB t c\n", b"E_INVALID cannot SUB in current state"),
        (b"IDENTIFY\n" + body(b"{}"), b"E_INVALID cannot IDENTIFY in current state"),
        (b"AUTH\n" + body(b"s"), b"E_INVALID cannot AUTH in current state"),
    ],
)
async def test_init_only_commands_after_subscribe(
    raw: RawClient, command: bytes, error: bytes
) -> None:
    await raw.subscribe("t", "c")
    await raw.send(command)
    await raw.expect_error(error)
    await raw.expect_closed()


async def test_rdy_over_the_cap_is_fatal(raw: RawClient) -> None:
    await raw.subscribe("t", "c")
    await raw.send(b"RDY 2501\n")
    await raw.expect_error(b"E_INVALID RDY count 2501 out of range 0-2500")
    await raw.expect_closed()


async def test_rdy_cap_follows_the_option(connect: Connect) -> None:
    async with open_broker(max_rdy_count=10) as broker:
        client = await connect(broker)
        reply = await client.identify()
        assert json.loads(reply.data)["max_rdy_count"] == 10
        await client.subscribe("t", "c")
        await client.send(b"RDY 10\nRDY 11\n")
        await client.expect_error(b"E_INVALID RDY count 11 out of range 0-10")
        await client.expect_closed()


@pytest.mark.parametrize("command", [b"FIN", b"REQ", b"TOUCH"])
async def test_unknown_message_id_is_not_fatal(raw: RawClient, command: bytes) -> None:
    await raw.subscribe("t", "c")
    unknown = b"0123456789abcdef"
    suffix = b" 0" if command == b"REQ" else b""
    await raw.send(command + b" " + unknown + suffix + b"\n")
    await raw.expect_error(
        b"E_" + command + b"_FAILED " + command + b" " + unknown + b" failed ID not in flight"
    )
    # The connection keeps working.
    await raw.publish("t", b"still here")
    await raw.send(b"RDY 1\n")
    _, _, _, data = await raw.read_message()
    assert data == b"still here"


async def test_bad_message_id_length_is_fatal(raw: RawClient) -> None:
    await raw.subscribe("t", "c")
    await raw.send(b"FIN short\n")
    await raw.expect_error(b"E_INVALID invalid message ID")
    await raw.expect_closed()


async def test_message_owned_by_another_client(broker: RunningBroker, connect: Connect) -> None:
    first = await connect(broker)
    second = await connect(broker)
    await first.publish("own", b"m")
    await first.subscribe("own", "c", rdy=1)
    _, _, message_id, _ = await first.read_message()
    await second.subscribe("own", "c")
    await second.send(b"FIN " + message_id + b"\n")
    await second.expect_error(
        b"E_FIN_FAILED FIN " + message_id + b" failed client does not own message"
    )


async def test_garbage_from_one_client_leaves_others_served(
    broker: RunningBroker, connect: Connect
) -> None:
    good = await connect(broker)
    await good.subscribe("g", "c", rdy=10)
    rng = __import__("random").Random(1234)
    for _ in range(20):
        bad = await connect(broker, magic=b"")
        await bad.send(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 4096))))
        await bad.aclose()
    # Garbage after a valid magic, too.
    bad = await connect(broker)
    await bad.send(bytes(rng.getrandbits(8) for _ in range(20000)))
    await bad.aclose()
    publisher = await connect(broker)
    await publisher.publish("g", b"after garbage")
    _, _, _, data = await good.read_message()
    assert data == b"after garbage"


async def test_long_command_line_closes_without_error_frame(raw: RawClient) -> None:
    await raw.send(b"PUB " + b"t" * 20000)
    await raw.expect_closed()
    assert raw.raw_received == b""


async def test_second_identify_in_init_is_answered(raw: RawClient) -> None:
    await raw.send(b"IDENTIFY\n" + body(b"{}") + b"IDENTIFY\n" + body(b"{}"))
    await raw.expect_response(b"OK")
    await raw.expect_response(b"OK")


async def test_commands_split_across_many_writes(raw: RawClient, broker: RunningBroker) -> None:
    stream = b"PUB split\n" + body(b"abc") + b"MPUB split\n" + mpub_body([b"x", b"y"])
    for byte in stream:
        await raw.send(bytes([byte]))
    await raw.expect_response(b"OK")
    await raw.expect_response(b"OK")
    assert broker.topics["split"].depth == 3


async def test_pub_and_sub_share_one_connection(raw: RawClient) -> None:
    await raw.subscribe("shared", "c", rdy=5)
    await raw.publish("shared", b"to myself")
    _, _, _, data = await raw.read_message()
    assert data == b"to myself"

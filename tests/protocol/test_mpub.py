"""A large MPUB is read in bounded steps (protocol/_mpub.py), with no I/O.

The parser reads at most ``mpub_messages_per_step`` messages per ``next_command`` call and
returns BUSY while more of the body is buffered; the messages come out of the finished
command a slice at a time (MpubBodies). These tests check the steps, that they change nothing
nsqd's checks see (errors, their texts and when they come), and the slicing.
"""

from __future__ import annotations

import random
import struct
from array import array

import pytest

from trinsq.protocol import (
    BUSY,
    NEED_DATA,
    HttpMpubReader,
    Limits,
    MultiPublish,
    ProtocolError,
    V2ServerConnection,
    parse_binary_mpub,
)
from trinsq.protocol._mpub import MpubBodies, MpubReader, MpubStep
from trinsq.protocol._v2 import MPUB_MESSAGES_PER_STEP

MAX_COUNT = (Limits().max_body_size - 4) // 5  # 1,048,575 one-byte messages


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def mpub_body(bodies: list[bytes]) -> bytes:
    inner = i32(len(bodies)) + b"".join(i32(len(body)) + body for body in bodies)
    return i32(len(inner)) + inner


def mpub(bodies: list[bytes]) -> bytes:
    return b"MPUB t\n" + mpub_body(bodies)


def run(conn: V2ServerConnection) -> tuple[int, object]:
    """Call next_command until it returns something other than BUSY; count the BUSYs."""
    busy = 0
    while (result := conn.next_command()) is BUSY:
        busy += 1
    return busy, result


def test_the_largest_mpub_takes_many_bounded_steps() -> None:
    conn = V2ServerConnection(Limits(), expect_magic=False)
    conn.receive_data(b"MPUB t\n" + i32(4 + 5 * MAX_COUNT) + i32(MAX_COUNT))
    conn.receive_data(b"\x00\x00\x00\x01x" * MAX_COUNT + b"NOP\n")
    busy, command = run(conn)
    assert busy == -(-MAX_COUNT // MPUB_MESSAGES_PER_STEP) - 1
    assert isinstance(command, MultiPublish)
    assert len(command.bodies) == MAX_COUNT
    assert command.bodies[:3] == [b"x"] * 3
    assert command.bodies[-1] == b"x"
    assert conn.buffered == 4  # the NOP after it


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_steps_and_chunking_do_not_change_the_messages(step: int) -> None:
    rng = random.Random(step)
    bodies = [rng.randbytes(rng.randrange(1, 40)) for _ in range(300)]
    data = mpub(bodies) + b"NOP\n"
    conn = V2ServerConnection(Limits(), expect_magic=False)
    conn.mpub_messages_per_step = step
    position = 0
    commands = []
    while position < len(data):
        size = rng.randrange(1, 64)
        conn.receive_data(data[position : position + size])
        position += size
        while (result := conn.next_command()) is not NEED_DATA:
            if result is not BUSY:
                commands.append(result)
    assert commands[0] == MultiPublish("t", tuple(bodies))
    assert isinstance(commands[0], MultiPublish)
    assert list(commands[0].bodies) == bodies
    assert len(commands) == 2  # and the NOP


def test_each_step_consumes_what_it_read() -> None:
    """The body does not pile up in the receive buffer while it arrives."""
    conn = V2ServerConnection(Limits(), expect_magic=False)
    conn.receive_data(b"MPUB t\n" + i32(4 + 5 * 10_000) + i32(10_000))
    assert conn.next_command() is NEED_DATA
    conn.receive_data(b"\x00\x00\x00\x01x" * 3000 + b"\x00\x00")
    assert run(conn)[1] is NEED_DATA
    assert conn.buffered == 2  # half a size field
    conn.receive_data(b"\x00\x01x" + b"\x00\x00\x00\x01x" * 6999)
    busy, command = run(conn)
    assert busy == 6
    assert isinstance(command, MultiPublish)
    assert len(command.bodies) == 10_000
    assert conn.buffered == 0


def test_an_error_after_some_steps_names_the_message() -> None:
    conn = V2ServerConnection(Limits(), expect_magic=False)
    conn.mpub_messages_per_step = 100
    bodies = [b"x"] * 1000
    data = bytearray(mpub(bodies))
    struct.pack_into(">i", data, len(b"MPUB t\n") + 8 + 5 * 750, 0)  # message 750: size 0
    conn.receive_data(bytes(data))
    for _ in range(7):
        assert conn.next_command() is BUSY
    with pytest.raises(ProtocolError) as caught:
        conn.next_command()
    assert caught.value.frame_data == b"E_BAD_MESSAGE MPUB invalid message(750) body size 0"


def test_read_failure_during_steps_names_what_is_missing() -> None:
    conn = V2ServerConnection(Limits(), expect_magic=False)
    conn.mpub_messages_per_step = 10
    conn.receive_data(b"MPUB t\n" + i32(4 + 5 * 100) + i32(100) + b"\x00\x00\x00\x01x" * 50)
    assert run(conn)[1] is NEED_DATA
    failure = conn.read_failure()
    assert failure is not None
    assert failure.frame_data == b"E_BAD_MESSAGE MPUB failed to read message(50) body size"
    conn.receive_data(b"")
    with pytest.raises(ProtocolError) as caught:
        run(conn)
    assert caught.value.frame_data == failure.frame_data


@pytest.mark.parametrize("max_messages", [0, 1, 5])
def test_reader_steps_report_how_they_ended(max_messages: int) -> None:
    reader = MpubReader(Limits(), framed=True)
    data = mpub_body([b"a", b"bb", b"ccc"])
    position, step = reader.read(data, 0, max_messages)
    assert step is (MpubStep.STEP_USED if max_messages < 3 else MpubStep.DONE)
    while step is MpubStep.STEP_USED:
        position, step = reader.read(data, position, max(max_messages, 1))
    assert step is MpubStep.DONE
    assert position == len(data)
    assert list(reader.bodies()) == [b"a", b"bb", b"ccc"]


def test_bodies_slice_across_chunks() -> None:
    # Two chunks: the first begins after its first message's size (read in an earlier step),
    # the second with a size field.
    chunks = [
        (b"ab" + i32(3) + b"cde", 0, array("i", [2, 9])),
        (i32(1) + b"f" + i32(2) + b"gh", 4, array("i", [5, 11])),
    ]
    bodies = MpubBodies(chunks)
    expected = [b"ab", b"cde", b"f", b"gh"]
    assert len(bodies) == 4
    assert list(bodies) == expected
    assert bodies[1:3] == expected[1:3]
    assert bodies[0:4] == expected
    assert bodies[3:1] == []
    assert bodies[::2] == expected[::2]
    assert bodies[-1] == b"gh"
    assert bodies[2] == b"f"
    with pytest.raises(IndexError):
        bodies[4]
    assert bodies == tuple(expected)
    assert bodies != tuple(expected[:3])
    assert hash(bodies) == hash(tuple(expected))
    assert "4 messages" in repr(bodies)


def test_http_binary_mpub_reads_in_one_go_and_ignores_trailing_bytes() -> None:
    inner = mpub_body([b"a", b"b" * 5000])[4:]  # without the TCP size
    assert parse_binary_mpub(inner + b"trailing", Limits()) == (b"a", b"b" * 5000)
    with pytest.raises(ProtocolError) as caught:
        parse_binary_mpub(inner[:-1], Limits())
    assert caught.value.frame_data == b"E_BAD_MESSAGE MPUB failed to read message body"


# -- HTTP /mpub: the whole body is there, read in bounded steps --------------------------------


def read_all_steps(reader: HttpMpubReader, max_messages: int) -> int:
    steps = 1
    while not reader.step(max_messages):
        steps += 1
    return steps


@pytest.mark.parametrize("step", [1, 3, 64, 4096])
def test_http_text_mpub_in_steps_finds_what_one_split_finds(step: int) -> None:
    rng = random.Random(step)
    lines = [b"x" * rng.choice([0, 1, 5, 40, 300]) for _ in range(2000)]
    body = b"\n".join(lines) + rng.choice([b"", b"\n", b"\n\n"])
    reader = HttpMpubReader(body, Limits(), binary=False)
    steps = read_all_steps(reader, step)
    assert list(reader.bodies()) == [line for line in body.split(b"\n") if line]
    assert steps >= len(body) // (step * 16 + 301)  # bounded by bytes, never one pass


def test_http_text_mpub_step_covers_a_line_longer_than_its_window() -> None:
    body = b"a\n" + b"L" * 10_000 + b"\nb"
    reader = HttpMpubReader(body, Limits(), binary=False)
    assert not reader.step(1)  # "a" and the long line: up to the newline after its window
    assert reader.step(1)
    assert list(reader.bodies()) == [b"a", b"L" * 10_000, b"b"]


def test_http_text_mpub_largest_body_takes_many_small_steps() -> None:
    body = b"x\n" * (Limits().max_body_size // 2)  # 2,621,440 one-byte messages
    reader = HttpMpubReader(body, Limits(), binary=False)
    steps = read_all_steps(reader, 1024)
    assert steps > 300
    assert len(reader.bodies()) == Limits().max_body_size // 2


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_http_text_mpub_line_over_max_msg_size_is_msg_too_big(where: str) -> None:
    limits = Limits(max_msg_size=100)
    lines = [b"ok"] * 5000
    lines[{"first": 0, "middle": 2500, "last": -1}[where]] = b"y" * 101
    reader = HttpMpubReader(b"\n".join(lines), limits, binary=False)
    with pytest.raises(ProtocolError) as caught:
        read_all_steps(reader, 16)
    assert caught.value.code == "E_MSG_TOO_BIG"


def test_http_text_mpub_line_of_exactly_max_msg_size_is_fine() -> None:
    reader = HttpMpubReader(b"y" * 100 + b"\n", Limits(max_msg_size=100), binary=False)
    read_all_steps(reader, 1)
    assert list(reader.bodies()) == [b"y" * 100]


def test_http_binary_mpub_in_steps_of_few_messages() -> None:
    bodies = [b"m%d" % n for n in range(1000)]
    reader = HttpMpubReader(mpub_body(bodies)[4:], Limits(), binary=True)
    assert read_all_steps(reader, 7) == 143  # ceil(1000 / 7)
    assert list(reader.bodies()) == bodies

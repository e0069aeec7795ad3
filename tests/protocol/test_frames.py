"""Server-to-client frames of protocol V2: exact bytes, and FrameDecoder round trips."""

from __future__ import annotations

import random
import struct

import pytest

from trinsq.protocol import (
    CLOSE_WAIT_FRAME,
    HEARTBEAT_FRAME,
    MESSAGE_HEADER_SIZE,
    OK_FRAME,
    Frame,
    FrameDecoder,
    FrameType,
    ProtocolError,
    append_message_frame,
    encode_error,
    encode_frame,
    encode_message,
    encode_response,
)

MESSAGE_ID = b"0a1b2c3d4e5f6789"


def test_frame_type_values() -> None:
    assert (FrameType.RESPONSE, FrameType.ERROR, FrameType.MESSAGE) == (0, 1, 2)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (OK_FRAME, bytes.fromhex("00000006 00000000") + b"OK"),
        (HEARTBEAT_FRAME, bytes.fromhex("0000000f 00000000") + b"_heartbeat_"),
        (CLOSE_WAIT_FRAME, bytes.fromhex("0000000e 00000000") + b"CLOSE_WAIT"),
        (encode_response(b"OK"), bytes.fromhex("00000006 00000000 4f4b")),
        (encode_response(b""), bytes.fromhex("00000004 00000000")),
        (encode_response(b'{"a":1}'), bytes.fromhex("0000000b 00000000") + b'{"a":1}'),
        (encode_frame(FrameType.RESPONSE, b"x"), bytes.fromhex("00000005 00000000 78")),
        (encode_frame(FrameType.ERROR, b"x"), bytes.fromhex("00000005 00000001 78")),
        (encode_frame(FrameType.MESSAGE, b"x"), bytes.fromhex("00000005 00000002 78")),
    ],
)
def test_response_frames_exact_bytes(frame: bytes, expected: bytes) -> None:
    assert frame == expected


def test_large_frame_size_field() -> None:
    data = b"z" * 70_000
    frame = encode_response(data)
    assert frame[:8] == struct.pack(">Ii", 70_004, 0) == bytes.fromhex("00011174 00000000")
    assert frame[8:] == data


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ProtocolError("E_BAD_PROTOCOL"), bytes.fromhex("00000012 00000001") + b"E_BAD_PROTOCOL"),
        (
            ProtocolError("E_INVALID", "invalid command ASDF"),
            bytes.fromhex("00000022 00000001") + b"E_INVALID invalid command ASDF",
        ),
        (
            ProtocolError("E_INVALID", "invalid command "),
            bytes.fromhex("0000001e 00000001") + b"E_INVALID invalid command ",
        ),
        (
            ProtocolError("E_FIN_FAILED", "FIN 0a1b2c3d4e5f6789 failed ID not in flight"),
            bytes.fromhex("0000003d 00000001")
            + b"E_FIN_FAILED FIN 0a1b2c3d4e5f6789 failed ID not in flight",
        ),
        (
            # raw (non-UTF-8) bytes echoed by %s go out unchanged
            ProtocolError("E_INVALID", "invalid command \udcff\udcfe"),
            bytes.fromhex("00000020 00000001") + b"E_INVALID invalid command \xff\xfe",
        ),
    ],
)
def test_error_frames_exact_bytes(error: ProtocolError, expected: bytes) -> None:
    assert encode_error(error) == expected


def test_reference_message_frame_bytes() -> None:
    # A 5-byte body gives size 4 + 26 + 5 = 35 = 0x23 (nsqd.md 2.3.1 says 0x2F, a slip: its
    # own formula, and SendFramedResponse's len(data)+4, both give 0x23).
    frame = encode_message(0x0102030405060708, 1, MESSAGE_ID, b"hello")
    assert frame == (
        bytes.fromhex("00000023 00000002 0102030405060708 0001") + MESSAGE_ID + b"hello"
    )


@pytest.mark.parametrize(
    ("timestamp", "attempts", "body"),
    [
        (0, 0, b""),
        (1, 1, b"x"),
        (1_700_000_000_123_456_789, 1, b"hello"),
        ((1 << 63) - 1, 2, b"\x00\n\r\n"),
        (-1, 3, b"negative timestamp is still int64"),
        (1_700_000_000_000_000_000, 65_535, b"b" * 1000),
        (1_700_000_000_000_000_000, 255, b"c" * 70_000),
    ],
)
def test_message_frame_layout(timestamp: int, attempts: int, body: bytes) -> None:
    frame = encode_message(timestamp, attempts, MESSAGE_ID, body)
    assert len(frame) == 4 + 4 + 26 + len(body)
    size, frame_type = struct.unpack(">Ii", frame[:8])
    assert size == 4 + 26 + len(body)
    assert frame_type == 2
    assert struct.unpack(">q", frame[8:16])[0] == timestamp
    assert struct.unpack(">H", frame[16:18])[0] == attempts
    assert frame[18:34] == MESSAGE_ID
    assert frame[34:] == body


@pytest.mark.parametrize(
    ("attempts", "wire"),
    [
        (1, b"\x00\x01"),
        (256, b"\x01\x00"),
        (65_535, b"\xff\xff"),
        (65_536, b"\x00\x00"),
        (65_537, b"\x00\x01"),
    ],
)
def test_message_attempts_are_uint16(attempts: int, wire: bytes) -> None:
    assert encode_message(0, attempts, MESSAGE_ID, b"m")[16:18] == wire


def test_message_header_size() -> None:
    assert MESSAGE_HEADER_SIZE == 26


def test_append_message_frame_appends() -> None:
    out = bytearray(b"prefix")
    append_message_frame(out, 5, 2, MESSAGE_ID, b"one")
    append_message_frame(out, 6, 3, MESSAGE_ID, b"two!")
    expected = (
        b"prefix"
        + encode_message(5, 2, MESSAGE_ID, b"one")
        + encode_message(6, 3, MESSAGE_ID, b"two!")
    )
    assert bytes(out) == expected


# -- FrameDecoder ---------------------------------------------------------------------------------

SAMPLE_FRAMES = [
    Frame(FrameType.RESPONSE, b"OK"),
    Frame(FrameType.RESPONSE, b"_heartbeat_"),
    Frame(FrameType.RESPONSE, b""),
    Frame(FrameType.ERROR, b"E_INVALID invalid command "),
    Frame(FrameType.MESSAGE, encode_message(123, 1, MESSAGE_ID, b"hello")[8:]),
    Frame(FrameType.MESSAGE, encode_message(456, 9, MESSAGE_ID, b"")[8:]),
    Frame(FrameType.RESPONSE, b"CLOSE_WAIT"),
    Frame(FrameType.RESPONSE, b"x" * 5000),
]


def _encode_all(frames: list[Frame]) -> bytes:
    return b"".join(encode_frame(frame.frame_type, frame.data) for frame in frames)


def _chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, position = [], 0
    for size in sizes:
        out.append(data[position : position + size])
        position += size
    out.append(data[position:])
    return [chunk for chunk in out if chunk]


def _random_chunks(data: bytes, seed: int, largest: int) -> list[bytes]:
    rng = random.Random(seed)
    out, position = [], 0
    while position < len(data):
        size = rng.randint(1, largest)
        out.append(data[position : position + size])
        position += size
    return out


STREAM = _encode_all(SAMPLE_FRAMES)


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([STREAM], id="all-at-once"),
        pytest.param([STREAM[i : i + 1] for i in range(len(STREAM))], id="byte-by-byte"),
        pytest.param(_chunks(STREAM, [3, 5, 8, 13]), id="uneven-start"),
        *[
            pytest.param(_random_chunks(STREAM, seed, 64), id=f"random-small-{seed}")
            for seed in range(5)
        ],
        *[
            pytest.param(_random_chunks(STREAM, seed, 4000), id=f"random-large-{seed}")
            for seed in range(5)
        ],
    ],
)
def test_decoder_round_trip(chunks: list[bytes]) -> None:
    assert b"".join(chunks) == STREAM
    decoder = FrameDecoder()
    decoded: list[Frame] = []
    for chunk in chunks:
        decoder.feed(chunk)
        decoded.extend(decoder.frames())
    assert decoded == SAMPLE_FRAMES
    assert decoder.next_frame() is None


def test_decoder_needs_whole_frame() -> None:
    frame = encode_response(b"OK")
    decoder = FrameDecoder()
    for byte in frame[:-1]:
        decoder.feed(bytes([byte]))
        assert decoder.next_frame() is None
    decoder.feed(frame[-1:])
    assert decoder.next_frame() == Frame(FrameType.RESPONSE, b"OK")
    assert decoder.next_frame() is None


def test_decoder_keeps_partial_remainder() -> None:
    decoder = FrameDecoder()
    decoder.feed(OK_FRAME + HEARTBEAT_FRAME[:5])
    assert decoder.frames() == [Frame(FrameType.RESPONSE, b"OK")]
    decoder.feed(HEARTBEAT_FRAME[5:])
    frames = decoder.frames()
    assert frames == [Frame(FrameType.RESPONSE, b"_heartbeat_")]
    assert frames[0].is_heartbeat


@pytest.mark.parametrize("size", [0, 1, 2, 3])
def test_decoder_rejects_size_below_frame_type(size: int) -> None:
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">Ii", size, 0))
    with pytest.raises(ValueError, match=f"bad frame size {size}"):
        decoder.next_frame()


def test_decoder_max_frame_size() -> None:
    decoder = FrameDecoder(max_frame_size=10)
    decoder.feed(encode_response(b"123456"))  # size 10: accepted
    assert decoder.next_frame() == Frame(FrameType.RESPONSE, b"123456")
    decoder.feed(struct.pack(">Ii", 11, 0))  # rejected as soon as the header arrives
    with pytest.raises(ValueError, match="bad frame size 11"):
        decoder.next_frame()


def test_decoder_rejects_unknown_frame_type() -> None:
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">Ii", 4, 7))
    with pytest.raises(ValueError, match="7"):
        decoder.next_frame()


@pytest.mark.parametrize(
    ("frame", "heartbeat"),
    [
        (Frame(FrameType.RESPONSE, b"_heartbeat_"), True),
        (Frame(FrameType.RESPONSE, b"OK"), False),
        (Frame(FrameType.ERROR, b"_heartbeat_"), False),
        (Frame(FrameType.RESPONSE, b"_heartbeat_ "), False),
    ],
)
def test_is_heartbeat(frame: Frame, heartbeat: bool) -> None:
    assert frame.is_heartbeat is heartbeat


def test_message_fields_round_trip() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_message(1_700_000_000_000_000_001, 7, MESSAGE_ID, b"body\x00bytes"))
    frame = decoder.next_frame()
    assert frame is not None
    assert frame.frame_type is FrameType.MESSAGE
    assert frame.message_fields() == (1_700_000_000_000_000_001, 7, MESSAGE_ID, b"body\x00bytes")


@pytest.mark.parametrize(
    "frame",
    [
        Frame(FrameType.RESPONSE, b"x" * 40),
        Frame(FrameType.ERROR, b"x" * 40),
        Frame(FrameType.MESSAGE, b"x" * 25),
    ],
)
def test_message_fields_rejects_non_messages(frame: Frame) -> None:
    with pytest.raises(ValueError, match="not a message frame"):
        frame.message_fields()

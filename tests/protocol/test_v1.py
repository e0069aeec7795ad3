"""The sans-IO V1 protocol against nsqlookupd v1.3.0 (tcp.go, lookup_protocol_v1.go) and nsqd's
lookup peer (nsqd/lookup_peer.go, go-nsq v1.1.0 command.go).

Every test drives the code synchronously with bytes: no sockets, no trio.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Iterable

import pytest

from trinsq.protocol import (
    CLOSED,
    MAGIC_V1,
    NEED_DATA,
    ConnectionMustClose,
    LookupCommand,
    LookupIdentify,
    LookupPing,
    LookupRegister,
    LookupUnregister,
    PeerIdentity,
    ProtocolError,
    V1ResponseDecoder,
    V1ServerConnection,
    encode_identify,
    encode_ping,
    encode_register,
    encode_unregister,
    encode_v1_error,
    encode_v1_response,
    parse_lookup_identify,
    v1_magic,
)

# What nsqd v1.3.0's connectCallback sends, as go-nsq marshals it (keys sorted).
NSQD_INFO = (
    b'{"broadcast_address":"host.example","hostname":"host","http_port":4151,'
    b'"tcp_port":4150,"version":"1.3.0"}'
)
PEER = PeerIdentity("host.example", 4150, 4151, "1.3.0", "host")
DECODE_FAILED = b"E_BAD_BODY IDENTIFY failed to decode JSON body"
MISSING = b"E_BAD_BODY IDENTIFY missing fields"


# -- helpers --------------------------------------------------------------------------------------


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def identify(body: bytes = NSQD_INFO) -> bytes:
    return b"IDENTIFY\n" + i32(len(body)) + body


def drain(conn: V1ServerConnection) -> list[LookupCommand]:
    commands: list[LookupCommand] = []
    while True:
        result = conn.next_command()
        if result is NEED_DATA or result is CLOSED:
            return commands
        commands.append(result)


def parse_chunks(
    chunks: Iterable[bytes], *, eof: bool = True, conn: V1ServerConnection | None = None
) -> list[LookupCommand]:
    conn = conn or V1ServerConnection()
    commands = drain(conn)
    for chunk in chunks:
        conn.receive_data(chunk)
        commands += drain(conn)
    if eof:
        conn.receive_data(b"")
        commands += drain(conn)
        assert conn.next_command() is CLOSED
    return commands


def byte_chunks(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_chunks(data: bytes, seed: int, largest: int) -> list[bytes]:
    rng = random.Random(seed)
    chunks, position = [], 0
    while position < len(data):
        size = rng.randint(1, largest)
        chunks.append(data[position : position + size])
        position += size
    return chunks


def firing(data: bytes, conn: V1ServerConnection | None = None) -> tuple[int, Exception]:
    """Feed ``data`` byte by byte; return the index of the byte that made the parser fail, and
    the failure. Every earlier byte must leave the parser waiting (or yielding commands)."""
    conn = conn or V1ServerConnection()
    for index, byte in enumerate(data):
        conn.receive_data(bytes([byte]))
        try:
            drain(conn)
        except (ProtocolError, ConnectionMustClose) as error:
            with pytest.raises(RuntimeError):
                conn.next_command()  # a failed connection stays failed
            return index, error
    raise AssertionError("no error fired")


def error_at_eof(data: bytes) -> ProtocolError:
    conn = V1ServerConnection()
    conn.receive_data(data)
    drain(conn)
    conn.receive_data(b"")
    with pytest.raises(ProtocolError) as caught:
        conn.next_command()
    return caught.value


# -- a whole session in every split ---------------------------------------------------------------

SESSION = (
    MAGIC_V1
    + b"PING\n"
    + identify()
    + b"REGISTER t\n"
    + b"REGISTER t c\n"
    + b"UNREGISTER t c#ephemeral\n"
    + b"UNREGISTER t\n"
    + b"PING\n"
)
SESSION_COMMANDS: list[LookupCommand] = [
    LookupPing(),
    LookupIdentify(PEER),
    LookupRegister("t"),
    LookupRegister("t", "c"),
    LookupUnregister("t", "c#ephemeral"),
    LookupUnregister("t"),
    LookupPing(),
]


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([SESSION], id="all-at-once"),
        pytest.param(byte_chunks(SESSION), id="byte-by-byte"),
        pytest.param([SESSION[:4], SESSION[4:]], id="magic-then-rest"),
        *(
            pytest.param(random_chunks(SESSION, seed, largest), id=f"random-{seed}-{largest}")
            for seed in range(5)
            for largest in (2, 7, 40)
        ),
    ],
)
def test_session_in_every_split(chunks: list[bytes]) -> None:
    assert parse_chunks(chunks) == SESSION_COMMANDS


def test_many_commands_per_chunk() -> None:
    conn = V1ServerConnection()
    conn.receive_data(MAGIC_V1 + identify() + b"REGISTER a\nPING\n" * 50 + b"REGIS")
    commands = drain(conn)
    assert commands[0] == LookupIdentify(PEER)
    assert commands[1:] == [LookupRegister("a"), LookupPing()] * 50
    conn.receive_data(b"TER b c\n")
    assert drain(conn) == [LookupRegister("b", "c")]


@pytest.mark.parametrize("cut", range(len(identify())))
def test_identify_cut_anywhere(cut: int) -> None:
    data = MAGIC_V1 + identify()
    conn = V1ServerConnection()
    conn.receive_data(data[: 4 + cut])
    assert conn.next_command() is NEED_DATA
    assert not conn.identified
    conn.receive_data(data[4 + cut :])
    assert conn.next_command() == LookupIdentify(PEER)
    assert conn.identified
    assert conn.buffered == 0


def test_identified_in_time_for_a_pipelined_register() -> None:
    assert parse_chunks([MAGIC_V1 + identify() + b"REGISTER t c\n"]) == [
        LookupIdentify(PEER),
        LookupRegister("t", "c"),
    ]


# -- magic (tcp.go Handle) ------------------------------------------------------------------------


def test_magic_constant() -> None:
    assert MAGIC_V1 == v1_magic() == bytes.fromhex("20205631")


@pytest.mark.parametrize("magic", [b"  V2", b"  v1", b"V1  ", b" V1 ", b"PING", b"\0\0\0\0"])
def test_wrong_magic_fires_on_the_fourth_byte(magic: bytes) -> None:
    index, error = firing(magic + b"PING\n")
    assert index == 3
    assert isinstance(error, ProtocolError)
    assert error.frame_data == b"E_BAD_PROTOCOL"
    assert encode_v1_error(error) == bytes.fromhex("0000000e") + b"E_BAD_PROTOCOL"


@pytest.mark.parametrize("prefix", [b"", b" ", b"  V", b"xyz"])
def test_eof_before_magic_closes_silently(prefix: bytes) -> None:
    assert parse_chunks([prefix]) == []


# -- line framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"PING\r\n", LookupPing()),
        (b"PING \n", LookupPing()),
        (b"  PING\n", LookupPing()),
        (b"\tPING\t\r\n", LookupPing()),
        (b"\x0bPING\x0c\n", LookupPing()),
        (b"PING\r\r\n", LookupPing()),
        ("PING\u00a0\n".encode(), LookupPing()),
        ("\u3000PING\u2028\x85\n".encode(), LookupPing()),
        ("\u2000PING\u200a\u202f\u205f\u1680\n".encode(), LookupPing()),
        (b"PING extra params\n", LookupPing()),
        (b"REGISTER t c \r\n", LookupRegister("t", "c")),
        (b" REGISTER t\n", LookupRegister("t")),
        (b"REGISTER t  c\n", LookupRegister("t")),  # params t, "", c: an empty channel is none
        (b"REGISTER t c extra\n", LookupRegister("t", "c")),
        (b"UNREGISTER t \t\n", LookupUnregister("t")),
        (b"REGISTER t#ephemeral c#ephemeral\n", LookupRegister("t#ephemeral", "c#ephemeral")),
        (b"REGISTER " + b"t" * 64 + b"\n", LookupRegister("t" * 64)),
    ],
)
def test_lines_are_trimmed_and_split(line: bytes, command: LookupCommand) -> None:
    assert parse_chunks([MAGIC_V1, identify(), line]) == [LookupIdentify(PEER), command]


@pytest.mark.parametrize(
    ("line", "name"),
    [
        (b"PING\x1c\n", b"PING\x1c"),  # not space for Go, though Python's strip() drops it
        (b"PING\x85\n", b"PING\x85"),  # a lone 0x85 byte is invalid UTF-8, not U+0085
        (b"PING\x00\n", b"PING\x00"),
        (b"PING\xc2\n", b"PING\xc2"),
        ("PING\u200b\n".encode(), "PING\u200b".encode()),  # zero width space is not White_Space
    ],
)
def test_only_go_whitespace_is_trimmed(line: bytes, name: bytes) -> None:
    index, error = firing(MAGIC_V1 + line)
    assert index == len(MAGIC_V1 + line) - 1
    assert isinstance(error, ProtocolError)
    assert error.frame_data == b"E_INVALID invalid command " + name


@pytest.mark.parametrize("tail", [b"", b"PI", b"PING", b"REGISTER t", b"IDENTIFY"])
def test_unterminated_last_line_is_dropped_at_eof(tail: bytes) -> None:
    assert parse_chunks([MAGIC_V1 + b"PING\n" + tail]) == [LookupPing()]


# -- error texts, in order, with the byte at which each fires -------------------------------------


def bad(kind: str, what: bytes, name: bytes) -> bytes:
    return b"E_BAD_" + kind.encode() + b" " + what + b" name '" + name + b"' is not valid"


# (bytes after the magic, error, whether IDENTIFY came first); each fires on the newline.
LINE_ERRORS = [
    (b"FOO\n", b"E_INVALID invalid command FOO", False),
    (b"\n", b"E_INVALID invalid command ", False),
    (b" \r\n", b"E_INVALID invalid command ", False),
    (b"ping\n", b"E_INVALID invalid command ping", False),
    (b"PING\tx\n", b"E_INVALID invalid command PING\tx", False),
    (b"PUB t\n", b"E_INVALID invalid command PUB", True),
    (b"REGISTER\n", b"E_INVALID client must IDENTIFY", False),
    (b"REGISTER t\n", b"E_INVALID client must IDENTIFY", False),
    (b"REGISTER bad!\n", b"E_INVALID client must IDENTIFY", False),
    (b"UNREGISTER t c\n", b"E_INVALID client must IDENTIFY", False),
    (b"REGISTER\n", b"E_INVALID REGISTER insufficient number of params", True),
    (b"UNREGISTER \r\n", b"E_INVALID UNREGISTER insufficient number of params", True),
    (b"REGISTER bad! \n", b"E_BAD_TOPIC REGISTER topic name 'bad!' is not valid", True),
    (b"REGISTER bad! bad?\n", b"E_BAD_TOPIC REGISTER topic name 'bad!' is not valid", True),
    (b"REGISTER  t\n", b"E_BAD_TOPIC REGISTER topic name '' is not valid", True),
    (b'UNREGISTER "q"\n', b"E_BAD_TOPIC UNREGISTER topic name '\"q\"' is not valid", True),
    (b"REGISTER caf\xc3\xa9\n", bad("TOPIC", b"REGISTER topic", b"caf\xc3\xa9"), True),
    (b"REGISTER \xff\n", b"E_BAD_TOPIC REGISTER topic name '\xff' is not valid", True),
    (b"REGISTER " + b"t" * 65 + b"\n", bad("TOPIC", b"REGISTER topic", b"t" * 65), True),
    (
        b"REGISTER t#ephemeral#ephemeral\n",
        bad("TOPIC", b"REGISTER topic", b"t#ephemeral#ephemeral"),
        True,
    ),
    (b"REGISTER t bad?\n", b"E_BAD_CHANNEL REGISTER channel name 'bad?' is not valid", True),
    (b"UNREGISTER t c:d\n", b"E_BAD_CHANNEL UNREGISTER channel name 'c:d' is not valid", True),
    (b"REGISTER t " + b"c" * 65 + b"\n", bad("CHANNEL", b"REGISTER channel", b"c" * 65), True),
    (b"IDENTIFY\n", b"E_INVALID cannot IDENTIFY again", True),
    (b"IDENTIFY extra\n", b"E_INVALID cannot IDENTIFY again", True),
]


@pytest.mark.parametrize(("line", "text", "identified"), LINE_ERRORS)
def test_line_errors_fire_on_the_newline(line: bytes, text: bytes, identified: bool) -> None:
    prefix = MAGIC_V1 + (identify() if identified else b"")
    index, error = firing(prefix + line)
    assert index == len(prefix + line) - 1
    assert isinstance(error, ProtocolError)
    assert error.frame_data == text
    assert error.fatal
    assert encode_v1_error(error) == struct.pack(">I", len(text)) + text


# (IDENTIFY bytes after the magic, error, index of the firing byte within them)
BODY_ERRORS = [
    (b"IDENTIFY\n" + i32(5242881), b"E_BAD_BODY IDENTIFY body too big 5242881 > 5242880", 12),
    (b"IDENTIFY\n" + i32(2**31 - 1), b"E_BAD_BODY IDENTIFY body too big 2147483647 > 5242880", 12),
    (b"IDENTIFY\n" + i32(-1), b"E_BAD_BODY IDENTIFY invalid body size -1", 12),
    (b"IDENTIFY\n" + i32(-(2**31)), b"E_BAD_BODY IDENTIFY invalid body size -2147483648", 12),
    (b"IDENTIFY\n" + i32(0), DECODE_FAILED, 12),  # nsqlookupd reads nothing, then decodes it
    (identify(b"{"), DECODE_FAILED, 13),
    (identify(b"not json"), DECODE_FAILED, 20),
    (identify(b"{}"), MISSING, 14),
    (identify(b"null"), MISSING, 16),
    (identify(b'{"tcp_port":"4150"}'), DECODE_FAILED, 31),
]


@pytest.mark.parametrize(("data", "text", "index"), BODY_ERRORS)
def test_identify_body_errors_fire_as_early_as_possible(
    data: bytes, text: bytes, index: int
) -> None:
    fired, error = firing(MAGIC_V1 + data + b"PING\n")
    assert fired == len(MAGIC_V1) + index
    assert isinstance(error, ProtocolError)
    assert error.frame_data == text


def test_body_cap_is_configurable() -> None:
    body = NSQD_INFO.ljust(200)  # JSON allows trailing spaces
    conn = V1ServerConnection(max_body_size=200)
    assert parse_chunks([MAGIC_V1, identify(body)], conn=conn) == [LookupIdentify(PEER)]
    _, error = firing(MAGIC_V1 + identify(body + b" "), V1ServerConnection(max_body_size=200))
    assert isinstance(error, ProtocolError)
    assert error.frame_data == b"E_BAD_BODY IDENTIFY body too big 201 > 200"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"IDENTIFY\n", b"E_BAD_BODY IDENTIFY failed to read body size"),
        (b"IDENTIFY\n\0\0\0", b"E_BAD_BODY IDENTIFY failed to read body size"),
        (b"IDENTIFY\n" + i32(10), b"E_BAD_BODY IDENTIFY failed to read body"),
        (b"IDENTIFY\n" + i32(10) + b'{"a":', b"E_BAD_BODY IDENTIFY failed to read body"),
    ],
)
def test_eof_inside_identify(data: bytes, text: bytes) -> None:
    assert error_at_eof(MAGIC_V1 + data).frame_data == text


def test_identify_body_is_not_bound_by_the_line_cap() -> None:
    body = NSQD_INFO.ljust(100)
    conn = V1ServerConnection(max_line_size=16)
    assert parse_chunks([MAGIC_V1, identify(body)], conn=conn) == [LookupIdentify(PEER)]


# -- line cap (ours; nsqlookupd's ReadString grows without bound) --------------------------------


@pytest.mark.parametrize("limit", [16, 16384])
def test_line_cap(limit: int) -> None:
    fits = b"PING" + b" " * (limit - 5) + b"\n"  # newline included, exactly the limit
    assert parse_chunks([MAGIC_V1 + fits], conn=V1ServerConnection(max_line_size=limit)) == [
        LookupPing()
    ]
    index, error = firing(MAGIC_V1 + b"P" * limit, V1ServerConnection(max_line_size=limit))
    assert index == len(MAGIC_V1) + limit - 1  # closes as soon as the buffer is full
    assert isinstance(error, ConnectionMustClose)
    conn = V1ServerConnection(max_line_size=limit)
    conn.receive_data(MAGIC_V1 + b"PING" + b" " * (limit - 4) + b"\n")
    with pytest.raises(ConnectionMustClose):
        conn.next_command()


# -- IDENTIFY JSON (parse_lookup_identify) --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "peer"),
    [
        (NSQD_INFO, PEER),
        (
            b'{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v"}',
            PeerIdentity("a", 1, 2, "v"),
        ),
        (  # unknown keys of any type are ignored, HEAD's topology fields included
            b'{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v",'
            b'"topology_zone":5,"topology_region":"r","x":{"y":[1,null]}}',
            PeerIdentity("a", 1, 2, "v"),
        ),
        (  # nsqlookupd overwrites remote_address, but only after decoding it as a string
            b'{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v",'
            b'"remote_address":"1.2.3.4:5"}',
            PeerIdentity("a", 1, 2, "v"),
        ),
        (  # names match case-insensitively, with Go's simple folding (long s)
            b'{"BROADCAST_ADDRESS":"a","Tcp_Port":1,"http_PORT":2,"Version":"v","HostName":"h"}',
            PeerIdentity("a", 1, 2, "v", "h"),
        ),
        (
            '{"broadca\u017ft_addre\u017fs":"a","tcp_port":1,"http_port":2,"ver\u017fion":"v"}'.encode(),
            PeerIdentity("a", 1, 2, "v"),
        ),
        (  # duplicates: the last one wins, a null changes nothing
            b'{"broadcast_address":"a","tcp_port":1,"tcp_port":7,"http_port":2,'
            b'"version":"v","version":null,"hostname":null}',
            PeerIdentity("a", 7, 2, "v"),
        ),
        (  # ports are not range checked: any non-zero int64 will do
            b'{"broadcast_address":"a","tcp_port":-1,"http_port":9223372036854775807,'
            b'"version":"v"}',
            PeerIdentity("a", -1, 9223372036854775807, "v"),
        ),
        (  # invalid UTF-8 and lone surrogate escapes become U+FFFD, as in Go
            b'{"broadcast_address":"a\xff","tcp_port":1,"http_port":2,"version":"\\ud800"}',
            PeerIdentity("a\ufffd", 1, 2, "\ufffd"),
        ),
        (
            b' \r\n\t{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v"}\n',
            PeerIdentity("a", 1, 2, "v"),
        ),
    ],
)
def test_identify_json(body: bytes, peer: PeerIdentity) -> None:
    assert parse_lookup_identify(body) == peer


def _fields(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "broadcast_address": "a",
        "tcp_port": 1,
        "http_port": 2,
        "version": "v",
    }
    fields.update(overrides)
    return json.dumps({key: value for key, value in fields.items() if value != "<absent>"}).encode()


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (_fields(broadcast_address="<absent>"), MISSING),
        (_fields(tcp_port="<absent>"), MISSING),
        (_fields(http_port="<absent>"), MISSING),
        (_fields(version="<absent>"), MISSING),
        (_fields(broadcast_address=""), MISSING),
        (_fields(tcp_port=0), MISSING),
        (_fields(http_port=0), MISSING),
        (_fields(version=""), MISSING),
        (_fields(version=None), MISSING),
        (b"null", MISSING),
        (b"{}", MISSING),
        (_fields(tcp_port="1"), DECODE_FAILED),
        (_fields(tcp_port=1.0), DECODE_FAILED),
        (_fields(http_port=True), DECODE_FAILED),
        (_fields(http_port=2**63), DECODE_FAILED),
        (_fields(http_port=-(2**63) - 1), DECODE_FAILED),
        (_fields(version=1), DECODE_FAILED),
        (_fields(broadcast_address=["a"]), DECODE_FAILED),
        (_fields(hostname=False), DECODE_FAILED),
        (_fields(remote_address=5), DECODE_FAILED),
        (_fields(tcp_port="<absent>", version=2), DECODE_FAILED),  # decoding is checked first
        (b'{"broadcast_address":"a","tcp_port":1e3,"http_port":2,"version":"v"}', DECODE_FAILED),
        (b'{"broadcast_address":"a","tcp_port":NaN,"http_port":2,"version":"v"}', DECODE_FAILED),
        (b"", DECODE_FAILED),
        (b"[]", DECODE_FAILED),
        (b'"x"', DECODE_FAILED),
        (b"1", DECODE_FAILED),
        (b"{} {}", DECODE_FAILED),
        (b"{,}", DECODE_FAILED),
        (b"\xef\xbb\xbf{}", DECODE_FAILED),
        (b"[" * 100_000, DECODE_FAILED),
    ],
)
def test_identify_json_errors(body: bytes, text: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_lookup_identify(body)
    assert caught.value.frame_data == text


# -- responses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"OK", bytes.fromhex("00 00 00 02 4F 4B")),
        (b"", bytes.fromhex("00 00 00 00")),
        (b'{"version":"1.3.0"}', bytes.fromhex("00 00 00 13") + b'{"version":"1.3.0"}'),
        (b"x" * 256, bytes.fromhex("00 00 01 00") + b"x" * 256),
    ],
)
def test_encode_v1_response(data: bytes, wire: bytes) -> None:
    assert encode_v1_response(data) == wire


@pytest.mark.parametrize(
    ("error", "wire"),
    [
        (ProtocolError("E_BAD_PROTOCOL"), bytes.fromhex("00 00 00 0E") + b"E_BAD_PROTOCOL"),
        (
            ProtocolError("E_INVALID", "client must IDENTIFY"),
            bytes.fromhex("00 00 00 1E") + b"E_INVALID client must IDENTIFY",
        ),
    ],
)
def test_encode_v1_error(error: ProtocolError, wire: bytes) -> None:
    assert encode_v1_error(error) == wire


# -- client encoders (go-nsq Command.WriteTo) -----------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "wire"),
    [
        (encode_ping(), b"PING\n"),
        (encode_register("t"), b"REGISTER t\n"),
        (encode_register("t", "c"), b"REGISTER t c\n"),
        (encode_register("t", ""), b"REGISTER t\n"),
        (encode_register("t", None), b"REGISTER t\n"),
        (encode_unregister("t"), b"UNREGISTER t\n"),
        (encode_unregister("t#ephemeral", "c#ephemeral"), b"UNREGISTER t#ephemeral c#ephemeral\n"),
        (encode_unregister("t", ""), b"UNREGISTER t\n"),
        (v1_magic(), b"  V1"),
    ],
)
def test_client_encoders(encoded: bytes, wire: bytes) -> None:
    assert encoded == wire


def test_encode_identify_as_nsqd_sends_it() -> None:
    info = {
        "version": "1.3.0",
        "tcp_port": 4150,
        "http_port": 4151,
        "hostname": "host",
        "broadcast_address": "host.example",
    }
    assert encode_identify(info) == b"IDENTIFY\n" + struct.pack(">I", len(NSQD_INFO)) + NSQD_INFO


@pytest.mark.parametrize(
    ("value", "json_text"),
    [
        ("a<b>&c", b'"a\\u003cb\\u003e\\u0026c"'),  # json.Marshal's HTML-safe escapes
        ("caf\u00e9", b'"caf\xc3\xa9"'),  # raw UTF-8, not \u escapes
        ("\u2028\u2029", b'"\\u2028\\u2029"'),
        ('q"\\', b'"q\\"\\\\"'),
        ("\\<", b'"\\\\\\u003c"'),
        ("bad\udcff", b'"bad\xef\xbf\xbd"'),  # an invalid byte kept by surrogateescape
        (True, b"true"),
        (-7, b"-7"),
    ],
)
def test_encode_identify_escapes_like_go(value: object, json_text: bytes) -> None:
    body = b'{"k":' + json_text + b"}"
    assert encode_identify({"k": value}) == b"IDENTIFY\n" + struct.pack(">I", len(body)) + body


def test_encoders_round_trip_through_the_server() -> None:
    info = {"version": "1.3.0", "tcp_port": 1, "http_port": 2, "broadcast_address": "b<&>"}
    data = (
        v1_magic()
        + encode_ping()
        + encode_identify(info)
        + encode_register("t")
        + encode_register("t", "c")
        + encode_unregister("t", "c")
        + encode_unregister("t")
    )
    assert parse_chunks(byte_chunks(data)) == [
        LookupPing(),
        LookupIdentify(PeerIdentity("b<&>", 1, 2, "1.3.0")),
        LookupRegister("t"),
        LookupRegister("t", "c"),
        LookupUnregister("t", "c"),
        LookupUnregister("t"),
    ]


# -- response decoder (nsqd's readResponseBounded) ------------------------------------------------

RESPONSES = [b"OK", b"", NSQD_INFO, b"E_INVALID client must IDENTIFY", b"\0" * 300]


@pytest.mark.parametrize("split", ["byte-by-byte", "all-at-once", "random"])
def test_decoder_round_trip(split: str) -> None:
    wire = b"".join(encode_v1_response(data) for data in RESPONSES)
    chunks = {
        "byte-by-byte": byte_chunks(wire),
        "all-at-once": [wire],
        "random": random_chunks(wire, 1, 9),
    }[split]
    decoder = V1ResponseDecoder()
    decoded: list[bytes] = []
    for chunk in chunks:
        decoder.feed(chunk)
        while (response := decoder.next_response()) is not None:
            decoded.append(response)
    assert decoded == RESPONSES
    assert decoder.next_response() is None


def test_decoder_waits_for_whole_response() -> None:
    decoder = V1ResponseDecoder()
    wire = encode_v1_response(b"OK")
    for index in range(len(wire) - 1):
        decoder.feed(wire[index : index + 1])
        assert decoder.next_response() is None
    decoder.feed(wire[-1:])
    assert decoder.next_response() == b"OK"


def test_decoder_bound() -> None:
    decoder = V1ResponseDecoder(max_size=10)
    decoder.feed(encode_v1_response(b"x" * 10))
    assert decoder.next_response() == b"x" * 10
    decoder.feed(struct.pack(">I", 11)[:3])
    assert decoder.next_response() is None
    decoder.feed(struct.pack(">I", 11)[3:])  # fires on the size alone, before any body
    with pytest.raises(ValueError, match=r"response body size \(11\) is greater than limit \(10\)"):
        decoder.next_response()


def test_decoder_rejects_negative_size() -> None:
    decoder = V1ResponseDecoder()
    decoder.feed(i32(-1))
    with pytest.raises(ValueError, match=r"response body size \(-1\) is negative"):
        decoder.next_response()

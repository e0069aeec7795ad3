"""The sans-IO V2 command parser against nsqd v1.3.0's protocol_v2.go / tcp.go.

Every test drives V2ServerConnection synchronously with bytes: no sockets, no trio.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable, Sequence

import pytest

from trinsq.protocol import (
    BUSY,
    CLOSED,
    MAGIC_V2,
    NEED_DATA,
    NON_FATAL_CODES,
    Auth,
    ClientState,
    Close,
    Command,
    ConnectionMustClose,
    DeferredPublish,
    Finish,
    Identify,
    Limits,
    MultiPublish,
    Nop,
    ProtocolError,
    Publish,
    Ready,
    Requeue,
    Subscribe,
    Touch,
    V2ServerConnection,
)

MSG_ID = b"0123456789abcdef"
INIT, SUBSCRIBED, CLOSING = ClientState.INIT, ClientState.SUBSCRIBED, ClientState.CLOSING
UINT64_MAX = b"18446744073709551615"


# -- helpers --------------------------------------------------------------------------------------


def i32(value: int) -> bytes:
    return struct.pack(">i", value)


def sized(data: bytes) -> bytes:
    return i32(len(data)) + data


def identify(body: bytes = b'{"client_id":"c"}') -> bytes:
    return b"IDENTIFY\n" + sized(body)


def auth(secret: bytes = b"secret") -> bytes:
    return b"AUTH\n" + sized(secret)


def pub(topic: bytes, body: bytes) -> bytes:
    return b"PUB " + topic + b"\n" + sized(body)


def dpub(topic: bytes, defer: bytes, body: bytes) -> bytes:
    return b"DPUB " + topic + b" " + defer + b"\n" + sized(body)


def mpub_body(bodies: Sequence[bytes]) -> bytes:
    return i32(len(bodies)) + b"".join(sized(body) for body in bodies)


def mpub(topic: bytes, bodies: Sequence[bytes]) -> bytes:
    return b"MPUB " + topic + b"\n" + sized(mpub_body(bodies))


def connection(
    state: ClientState = INIT,
    limits: Limits | None = None,
    *,
    magic: bool = False,
    tls_required: bool = False,
    heartbeats_disabled: bool = False,
) -> V2ServerConnection:
    conn = V2ServerConnection(limits or Limits(), expect_magic=magic)
    conn.state = state
    conn.tls_required = tls_required
    conn.heartbeats_disabled = heartbeats_disabled
    return conn


def drain(conn: V2ServerConnection) -> list[Command]:
    """Pull commands until the parser wants more bytes or the stream is over, acting like the
    broker where the parser depends on it (a successful SUB moves the client to Subscribed)."""
    commands: list[Command] = []
    while True:
        result = conn.next_command()
        if result is NEED_DATA or result is CLOSED:
            return commands
        if result is BUSY:
            continue  # a step of a large MPUB
        commands.append(result)
        if isinstance(result, Subscribe):
            conn.subscribed()


def parse_chunks(conn: V2ServerConnection, chunks: Iterable[bytes], *, eof: bool) -> list[Command]:
    commands = drain(conn)
    for chunk in chunks:
        conn.receive_data(chunk)
        commands += drain(conn)
    if eof:
        conn.receive_data(b"")
        commands += drain(conn)
        assert conn.next_command() is CLOSED
    return commands


def parse_all(
    data: bytes,
    state: ClientState = INIT,
    *,
    limits: Limits | None = None,
    magic: bool = False,
    heartbeats_disabled: bool = False,
) -> list[Command]:
    conn = connection(state, limits, magic=magic, heartbeats_disabled=heartbeats_disabled)
    return parse_chunks(conn, [data], eof=True)


def error_for(
    data: bytes,
    state: ClientState = INIT,
    *,
    limits: Limits | None = None,
    tls_required: bool = False,
    heartbeats_disabled: bool = False,
) -> ProtocolError:
    conn = connection(
        state, limits, tls_required=tls_required, heartbeats_disabled=heartbeats_disabled
    )
    with pytest.raises(ProtocolError) as caught:
        parse_chunks(conn, [data], eof=False)
    return caught.value


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


# -- magic (nsqd/tcp.go Handle) -------------------------------------------------------------------


def test_magic_constant() -> None:
    assert MAGIC_V2 == b"  V2" == bytes.fromhex("20205632")


def test_correct_magic_then_commands() -> None:
    conn = connection(magic=True)
    conn.receive_data(b"  V2")
    assert conn.next_command() is NEED_DATA
    conn.receive_data(b"NOP\n")
    assert conn.next_command() == Nop()
    assert conn.next_command() is NEED_DATA


def test_magic_and_command_in_one_chunk() -> None:
    assert parse_all(b"  V2NOP\nNOP\n", magic=True) == [Nop(), Nop()]


@pytest.mark.parametrize(
    "magic", [b"  V1", b"  v2", b"V2  ", b" V2 ", b"\x00\x00\x00\x00", b"GET ", b"NOP\n", b"  V3"]
)
def test_wrong_magic(magic: bytes) -> None:
    conn = connection(magic=True)
    for byte in magic[:3]:
        conn.receive_data(bytes([byte]))
        assert conn.next_command() is NEED_DATA  # nothing is judged before 4 bytes
    conn.receive_data(magic[3:] + b"NOP\n")
    with pytest.raises(ProtocolError) as caught:
        conn.next_command()
    error = caught.value
    assert error.code == "E_BAD_PROTOCOL"
    assert error.description == ""
    assert error.frame_data == b"E_BAD_PROTOCOL"
    assert error.fatal


@pytest.mark.parametrize("prefix", [b"", b" ", b"  ", b"  V", b"xyz"])
def test_eof_before_magic_closes_silently(prefix: bytes) -> None:
    conn = connection(magic=True)
    if prefix:  # receive_data(b"") would already be the EOF
        conn.receive_data(prefix)
    assert conn.next_command() is NEED_DATA
    conn.receive_data(b"")
    assert conn.next_command() is CLOSED
    assert conn.next_command() is CLOSED
    assert conn.read_failure() is None


def test_eof_right_after_magic() -> None:
    assert parse_all(b"  V2", magic=True) == []


def test_without_magic_expected() -> None:
    assert parse_all(b"NOP\n") == [Nop()]
    # "  V2" is not a command: it reads as a line once a newline comes
    with pytest.raises(ProtocolError) as caught:
        parse_all(b"  V2\n")
    assert caught.value.frame_data == b"E_INVALID invalid command "


# -- successful parses ----------------------------------------------------------------------------

SUCCESS_CASES: list[tuple[str, ClientState, bytes, Command]] = [
    ("identify", INIT, identify(b'{"a":1}'), Identify(b'{"a":1}')),
    ("identify-not-json", INIT, identify(b"\x00\xff"), Identify(b"\x00\xff")),
    ("identify-params-ignored", INIT, b"IDENTIFY x y\n" + sized(b"{}"), Identify(b"{}")),
    ("auth", INIT, auth(b"s3cr3t"), Auth(b"s3cr3t")),
    ("auth-binary", INIT, auth(b"\n\x00 "), Auth(b"\n\x00 ")),
    ("sub", INIT, b"SUB orders archive\n", Subscribe("orders", "archive")),
    ("sub-crlf", INIT, b"SUB orders archive\r\n", Subscribe("orders", "archive")),
    (
        "sub-ephemeral",
        INIT,
        b"SUB t#ephemeral c#ephemeral\n",
        Subscribe("t#ephemeral", "c#ephemeral"),
    ),
    ("sub-64", INIT, b"SUB " + b"t" * 64 + b" " + b"c" * 64 + b"\n", Subscribe("t" * 64, "c" * 64)),
    ("sub-extra-params", INIT, b"SUB t c extra more\n", Subscribe("t", "c")),
    ("sub-odd-chars", INIT, b"SUB a.b_c-D 0.9_-\n", Subscribe("a.b_c-D", "0.9_-")),
    ("pub", INIT, pub(b"t", b"hello"), Publish("t", b"hello")),
    ("pub-binary", INIT, pub(b"t", b"a\nb\r\n\x00"), Publish("t", b"a\nb\r\n\x00")),
    ("pub-extra-params", INIT, b"PUB t x\n" + sized(b"m"), Publish("t", b"m")),
    ("pub-subscribed", SUBSCRIBED, pub(b"t", b"m"), Publish("t", b"m")),
    ("pub-closing", CLOSING, pub(b"t", b"m"), Publish("t", b"m")),
    ("pub-crlf", INIT, b"PUB t\r\n" + sized(b"m"), Publish("t", b"m")),
    (
        "mpub",
        INIT,
        mpub(b"t", [b"a", b"bc", b"\n\x00"]),
        MultiPublish("t", (b"a", b"bc", b"\n\x00")),
    ),
    ("mpub-one", INIT, mpub(b"t", [b"only"]), MultiPublish("t", (b"only",))),
    ("mpub-closing", CLOSING, mpub(b"t", [b"x"]), MultiPublish("t", (b"x",))),
    ("dpub", INIT, dpub(b"t", b"1000", b"later"), DeferredPublish("t", b"later", 1000)),
    ("dpub-zero", INIT, dpub(b"t", b"0", b"m"), DeferredPublish("t", b"m", 0)),
    ("dpub-empty-timeout", INIT, dpub(b"t", b"", b"m"), DeferredPublish("t", b"m", 0)),
    ("dpub-max", INIT, dpub(b"t", b"3600000", b"m"), DeferredPublish("t", b"m", 3_600_000)),
    ("dpub-leading-zeros", INIT, dpub(b"t", b"000042", b"m"), DeferredPublish("t", b"m", 42)),
    # uint64 wrap: 2**64 parses as 0
    (
        "dpub-wraps-to-zero",
        INIT,
        dpub(b"t", b"18446744073709551616", b"m"),
        DeferredPublish("t", b"m", 0),
    ),
    # 18446744073710 ms * 1e6 overflows int64 to 448384 ns: in range, so nsqd accepts it, and
    # as a non-zero delay it is deferred (rounded up to 1 ms here, never down to "now")
    (
        "dpub-overflow-in-range",
        INIT,
        dpub(b"t", b"18446744073710", b"m"),
        DeferredPublish("t", b"m", 1),
    ),
    ("rdy", SUBSCRIBED, b"RDY 10\n", Ready(10)),
    ("rdy-default", SUBSCRIBED, b"RDY\n", Ready(1)),
    ("rdy-empty", SUBSCRIBED, b"RDY \n", Ready(0)),
    ("rdy-zero", SUBSCRIBED, b"RDY 0\n", Ready(0)),
    ("rdy-max", SUBSCRIBED, b"RDY 2500\n", Ready(2500)),
    ("rdy-extra", SUBSCRIBED, b"RDY 5 6\n", Ready(5)),
    ("rdy-wraps-to-zero", SUBSCRIBED, b"RDY 18446744073709551616\n", Ready(0)),
    ("rdy-closing-ignored", CLOSING, b"RDY 10\n", Nop()),
    ("rdy-closing-unparsable", CLOSING, b"RDY abc\n", Nop()),
    ("rdy-closing-out-of-range", CLOSING, b"RDY 99999\n", Nop()),
    ("fin", SUBSCRIBED, b"FIN " + MSG_ID + b"\n", Finish(MSG_ID)),
    ("fin-closing", CLOSING, b"FIN " + MSG_ID + b"\n", Finish(MSG_ID)),
    (
        "fin-binary-id",
        SUBSCRIBED,
        b"FIN " + b"\x00\xff\r" * 5 + b"!\n",
        Finish(b"\x00\xff\r" * 5 + b"!"),
    ),
    ("fin-extra", SUBSCRIBED, b"FIN " + MSG_ID + b" x\n", Finish(MSG_ID)),
    ("touch", SUBSCRIBED, b"TOUCH " + MSG_ID + b"\n", Touch(MSG_ID)),
    ("touch-closing", CLOSING, b"TOUCH " + MSG_ID + b"\n", Touch(MSG_ID)),
    ("req", SUBSCRIBED, b"REQ " + MSG_ID + b" 5000\n", Requeue(MSG_ID, 5000, 5000)),
    ("req-zero", SUBSCRIBED, b"REQ " + MSG_ID + b" 0\n", Requeue(MSG_ID, 0, 0)),
    ("req-empty", SUBSCRIBED, b"REQ " + MSG_ID + b" \n", Requeue(MSG_ID, 0, 0)),
    ("req-closing", CLOSING, b"REQ " + MSG_ID + b" 1\n", Requeue(MSG_ID, 1, 1)),
    (
        "req-max",
        SUBSCRIBED,
        b"REQ " + MSG_ID + b" 3600000\n",
        Requeue(MSG_ID, 3_600_000, 3_600_000),
    ),
    # out of range is clamped (and logged), never an error
    (
        "req-clamped-high",
        SUBSCRIBED,
        b"REQ " + MSG_ID + b" 3600001\n",
        Requeue(MSG_ID, 3_600_000, 3_600_001),
    ),
    (
        "req-clamped-huge",
        SUBSCRIBED,
        b"REQ " + MSG_ID + b" 9223372036854\n",
        Requeue(MSG_ID, 3_600_000, 9_223_372_036_854),
    ),
    # wraps to 448384 ns: not clamped, and a non-zero REQ delay stays a deferred requeue
    (
        "req-overflow-sub-millisecond",
        SUBSCRIBED,
        b"REQ " + MSG_ID + b" 18446744073710\n",
        Requeue(MSG_ID, 1, 1),
    ),
    # wraps to -551616 ns: clamped to 0, and reported as a change (nsqd logs the clamp)
    (
        "req-overflow-negative-sub-millisecond",
        SUBSCRIBED,
        b"REQ " + MSG_ID + b" 18446744073709\n",
        Requeue(MSG_ID, 0, -1),
    ),
    (
        "req-clamped-negative",
        SUBSCRIBED,
        b"REQ " + MSG_ID + b" " + UINT64_MAX + b"\n",
        Requeue(MSG_ID, 0, -1),
    ),
    ("cls", SUBSCRIBED, b"CLS\n", Close()),
    ("cls-extra", SUBSCRIBED, b"CLS now\n", Close()),
    ("nop", INIT, b"NOP\n", Nop()),
    ("nop-params", INIT, b"NOP a b  c\n", Nop()),
    ("nop-subscribed", SUBSCRIBED, b"NOP\n", Nop()),
    ("nop-closing", CLOSING, b"NOP\r\n", Nop()),
]


@pytest.mark.parametrize(
    ("state", "data", "command"),
    [pytest.param(state, data, command, id=name) for name, state, data, command in SUCCESS_CASES],
)
def test_success(state: ClientState, data: bytes, command: Command) -> None:
    assert parse_all(data, state) == [command]


@pytest.mark.parametrize(
    ("state", "data", "command"),
    [pytest.param(state, data, command, id=name) for name, state, data, command in SUCCESS_CASES],
)
def test_success_byte_by_byte(state: ClientState, data: bytes, command: Command) -> None:
    conn = connection(state)
    results: list[Command] = []
    for index, chunk in enumerate(byte_chunks(data)):
        conn.receive_data(chunk)
        results += drain(conn)
        if index < len(data) - 1:
            assert results == [], "a command came out before its last byte"
    assert results == [command]
    assert conn.buffered == 0


@pytest.mark.parametrize(
    ("state", "data", "command"),
    [
        pytest.param(state, data, command, id=name)
        for name, state, data, command in SUCCESS_CASES
        if not data.split(b"\n", 1)[0].endswith(b"\r")
    ],
)
def test_success_with_crlf(state: ClientState, data: bytes, command: Command) -> None:
    line, rest = data.split(b"\n", 1)
    assert parse_all(line + b"\r\n" + rest, state) == [command]


def test_default_limits_are_nsqd_defaults() -> None:
    assert Limits() == Limits(
        max_msg_size=1_048_576,
        max_body_size=5_242_880,
        max_rdy_count=2500,
        max_req_timeout_ms=3_600_000,
        max_line_size=16_384,
    )


def test_cls_moves_to_closing() -> None:
    conn = connection(SUBSCRIBED)
    conn.receive_data(b"CLS\n")
    assert conn.next_command() == Close()
    assert conn.state is CLOSING


def test_sub_does_not_change_state_by_itself() -> None:
    conn = connection()
    conn.receive_data(b"SUB t c\n")
    assert conn.next_command() == Subscribe("t", "c")
    assert conn.state is INIT  # the broker decides; subscribed() moves on
    conn.subscribed()
    assert conn.state is SUBSCRIBED


def test_identify_repeatable_while_init() -> None:
    # nsqd answers a second IDENTIFY (its own tests send four on one connection)
    assert parse_all(identify(b"{}") + identify(b"{}")) == [Identify(b"{}"), Identify(b"{}")]


def test_state_numbers() -> None:
    assert [int(state) for state in ClientState] == [0, 1, 2, 3, 4]


# -- the same stream in every split ---------------------------------------------------------------

SESSION = (
    MAGIC_V2
    + identify(b'{"feature_negotiation":true,"client_id":"x"}')
    + auth(b"token")
    + pub(b"orders", b"first")
    + mpub(b"orders", [b"a", b"bb", b"c\nc"])
    + dpub(b"orders", b"2500", b"later")
    + b"NOP\r\n"
    + b"SUB orders archive\n"
    + b"RDY 10\n"
    + b"FIN "
    + MSG_ID
    + b"\n"
    + b"REQ "
    + MSG_ID
    + b" 100\r\n"
    + b"TOUCH "
    + MSG_ID
    + b"\n"
    + pub(b"other#ephemeral", b"\n\n\n")
    + b"CLS\n"
    + b"RDY 5\n"
    + b"FIN "
    + MSG_ID
    + b"\n"
    + b"NOP\n"
)

SESSION_COMMANDS: list[Command] = [
    Identify(b'{"feature_negotiation":true,"client_id":"x"}'),
    Auth(b"token"),
    Publish("orders", b"first"),
    MultiPublish("orders", (b"a", b"bb", b"c\nc")),
    DeferredPublish("orders", b"later", 2500),
    Nop(),
    Subscribe("orders", "archive"),
    Ready(10),
    Finish(MSG_ID),
    Requeue(MSG_ID, 100, 100),
    Touch(MSG_ID),
    Publish("other#ephemeral", b"\n\n\n"),
    Close(),
    Nop(),  # RDY after CLS
    Finish(MSG_ID),
    Nop(),
]

SPLITS = [
    pytest.param([SESSION], id="all-at-once"),
    pytest.param(byte_chunks(SESSION), id="byte-by-byte"),
    *[
        pytest.param(random_chunks(SESSION, seed, 8), id=f"random-8-seed{seed}")
        for seed in range(8)
    ],
    *[
        pytest.param(random_chunks(SESSION, seed, 40), id=f"random-40-seed{seed}")
        for seed in range(8)
    ],
    *[
        pytest.param(random_chunks(SESSION, seed, 200), id=f"random-200-seed{seed}")
        for seed in range(4)
    ],
]


@pytest.mark.parametrize("chunks", SPLITS)
def test_same_commands_in_every_split(chunks: list[bytes]) -> None:
    assert b"".join(chunks) == SESSION
    conn = connection(magic=True)
    assert parse_chunks(conn, chunks, eof=True) == SESSION_COMMANDS
    assert conn.state is CLOSING


def test_same_commands_for_every_two_way_split() -> None:
    for cut in range(len(SESSION) + 1):
        conn = connection(magic=True)
        commands = parse_chunks(conn, [SESSION[:cut], SESSION[cut:]], eof=True)
        assert commands == SESSION_COMMANDS, f"split at {cut}"


def test_many_commands_per_chunk() -> None:
    data = b"".join(pub(b"t", str(i).encode()) for i in range(500)) + b"NOP\n" * 500
    commands = parse_all(data)
    assert commands[:500] == [Publish("t", str(i).encode()) for i in range(500)]
    assert commands[500:] == [Nop()] * 500


# -- the 16 KiB line limit (bufio.Reader.ReadSlice with a 16 KiB buffer) --------------------------

MAX_LINE = 16_384


def test_default_line_limit() -> None:
    assert Limits().max_line_size == MAX_LINE


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"NOP" + b" " * (MAX_LINE - 4) + b"\n", id="exactly-16384-with-lf"),
        pytest.param(b"NOP" + b" " * (MAX_LINE - 5) + b"\r\n", id="exactly-16384-with-crlf"),
        pytest.param(b"NOP" + b" " * (MAX_LINE - 5) + b"\n", id="one-under"),
    ],
)
def test_line_at_limit_accepted(line: bytes) -> None:
    assert len(line) <= MAX_LINE
    assert parse_all(line) == [Nop()]
    conn = connection()
    assert parse_chunks(conn, byte_chunks(line), eof=True) == [Nop()]


def test_line_at_limit_accepted_after_magic() -> None:
    line = b"NOP" + b" " * (MAX_LINE - 4) + b"\n"
    assert parse_all(MAGIC_V2 + line, magic=True) == [Nop()]


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"NOP" + b" " * (MAX_LINE - 3) + b"\n", id="16385-with-lf"),
        pytest.param(b"NOP" + b" " * (MAX_LINE - 4) + b"\r\n", id="16385-with-crlf"),
        pytest.param(b"x" * 100_000 + b"\n", id="far-over"),
    ],
)
def test_line_over_limit_closes(line: bytes) -> None:
    conn = connection()
    conn.receive_data(line)
    with pytest.raises(ConnectionMustClose) as caught:
        conn.next_command()
    assert not isinstance(caught.value, ProtocolError)  # no error frame is sent


def test_line_limit_hit_before_newline_arrives() -> None:
    conn = connection()
    conn.receive_data(b"NOP" + b" " * (MAX_LINE - 4))  # 16383 bytes, no newline yet
    assert conn.next_command() is NEED_DATA
    conn.receive_data(b" ")  # the buffer is now full without a newline
    with pytest.raises(ConnectionMustClose):
        conn.next_command()


def test_line_limit_byte_by_byte() -> None:
    conn = connection()
    for _ in range(MAX_LINE - 1):
        conn.receive_data(b"x")
        assert conn.next_command() is NEED_DATA
    conn.receive_data(b"x")
    with pytest.raises(ConnectionMustClose):
        conn.next_command()


def test_line_limit_is_per_line() -> None:
    line = b"NOP" + b" " * 10_000 + b"\n"
    assert parse_all(line * 5) == [Nop()] * 5


def test_line_limit_ignores_bodies() -> None:
    body = b"b" * (3 * MAX_LINE)
    assert parse_all(pub(b"t", body) + b"NOP\n") == [Publish("t", body), Nop()]


@pytest.mark.parametrize("size", [1, 5, 10])
def test_custom_line_limit(size: int) -> None:
    limits = Limits(max_line_size=size)
    fits = b"NOP" + b" " * (size - 4) + b"\n" if size >= 4 else None
    if fits is not None:
        assert parse_all(fits, limits=limits) == [Nop()]
    conn = connection(limits=limits)
    conn.receive_data(b"N" * size)
    with pytest.raises(ConnectionMustClose):
        conn.next_command()


def test_eof_mid_line_closes_silently() -> None:
    conn = connection()
    conn.receive_data(b"NOP\nPUB t")
    assert conn.next_command() == Nop()
    assert conn.next_command() is NEED_DATA
    assert conn.read_failure() is None  # a line cut short is not a body read failure
    conn.receive_data(b"")
    assert conn.next_command() is CLOSED


def test_commands_buffered_before_eof_still_come_out() -> None:
    conn = connection()
    conn.receive_data(b"NOP\nNOP\n")
    conn.receive_data(b"")
    assert conn.next_command() == Nop()
    assert conn.next_command() == Nop()
    assert conn.next_command() is CLOSED


# -- errors: every text, in nsqd's check order ----------------------------------------------------

SMALL = Limits(max_msg_size=100, max_body_size=1000, max_rdy_count=50, max_req_timeout_ms=60_000)
BIG_ID = MSG_ID + b"x"
SHORT_ID = MSG_ID[:-1]

# (id, state, stream, limits or None, expected frame data)
ERROR_CASES: list[tuple[str, ClientState, bytes, Limits | None, bytes]] = [
    # -- invalid command
    ("asdf", INIT, b"ASDF\n", None, b"E_INVALID invalid command ASDF"),
    (
        "invalid-command",
        INIT,
        b"INVALID_COMMAND\n",
        None,
        b"E_INVALID invalid command INVALID_COMMAND",
    ),
    ("empty-line", INIT, b"\n", None, b"E_INVALID invalid command "),
    ("empty-crlf-line", INIT, b"\r\n", None, b"E_INVALID invalid command "),
    ("leading-space", INIT, b" NOP\n", None, b"E_INVALID invalid command "),
    ("lowercase", INIT, b"nop\n", None, b"E_INVALID invalid command nop"),
    ("only-one-cr-stripped", INIT, b"NOP\r\r\n", None, b"E_INVALID invalid command NOP\r"),
    ("cr-inside", INIT, b"NO\rP\n", None, b"E_INVALID invalid command NO\rP"),
    ("raw-bytes-echoed", INIT, b"\xff\xfeX\n", None, b"E_INVALID invalid command \xff\xfeX"),
    ("tab-not-separator", INIT, b"NOP\tx\n", None, b"E_INVALID invalid command NOP\tx"),
    ("magic-like", SUBSCRIBED, b"V2\n", None, b"E_INVALID invalid command V2"),
    # -- IDENTIFY
    (
        "identify-subscribed",
        SUBSCRIBED,
        identify(),
        None,
        b"E_INVALID cannot IDENTIFY in current state",
    ),
    ("identify-closing", CLOSING, identify(), None, b"E_INVALID cannot IDENTIFY in current state"),
    (
        "identify-too-big",
        INIT,
        b"IDENTIFY\n" + i32(5_242_881),
        None,
        b"E_BAD_BODY IDENTIFY body too big 5242881 > 5242880",
    ),
    (
        "identify-too-big-small",
        INIT,
        b"IDENTIFY\n" + i32(1001),
        SMALL,
        b"E_BAD_BODY IDENTIFY body too big 1001 > 1000",
    ),
    (
        "identify-zero",
        INIT,
        b"IDENTIFY\n" + i32(0),
        None,
        b"E_BAD_BODY IDENTIFY invalid body size 0",
    ),
    (
        "identify-negative",
        INIT,
        b"IDENTIFY\n" + i32(-1),
        None,
        b"E_BAD_BODY IDENTIFY invalid body size -1",
    ),
    (
        "identify-int32-min",
        INIT,
        b"IDENTIFY\n\x80\x00\x00\x00",
        None,
        b"E_BAD_BODY IDENTIFY invalid body size -2147483648",
    ),
    # -- AUTH
    ("auth-subscribed", SUBSCRIBED, auth(), None, b"E_INVALID cannot AUTH in current state"),
    ("auth-closing", CLOSING, b"AUTH x\n", None, b"E_INVALID cannot AUTH in current state"),
    (
        "auth-param",
        INIT,
        b"AUTH secret\n" + sized(b"s"),
        None,
        b"E_INVALID AUTH invalid number of parameters",
    ),
    ("auth-empty-param", INIT, b"AUTH \n", None, b"E_INVALID AUTH invalid number of parameters"),
    (
        "auth-too-big",
        INIT,
        b"AUTH\n" + i32(5_242_881),
        None,
        b"E_BAD_BODY AUTH body too big 5242881 > 5242880",
    ),
    ("auth-zero", INIT, b"AUTH\n" + i32(0), None, b"E_BAD_BODY AUTH invalid body size 0"),
    ("auth-negative", INIT, b"AUTH\n" + i32(-7), None, b"E_BAD_BODY AUTH invalid body size -7"),
    # -- SUB
    ("sub-subscribed", SUBSCRIBED, b"SUB t c\n", None, b"E_INVALID cannot SUB in current state"),
    ("sub-closing", CLOSING, b"SUB t c\n", None, b"E_INVALID cannot SUB in current state"),
    ("sub-no-params", INIT, b"SUB\n", None, b"E_INVALID SUB insufficient number of parameters"),
    ("sub-one-param", INIT, b"SUB t\n", None, b"E_INVALID SUB insufficient number of parameters"),
    (
        "sub-bad-topic",
        INIT,
        b"SUB bad!topic c\n",
        None,
        b'E_BAD_TOPIC SUB topic name "bad!topic" is not valid',
    ),
    (
        "sub-bad-both",
        INIT,
        b"SUB bad! bad?\n",
        None,
        b'E_BAD_TOPIC SUB topic name "bad!" is not valid',
    ),
    ("sub-empty-topic", INIT, b"SUB  t c\n", None, b'E_BAD_TOPIC SUB topic name "" is not valid'),
    (
        "sub-long-topic",
        INIT,
        b"SUB " + b"t" * 65 + b" c\n",
        None,
        b'E_BAD_TOPIC SUB topic name "' + b"t" * 65 + b'" is not valid',
    ),
    (
        "sub-bad-channel",
        INIT,
        b"SUB t bad!chan\n",
        None,
        b'E_BAD_CHANNEL SUB channel name "bad!chan" is not valid',
    ),
    (
        "sub-empty-channel",
        INIT,
        b"SUB t  c\n",
        None,
        b'E_BAD_CHANNEL SUB channel name "" is not valid',
    ),
    (
        "sub-long-channel",
        INIT,
        b"SUB t " + b"c" * 65 + b"\n",
        None,
        b'E_BAD_CHANNEL SUB channel name "' + b"c" * 65 + b'" is not valid',
    ),
    (
        "sub-channel-cr",
        INIT,
        b"SUB t c\r\r\n",
        None,
        b'E_BAD_CHANNEL SUB channel name "c\\r" is not valid',
    ),
    (
        "sub-channel-suffix-only",
        INIT,
        b"SUB t #ephemeral\n",
        None,
        b'E_BAD_CHANNEL SUB channel name "#ephemeral" is not valid',
    ),
    # Go %q of odd bytes
    (
        "quote-nul",
        INIT,
        b"SUB a\x00b c\n",
        None,
        b'E_BAD_TOPIC SUB topic name "a\\x00b" is not valid',
    ),
    ("quote-tab", INIT, b"SUB a\tb c\n", None, b'E_BAD_TOPIC SUB topic name "a\\tb" is not valid'),
    ("quote-cr", INIT, b"SUB a\rb c\n", None, b'E_BAD_TOPIC SUB topic name "a\\rb" is not valid'),
    (
        "quote-dquote",
        INIT,
        b'SUB a"b c\n',
        None,
        b'E_BAD_TOPIC SUB topic name "a\\"b" is not valid',
    ),
    (
        "quote-backslash",
        INIT,
        b"SUB a\\b c\n",
        None,
        b'E_BAD_TOPIC SUB topic name "a\\\\b" is not valid',
    ),
    (
        "quote-escape",
        INIT,
        b"SUB a\x1bb c\n",
        None,
        b'E_BAD_TOPIC SUB topic name "a\\x1bb" is not valid',
    ),
    ("quote-del", INIT, b"SUB \x7f c\n", None, b'E_BAD_TOPIC SUB topic name "\\x7f" is not valid'),
    (
        "quote-invalid-utf8",
        INIT,
        b"SUB \xff\xfe c\n",
        None,
        b'E_BAD_TOPIC SUB topic name "\\xff\\xfe" is not valid',
    ),
    (
        "quote-utf8",
        INIT,
        "SUB café c\n".encode(),
        None,
        'E_BAD_TOPIC SUB topic name "café" is not valid'.encode(),
    ),
    (
        "quote-nel",
        INIT,
        "SUB a\u0085 c\n".encode(),
        None,
        b'E_BAD_TOPIC SUB topic name "a\\u0085" is not valid',
    ),
    (
        "quote-emoji",
        INIT,
        "SUB t \U0001f600\n".encode(),
        None,
        'E_BAD_CHANNEL SUB channel name "\U0001f600" is not valid'.encode(),
    ),
    # -- PUB
    ("pub-no-params", INIT, b"PUB\n", None, b"E_INVALID PUB insufficient number of parameters"),
    (
        "pub-bad-topic",
        INIT,
        b"PUB bad!topic\n",
        None,
        b'E_BAD_TOPIC PUB topic name "bad!topic" is not valid',
    ),
    ("pub-empty-topic", INIT, b"PUB \n", None, b'E_BAD_TOPIC PUB topic name "" is not valid'),
    ("pub-zero", INIT, b"PUB t\n" + i32(0), None, b"E_BAD_MESSAGE PUB invalid message body size 0"),
    (
        "pub-negative",
        INIT,
        b"PUB t\n" + i32(-5),
        None,
        b"E_BAD_MESSAGE PUB invalid message body size -5",
    ),
    (
        "pub-int32-min",
        INIT,
        b"PUB t\n\x80\x00\x00\x00",
        None,
        b"E_BAD_MESSAGE PUB invalid message body size -2147483648",
    ),
    (
        "pub-too-big",
        INIT,
        b"PUB t\n" + i32(1_048_577),
        None,
        b"E_BAD_MESSAGE PUB message too big 1048577 > 1048576",
    ),
    (
        "pub-too-big-small",
        INIT,
        pub(b"t", bytes(105)),
        SMALL,
        b"E_BAD_MESSAGE PUB message too big 105 > 100",
    ),
    (
        "pub-int32-max",
        INIT,
        b"PUB t\n\x7f\xff\xff\xff",
        None,
        b"E_BAD_MESSAGE PUB message too big 2147483647 > 1048576",
    ),
    # -- DPUB
    ("dpub-no-params", INIT, b"DPUB\n", None, b"E_INVALID DPUB insufficient number of parameters"),
    (
        "dpub-one-param",
        INIT,
        b"DPUB t\n",
        None,
        b"E_INVALID DPUB insufficient number of parameters",
    ),
    (
        "dpub-bad-topic",
        INIT,
        b"DPUB bad! 10\n",
        None,
        b'E_BAD_TOPIC DPUB topic name "bad!" is not valid',
    ),
    (
        "dpub-bad-topic-first",
        INIT,
        b"DPUB bad! xyz\n",
        None,
        b'E_BAD_TOPIC DPUB topic name "bad!" is not valid',
    ),
    ("dpub-unparsable", INIT, b"DPUB t abc\n", None, b"E_INVALID DPUB could not parse timeout abc"),
    ("dpub-minus", INIT, b"DPUB t -1\n", None, b"E_INVALID DPUB could not parse timeout -1"),
    ("dpub-plus", INIT, b"DPUB t +1\n", None, b"E_INVALID DPUB could not parse timeout +1"),
    (
        "dpub-raw-bytes",
        INIT,
        b"DPUB t 1\xff\n",
        None,
        b"E_INVALID DPUB could not parse timeout 1\xff",
    ),
    (
        "dpub-over",
        INIT,
        b"DPUB t 3600001\n",
        None,
        b"E_INVALID DPUB timeout 3600001 out of range 0-3600000",
    ),
    (
        "dpub-over-go-test",
        INIT,
        b"DPUB t 3600100\n",
        None,
        b"E_INVALID DPUB timeout 3600100 out of range 0-3600000",
    ),
    (
        "dpub-over-small",
        INIT,
        b"DPUB t 60001\n",
        SMALL,
        b"E_INVALID DPUB timeout 60001 out of range 0-60000",
    ),
    # negative once converted to time.Duration; the text shows the uint64 that was sent
    (
        "dpub-uint64-max",
        INIT,
        b"DPUB t " + UINT64_MAX + b"\n",
        None,
        b"E_INVALID DPUB timeout 18446744073709551615 out of range 0-3600000",
    ),
    (
        "dpub-wraps-negative-sub-millisecond",
        INIT,
        b"DPUB t 18446744073709\n",
        None,
        b"E_INVALID DPUB timeout 18446744073709 out of range 0-3600000",
    ),
    (
        "dpub-int64-overflow",
        INIT,
        b"DPUB t 9223372036855\n",
        None,
        b"E_INVALID DPUB timeout 9223372036855 out of range 0-3600000",
    ),
    # what parsing made of the digits (wrapped modulo 2**64) is what is shown
    (
        "dpub-shows-wrapped",
        INIT,
        b"DPUB t 18446744073713151617\n",  # 2**64 + 3600001
        None,
        b"E_INVALID DPUB timeout 3600001 out of range 0-3600000",
    ),
    (
        "dpub-zero",
        INIT,
        b"DPUB t 10\n" + i32(0),
        None,
        b"E_BAD_MESSAGE DPUB invalid message body size 0",
    ),
    (
        "dpub-negative",
        INIT,
        b"DPUB t 10\n" + i32(-1),
        None,
        b"E_BAD_MESSAGE DPUB invalid message body size -1",
    ),
    (
        "dpub-too-big",
        INIT,
        b"DPUB t 10\n" + i32(1_048_577),
        None,
        b"E_BAD_MESSAGE DPUB message too big 1048577 > 1048576",
    ),
    # -- MPUB
    ("mpub-no-params", INIT, b"MPUB\n", None, b"E_INVALID MPUB insufficient number of parameters"),
    (
        "mpub-bad-topic",
        INIT,
        b"MPUB bad!\n",
        None,
        b'E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "bad!" is not valid',
    ),
    ("mpub-zero", INIT, b"MPUB t\n" + i32(0), None, b"E_BAD_BODY MPUB invalid body size 0"),
    ("mpub-negative", INIT, b"MPUB t\n" + i32(-3), None, b"E_BAD_BODY MPUB invalid body size -3"),
    (
        "mpub-too-big",
        INIT,
        b"MPUB t\n" + i32(5_242_881),
        None,
        b"E_BAD_BODY MPUB body too big 5242881 > 5242880",
    ),
    (
        "mpub-too-big-go-test",
        INIT,
        mpub(b"t", [bytes(100)] * 11),
        SMALL,
        b"E_BAD_BODY MPUB body too big 1148 > 1000",
    ),
    (
        "mpub-count-zero",
        INIT,
        b"MPUB t\n" + i32(8) + i32(0),
        None,
        b"E_BAD_BODY MPUB invalid message count 0",
    ),
    (
        "mpub-count-negative",
        INIT,
        b"MPUB t\n" + i32(8) + i32(-1),
        None,
        b"E_BAD_BODY MPUB invalid message count -1",
    ),
    # (max_body_size - 4) / 5 messages at most
    (
        "mpub-count-over",
        INIT,
        b"MPUB t\n" + i32(100) + i32(1_048_576),
        None,
        b"E_BAD_BODY MPUB invalid message count 1048576",
    ),
    (
        "mpub-count-over-small",
        INIT,
        b"MPUB t\n" + i32(100) + i32(200),
        SMALL,
        b"E_BAD_BODY MPUB invalid message count 200",
    ),
    (
        "mpub-message-zero-go-test",
        INIT,
        mpub(b"t", [bytes(100)] * 5 + [b""]),
        SMALL,
        b"E_BAD_MESSAGE MPUB invalid message(5) body size 0",
    ),
    (
        "mpub-message-negative",
        INIT,
        b"MPUB t\n" + i32(100) + i32(3) + sized(b"a") + i32(-2),
        None,
        b"E_BAD_MESSAGE MPUB invalid message(1) body size -2",
    ),
    (
        "mpub-message-zero-first",
        INIT,
        b"MPUB t\n" + i32(100) + i32(3) + i32(0),
        None,
        b"E_BAD_MESSAGE MPUB invalid message(0) body size 0",
    ),
    (
        "mpub-message-too-big-go-test",
        INIT,
        mpub(b"t", [bytes(101)] * 5),
        SMALL,
        b"E_BAD_MESSAGE MPUB message too big 101 > 100",
    ),
    (
        "mpub-message-too-big",
        INIT,
        b"MPUB t\n" + i32(2_000_000) + i32(2) + sized(b"a") + i32(1_048_577),
        None,
        b"E_BAD_MESSAGE MPUB message too big 1048577 > 1048576",
    ),
    # -- RDY
    ("rdy-init", INIT, b"RDY 1\n", None, b"E_INVALID cannot RDY in current state"),
    ("rdy-unparsable", SUBSCRIBED, b"RDY abc\n", None, b"E_INVALID RDY could not parse count abc"),
    ("rdy-minus", SUBSCRIBED, b"RDY -1\n", None, b"E_INVALID RDY could not parse count -1"),
    ("rdy-raw-bytes", SUBSCRIBED, b"RDY \xff\n", None, b"E_INVALID RDY could not parse count \xff"),
    ("rdy-over", SUBSCRIBED, b"RDY 2501\n", None, b"E_INVALID RDY count 2501 out of range 0-2500"),
    (
        "rdy-over-go-test",
        SUBSCRIBED,
        b"RDY 51\n",
        SMALL,
        b"E_INVALID RDY count 51 out of range 0-50",
    ),
    # int64(uint64) conversion: big values turn negative
    (
        "rdy-uint64-max",
        SUBSCRIBED,
        b"RDY " + UINT64_MAX + b"\n",
        None,
        b"E_INVALID RDY count -1 out of range 0-2500",
    ),
    (
        "rdy-int64-min",
        SUBSCRIBED,
        b"RDY 9223372036854775808\n",
        None,
        b"E_INVALID RDY count -9223372036854775808 out of range 0-2500",
    ),
    (
        "rdy-int64-max",
        SUBSCRIBED,
        b"RDY 9223372036854775807\n",
        None,
        b"E_INVALID RDY count 9223372036854775807 out of range 0-2500",
    ),
    # -- FIN / TOUCH / REQ
    ("fin-init", INIT, b"FIN " + MSG_ID + b"\n", None, b"E_INVALID cannot FIN in current state"),
    ("fin-no-params", SUBSCRIBED, b"FIN\n", None, b"E_INVALID FIN insufficient number of params"),
    ("fin-empty-id", SUBSCRIBED, b"FIN \n", None, b"E_INVALID invalid message ID"),
    ("fin-short-id", SUBSCRIBED, b"FIN " + SHORT_ID + b"\n", None, b"E_INVALID invalid message ID"),
    ("fin-long-id", SUBSCRIBED, b"FIN " + BIG_ID + b"\n", None, b"E_INVALID invalid message ID"),
    (
        "fin-id-with-cr",
        SUBSCRIBED,
        b"FIN " + MSG_ID + b"\r\r\n",
        None,
        b"E_INVALID invalid message ID",
    ),
    (
        "touch-init",
        INIT,
        b"TOUCH " + MSG_ID + b"\n",
        None,
        b"E_INVALID cannot TOUCH in current state",
    ),
    (
        "touch-no-params",
        CLOSING,
        b"TOUCH\n",
        None,
        b"E_INVALID TOUCH insufficient number of params",
    ),
    (
        "touch-bad-id",
        SUBSCRIBED,
        b"TOUCH " + SHORT_ID + b"\n",
        None,
        b"E_INVALID invalid message ID",
    ),
    ("req-init", INIT, b"REQ " + MSG_ID + b" 0\n", None, b"E_INVALID cannot REQ in current state"),
    ("req-no-params", SUBSCRIBED, b"REQ\n", None, b"E_INVALID REQ insufficient number of params"),
    (
        "req-one-param",
        SUBSCRIBED,
        b"REQ " + MSG_ID + b"\n",
        None,
        b"E_INVALID REQ insufficient number of params",
    ),
    ("req-bad-id", SUBSCRIBED, b"REQ " + SHORT_ID + b" 0\n", None, b"E_INVALID invalid message ID"),
    (
        "req-bad-id-first",
        SUBSCRIBED,
        b"REQ " + SHORT_ID + b" abc\n",
        None,
        b"E_INVALID invalid message ID",
    ),
    (
        "req-unparsable",
        SUBSCRIBED,
        b"REQ " + MSG_ID + b" abc\n",
        None,
        b"E_INVALID REQ could not parse timeout abc",
    ),
    (
        "req-minus",
        CLOSING,
        b"REQ " + MSG_ID + b" -1\n",
        None,
        b"E_INVALID REQ could not parse timeout -1",
    ),
    # -- CLS
    ("cls-init", INIT, b"CLS\n", None, b"E_INVALID cannot CLS in current state"),
    ("cls-closing", CLOSING, b"CLS\n", None, b"E_INVALID cannot CLS in current state"),
]


@pytest.mark.parametrize(
    ("state", "data", "limits", "expected"),
    [
        pytest.param(state, data, limits, expected, id=name)
        for name, state, data, limits, expected in ERROR_CASES
    ],
)
def test_error_text(
    state: ClientState, data: bytes, limits: Limits | None, expected: bytes
) -> None:
    error = error_for(data, state, limits=limits)
    assert error.frame_data == expected
    code, _, description = expected.partition(b" ")
    assert error.code == code.decode()
    assert error.description.encode("utf-8", "surrogateescape") == description
    assert error.fatal  # nothing the parser raises leaves the connection open


@pytest.mark.parametrize(
    ("state", "data", "limits", "expected"),
    [
        pytest.param(state, data, limits, expected, id=name)
        for name, state, data, limits, expected in ERROR_CASES
    ],
)
def test_error_text_byte_by_byte(
    state: ClientState, data: bytes, limits: Limits | None, expected: bytes
) -> None:
    conn = connection(state, limits)
    with pytest.raises(ProtocolError) as caught:
        parse_chunks(conn, byte_chunks(data), eof=False)
    assert caught.value.frame_data == expected


def test_failed_connection_refuses_further_use() -> None:
    conn = connection()
    conn.receive_data(b"BOGUS\nNOP\n")
    with pytest.raises(ProtocolError):
        conn.next_command()
    with pytest.raises(RuntimeError):
        conn.next_command()


def test_line_overflow_also_ends_the_connection() -> None:
    conn = connection()
    conn.receive_data(b"x" * MAX_LINE)
    with pytest.raises(ConnectionMustClose):
        conn.next_command()
    with pytest.raises(RuntimeError):
        conn.next_command()


# -- check order across concerns ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "data", "expected"),
    [
        # heartbeats_disabled is checked after the state, before the parameters
        (SUBSCRIBED, b"SUB t c\n", b"E_INVALID cannot SUB in current state"),
        (INIT, b"SUB t c\n", b"E_INVALID cannot SUB with heartbeats disabled"),
        (INIT, b"SUB\n", b"E_INVALID cannot SUB with heartbeats disabled"),
        (INIT, b"SUB bad! c\n", b"E_INVALID cannot SUB with heartbeats disabled"),
    ],
)
def test_heartbeats_disabled_blocks_sub(state: ClientState, data: bytes, expected: bytes) -> None:
    assert error_for(data, state, heartbeats_disabled=True).frame_data == expected


def test_heartbeats_disabled_allows_everything_else() -> None:
    data = pub(b"t", b"m") + b"NOP\n" + identify(b"{}")
    assert parse_all(data, heartbeats_disabled=True) == [
        Publish("t", b"m"),
        Nop(),
        Identify(b"{}"),
    ]


@pytest.mark.parametrize(
    ("state", "line", "name"),
    [
        (INIT, b"SUB t c\n", b"SUB"),
        (INIT, b"PUB t\n", b"PUB"),
        (INIT, b"MPUB t\n", b"MPUB"),
        (INIT, b"DPUB t 0\n", b"DPUB"),
        (INIT, b"AUTH\n", b"AUTH"),
        (INIT, b"NOP\n", b"NOP"),
        (INIT, b"RDY 1\n", b"RDY"),  # TLS comes before the state check
        (INIT, b"CLS\n", b"CLS"),
        (SUBSCRIBED, b"RDY 1\n", b"RDY"),
        (CLOSING, b"RDY 1\n", b"RDY"),  # even the RDY that Closing would ignore
        (SUBSCRIBED, b"FIN " + MSG_ID + b"\n", b"FIN"),
        (SUBSCRIBED, b"REQ " + MSG_ID + b" 0\n", b"REQ"),
        (SUBSCRIBED, b"TOUCH " + MSG_ID + b"\n", b"TOUCH"),
        (INIT, b"PUB bad!\n", b"PUB"),  # before the topic check too
        (INIT, b"BOGUS\n", b"BOGUS"),  # and before the command lookup
        (INIT, b"\n", b""),
        (INIT, b"identify\n", b"identify"),
    ],
)
def test_tls_required(state: ClientState, line: bytes, name: bytes) -> None:
    error = error_for(line, state, tls_required=True)
    assert error.frame_data == b"E_INVALID cannot " + name + b" in current state (TLS required)"
    assert error.fatal


def test_tls_required_lets_identify_through() -> None:
    conn = connection(tls_required=True)
    conn.receive_data(identify(b"{}") + b"SUB t c\n")
    assert conn.next_command() == Identify(b"{}")
    conn.tls_active = True  # the broker upgraded the stream
    assert conn.next_command() == Subscribe("t", "c")


def test_tls_required_identify_checks_still_apply() -> None:
    error = error_for(identify(), SUBSCRIBED, tls_required=True)
    assert error.frame_data == b"E_INVALID cannot IDENTIFY in current state"


def test_tls_active_without_requirement_changes_nothing() -> None:
    conn = connection()
    conn.tls_active = True
    conn.receive_data(b"NOP\n")
    assert conn.next_command() == Nop()


# -- errors are raised as soon as nsqd would raise them -------------------------------------------


def _offset(*parts: bytes) -> int:
    return sum(len(part) for part in parts)


EARLY_CASES: list[tuple[str, ClientState, bytes, int, bytes, Limits | None]] = [
    # (id, state, stream, bytes needed before the error, expected frame data, limits)
    ("bad-magic", INIT, b"  V1NOP\n", 4, b"E_BAD_PROTOCOL", None),
    ("invalid-command", INIT, b"BOGUS\nNOP\n", 6, b"E_INVALID invalid command BOGUS", None),
    (
        "pub-bad-topic",
        INIT,
        pub(b"bad!", b"body"),
        len(b"PUB bad!\n"),
        b'E_BAD_TOPIC PUB topic name "bad!" is not valid',
        None,
    ),
    (
        "pub-size-zero",
        INIT,
        b"PUB t\n" + i32(0) + b"hello",
        _offset(b"PUB t\n", i32(0)),
        b"E_BAD_MESSAGE PUB invalid message body size 0",
        None,
    ),
    (
        "pub-too-big",
        INIT,
        b"PUB t\n" + i32(2_000_000) + b"x" * 100,
        _offset(b"PUB t\n", i32(0)),
        b"E_BAD_MESSAGE PUB message too big 2000000 > 1048576",
        None,
    ),
    (
        "identify-state",
        SUBSCRIBED,
        identify(),
        len(b"IDENTIFY\n"),
        b"E_INVALID cannot IDENTIFY in current state",
        None,
    ),
    (
        "identify-too-big",
        INIT,
        b"IDENTIFY\n" + i32(6_000_000) + b"{}",
        _offset(b"IDENTIFY\n", i32(0)),
        b"E_BAD_BODY IDENTIFY body too big 6000000 > 5242880",
        None,
    ),
    (
        "auth-param",
        INIT,
        b"AUTH x\n" + sized(b"s"),
        len(b"AUTH x\n"),
        b"E_INVALID AUTH invalid number of parameters",
        None,
    ),
    (
        "auth-size",
        INIT,
        b"AUTH\n" + i32(0) + b"s",
        _offset(b"AUTH\n", i32(0)),
        b"E_BAD_BODY AUTH invalid body size 0",
        None,
    ),
    (
        "dpub-range",
        INIT,
        dpub(b"t", b"3600001", b"body"),
        len(b"DPUB t 3600001\n"),
        b"E_INVALID DPUB timeout 3600001 out of range 0-3600000",
        None,
    ),
    (
        "dpub-size",
        INIT,
        dpub(b"t", b"1", b"") + b"xx",
        len(b"DPUB t 1\n") + 4,
        b"E_BAD_MESSAGE DPUB invalid message body size 0",
        None,
    ),
    (
        "mpub-body-size",
        INIT,
        b"MPUB t\n" + i32(0) + i32(1),
        _offset(b"MPUB t\n", i32(0)),
        b"E_BAD_BODY MPUB invalid body size 0",
        None,
    ),
    (
        "mpub-count",
        INIT,
        b"MPUB t\n" + i32(50) + i32(0) + sized(b"x"),
        _offset(b"MPUB t\n", i32(0), i32(0)),
        b"E_BAD_BODY MPUB invalid message count 0",
        None,
    ),
    (
        "mpub-message-size",
        INIT,
        b"MPUB t\n"
        + i32(1000)
        + i32(3)
        + sized(b"first")
        + i32(0)
        + b"rest of the body never needed",
        _offset(b"MPUB t\n", i32(0), i32(0), sized(b"first"), i32(0)),
        b"E_BAD_MESSAGE MPUB invalid message(1) body size 0",
        None,
    ),
    (
        "mpub-message-too-big",
        INIT,
        b"MPUB t\n" + i32(1000) + i32(3) + i32(101) + bytes(101),
        _offset(b"MPUB t\n", i32(0), i32(0), i32(0)),
        b"E_BAD_MESSAGE MPUB message too big 101 > 100",
        SMALL,
    ),
    (
        "rdy-range",
        SUBSCRIBED,
        b"RDY 2501\nNOP\n",
        len(b"RDY 2501\n"),
        b"E_INVALID RDY count 2501 out of range 0-2500",
        None,
    ),
]


@pytest.mark.parametrize(
    ("state", "data", "needed", "expected", "limits"),
    [pytest.param(*case[1:], id=case[0]) for case in EARLY_CASES],
)
def test_errors_raised_as_soon_as_possible(
    state: ClientState, data: bytes, needed: int, expected: bytes, limits: Limits | None
) -> None:
    assert needed <= len(data)
    conn = connection(state, limits, magic=expected == b"E_BAD_PROTOCOL")
    for count in range(1, needed):
        conn.receive_data(data[count - 1 : count])
        assert drain(conn) == [], f"unexpected command after {count} bytes"
    conn.receive_data(data[needed - 1 : needed])
    with pytest.raises(ProtocolError) as caught:
        conn.next_command()
    assert caught.value.frame_data == expected


# -- EOF or read timeout in the middle of a body --------------------------------------------------

# (id, stream cut short, the error nsqd reports when io.ReadFull fails there)
SHORT_READ_CASES: list[tuple[str, ClientState, bytes, bytes]] = [
    ("identify-size-none", INIT, b"IDENTIFY\n", b"E_BAD_BODY IDENTIFY failed to read body size"),
    (
        "identify-size-partial",
        INIT,
        b"IDENTIFY\n\x00\x00",
        b"E_BAD_BODY IDENTIFY failed to read body size",
    ),
    (
        "identify-body-none",
        INIT,
        b"IDENTIFY\n" + i32(10),
        b"E_BAD_BODY IDENTIFY failed to read body",
    ),
    (
        "identify-body-partial",
        INIT,
        b"IDENTIFY\n" + i32(10) + b"{}",
        b"E_BAD_BODY IDENTIFY failed to read body",
    ),
    ("auth-size", INIT, b"AUTH\n\x00", b"E_BAD_BODY AUTH failed to read body size"),
    ("auth-body", INIT, b"AUTH\n" + i32(3) + b"ab", b"E_BAD_BODY AUTH failed to read body"),
    ("pub-size", INIT, b"PUB t\n", b"E_BAD_MESSAGE PUB failed to read message body size"),
    (
        "pub-size-partial",
        INIT,
        b"PUB t\n\x00\x00\x00",
        b"E_BAD_MESSAGE PUB failed to read message body size",
    ),
    (
        "pub-body",
        INIT,
        b"PUB t\n" + i32(5) + b"hell",
        b"E_BAD_MESSAGE PUB failed to read message body",
    ),
    ("dpub-size", INIT, b"DPUB t 10\n", b"E_BAD_MESSAGE DPUB failed to read message body size"),
    ("dpub-body", INIT, b"DPUB t 10\n" + i32(5), b"E_BAD_MESSAGE DPUB failed to read message body"),
    ("mpub-size", INIT, b"MPUB t\n\x00\x00", b"E_BAD_BODY MPUB failed to read body size"),
    ("mpub-count", INIT, b"MPUB t\n" + i32(20), b"E_BAD_BODY MPUB failed to read message count"),
    (
        "mpub-count-partial",
        INIT,
        b"MPUB t\n" + i32(20) + b"\x00",
        b"E_BAD_BODY MPUB failed to read message count",
    ),
    (
        "mpub-msg0-size",
        INIT,
        b"MPUB t\n" + i32(20) + i32(2),
        b"E_BAD_MESSAGE MPUB failed to read message(0) body size",
    ),
    (
        "mpub-msg2-size",
        INIT,
        b"MPUB t\n" + i32(100) + i32(3) + sized(b"a") + sized(b"b") + b"\x00\x00",
        b"E_BAD_MESSAGE MPUB failed to read message(2) body size",
    ),
    (
        "mpub-msg-body",
        INIT,
        b"MPUB t\n" + i32(20) + i32(2) + i32(5) + b"abc",
        b"E_BAD_MESSAGE MPUB failed to read message body",
    ),
    (
        "mpub-msg1-body",
        INIT,
        b"MPUB t\n" + i32(20) + i32(2) + sized(b"a") + i32(3),
        b"E_BAD_MESSAGE MPUB failed to read message body",
    ),
]


@pytest.mark.parametrize(
    ("state", "data", "expected"),
    [
        pytest.param(state, data, expected, id=name)
        for name, state, data, expected in SHORT_READ_CASES
    ],
)
def test_eof_mid_body(state: ClientState, data: bytes, expected: bytes) -> None:
    conn = connection(state)
    conn.receive_data(data)
    assert conn.next_command() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(ProtocolError) as caught:
        conn.next_command()
    assert caught.value.frame_data == expected
    assert caught.value.fatal


@pytest.mark.parametrize(
    ("state", "data", "expected"),
    [
        pytest.param(state, data, expected, id=name)
        for name, state, data, expected in SHORT_READ_CASES
    ],
)
def test_read_failure_mid_body(state: ClientState, data: bytes, expected: bytes) -> None:
    conn = connection(state)
    conn.receive_data(data)
    assert conn.next_command() is NEED_DATA
    failure = conn.read_failure()
    assert failure is not None
    assert failure.frame_data == expected
    assert failure.fatal
    again = conn.read_failure()  # asking changes nothing
    assert again is not None
    assert again.frame_data == expected


def test_read_failure_none_when_no_body_pending() -> None:
    conn = connection()
    assert conn.read_failure() is None
    conn.receive_data(b"NO")
    assert conn.next_command() is NEED_DATA
    assert conn.read_failure() is None
    conn.receive_data(b"P\n" + pub(b"t", b"m"))
    assert drain(conn) == [Nop(), Publish("t", b"m")]
    assert conn.read_failure() is None


def test_read_failure_follows_progress() -> None:
    conn = connection()
    steps = [
        (b"MPUB t\n", b"E_BAD_BODY MPUB failed to read body size"),
        (i32(14), b"E_BAD_BODY MPUB failed to read message count"),
        (i32(2), b"E_BAD_MESSAGE MPUB failed to read message(0) body size"),
        (i32(1), b"E_BAD_MESSAGE MPUB failed to read message body"),
        (b"a", b"E_BAD_MESSAGE MPUB failed to read message(1) body size"),
        (i32(1), b"E_BAD_MESSAGE MPUB failed to read message body"),
    ]
    for data, expected in steps:
        conn.receive_data(data)
        assert conn.next_command() is NEED_DATA
        failure = conn.read_failure()
        assert failure is not None
        assert failure.frame_data == expected
    conn.receive_data(b"b")
    assert conn.next_command() == MultiPublish("t", (b"a", b"b"))
    assert conn.read_failure() is None


def test_body_completes_after_read_failure_query() -> None:
    conn = connection()
    conn.receive_data(b"PUB t\n" + i32(3) + b"a")
    assert conn.next_command() is NEED_DATA
    assert conn.read_failure() is not None
    conn.receive_data(b"bc")
    assert conn.next_command() == Publish("t", b"abc")


# -- MPUB: trinsq requires the messages to fill the announced body exactly (deliberate) -----------


@pytest.mark.parametrize(
    "bodies",
    [[b"x"], [b"a", b"bb", b"ccc"], [b"\n"] * 50, [bytes(100)] * 5, [b"m" * 70_000, b"n"]],
)
def test_mpub_exact_fill_parses(bodies: list[bytes]) -> None:
    data = mpub(b"t", bodies)
    assert parse_all(data) == [MultiPublish("t", tuple(bodies))]
    assert parse_chunks(connection(), byte_chunks(data), eof=True) == [
        MultiPublish("t", tuple(bodies))
    ]


def test_mpub_count_at_maximum_accepted() -> None:
    # 0 < count <= (max_body_size - 4) / 5 passes the count check
    conn = connection(limits=SMALL)
    conn.receive_data(b"MPUB t\n" + i32(4 + 199 * 5) + i32(199))
    assert conn.next_command() is NEED_DATA
    conn.receive_data(b"".join(sized(b"x") for _ in range(199)))
    assert conn.next_command() == MultiPublish("t", (b"x",) * 199)


@pytest.mark.parametrize(
    ("body_size", "inner"),
    [
        # announced body holds the count and one 1-byte message (9 bytes); a second is sent
        (9, i32(2) + sized(b"a") + sized(b"b")),
        # the message itself is longer than the space left
        (10, i32(1) + sized(b"abcdefgh")),
        # only the count fits; the first size field is already outside the body
        (4, i32(1) + sized(b"a")),
        (5, i32(1) + sized(b"a")),
        (7, i32(1) + sized(b"a")),
    ],
)
def test_mpub_overrun_is_bad_body(body_size: int, inner: bytes) -> None:
    error = error_for(b"MPUB t\n" + i32(body_size) + inner)
    assert error.code == "E_BAD_BODY"
    assert error.frame_data.startswith(b"E_BAD_BODY MPUB ")
    assert str(body_size).encode() in error.frame_data
    assert error.fatal


def test_mpub_overrun_text() -> None:
    error = error_for(b"MPUB t\n" + i32(9) + i32(2) + sized(b"a") + sized(b"b"))
    assert error.frame_data == b"E_BAD_BODY MPUB message(1) overruns body size 9"


def test_mpub_overrun_detected_before_message_body() -> None:
    conn = connection()
    conn.receive_data(b"MPUB t\n" + i32(10) + i32(1) + i32(100))  # body not sent
    with pytest.raises(ProtocolError) as caught:
        conn.next_command()
    assert caught.value.code == "E_BAD_BODY"


@pytest.mark.parametrize(
    ("body_size", "bodies", "leftover"),
    [
        (10, [b"a"], 1),
        (14, [b"a"], 5),
        (100, [b"a", b"b"], 86),
        (5_242_880, [b"x" * 1000], 5_242_880 - 4 - 4 - 1000),
    ],
)
def test_mpub_leftover_is_bad_body(body_size: int, bodies: list[bytes], leftover: int) -> None:
    error = error_for(b"MPUB t\n" + i32(body_size) + mpub_body(bodies))
    assert error.code == "E_BAD_BODY"
    assert error.fatal
    assert error.frame_data == (
        f"E_BAD_BODY MPUB body size {body_size} has {leftover} bytes after messages".encode()
    )


def test_mpub_leftover_does_not_consume_following_bytes() -> None:
    # The error comes once the last message is read, without waiting for the unused bytes.
    conn = connection()
    conn.receive_data(b"MPUB t\n" + i32(20) + i32(1) + sized(b"a"))
    with pytest.raises(ProtocolError) as caught:
        conn.next_command()
    assert caught.value.frame_data == b"E_BAD_BODY MPUB body size 20 has 11 bytes after messages"


# -- take_trailing_data (stream upgrades after IDENTIFY) ------------------------------------------


def test_take_trailing_data_after_identify() -> None:
    conn = connection(magic=True)
    upgraded = b"\x16\x03\x01\x02\x00tls-or-compressed-bytes\nNOP\n"
    conn.receive_data(MAGIC_V2 + identify(b'{"tls_v1":true}') + upgraded)
    assert conn.next_command() == Identify(b'{"tls_v1":true}')
    assert conn.buffered == len(upgraded)
    assert conn.take_trailing_data() == upgraded
    assert conn.buffered == 0
    assert conn.take_trailing_data() == b""
    assert conn.next_command() is NEED_DATA
    conn.receive_data(b"SUB t c\n")  # the upgraded layer feeds decoded bytes back in
    assert conn.next_command() == Subscribe("t", "c")


def test_take_trailing_data_empty() -> None:
    conn = connection()
    conn.receive_data(identify(b"{}"))
    assert conn.next_command() == Identify(b"{}")
    assert conn.take_trailing_data() == b""


def test_take_trailing_data_resets_line_scanning() -> None:
    conn = connection()
    conn.receive_data(identify(b"{}") + b"garbage-without-newline")
    assert conn.next_command() == Identify(b"{}")
    assert conn.next_command() is NEED_DATA  # scanned the partial line
    assert conn.take_trailing_data() == b"garbage-without-newline"
    conn.receive_data(b"NOP\n")
    assert conn.next_command() == Nop()


@pytest.mark.parametrize("seed", range(10))
def test_take_trailing_data_loses_and_repeats_nothing(seed: int) -> None:
    request = identify(b'{"snappy":true}')
    upgraded = b"\xff\x06\x00\x00sNaPpY" + bytes(range(256))
    chunks = random_chunks(request + upgraded, seed, 9)
    conn = connection()
    commands: list[Command] = []
    replayed = b""
    for chunk in chunks:
        if commands:  # after the upgrade, bytes go to the new layer, not the parser
            replayed += chunk
            continue
        conn.receive_data(chunk)
        commands += drain(conn)
        if commands:
            replayed += conn.take_trailing_data()
    assert commands == [Identify(b'{"snappy":true}')]
    assert replayed == upgraded


# -- fatal / non-fatal ----------------------------------------------------------------------------


def test_non_fatal_codes() -> None:
    assert frozenset({"E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED"}) == NON_FATAL_CODES


@pytest.mark.parametrize("code", ["E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED"])
def test_non_fatal_errors(code: str) -> None:
    error = ProtocolError(code, f"{code[2:5]} {MSG_ID.decode()} failed ID not in flight")
    assert not error.fatal


@pytest.mark.parametrize(
    "code",
    [
        "E_BAD_PROTOCOL",
        "E_INVALID",
        "E_BAD_BODY",
        "E_BAD_TOPIC",
        "E_BAD_CHANNEL",
        "E_BAD_MESSAGE",
        "E_PUB_FAILED",
        "E_MPUB_FAILED",
        "E_DPUB_FAILED",
        "E_SUB_FAILED",
        "E_IDENTIFY_FAILED",
        "E_AUTH_DISABLED",
        "E_AUTH_FAILED",
        "E_UNAUTHORIZED",
        "E_AUTH_FIRST",
        "E_AUTH_ERROR",
    ],
)
def test_fatal_errors(code: str) -> None:
    assert ProtocolError(code, "x").fatal


def test_protocol_error_rendering() -> None:
    error = ProtocolError("E_INVALID", "invalid command \udcff")
    assert error.frame_data == b"E_INVALID invalid command \xff"
    assert str(error) == "E_INVALID invalid command \ufffd"
    assert repr(error) == "ProtocolError('E_INVALID', 'invalid command \\udcff')"
    assert str(ProtocolError("E_BAD_PROTOCOL")) == "E_BAD_PROTOCOL"

"""``next_publishes``, the batched read of a producer's pipelined PUBs to one topic, reads
exactly what ``next_command`` would: the same bodies in the same order, and leaves to it every
command it would read otherwise (another topic, CRLF, bad sizes, bodies not yet complete,
other commands), errors included."""

from __future__ import annotations

import random
import struct

import pytest

from trinsq.protocol import (
    BUSY,
    CLOSED,
    NEED_DATA,
    ConnectionMustClose,
    Limits,
    ProtocolError,
    Publish,
    V2ServerConnection,
)

MAX_SIZE = 64


def pub(line: bytes, body: bytes, size: int | None = None) -> bytes:
    return line + struct.pack(">i", len(body) if size is None else size) + body


COMMANDS = [
    pub(b"PUB t\n", b"a"),
    pub(b"PUB t\n", b"bb"),
    pub(b"PUB t\n", b"x" * MAX_SIZE),  # the largest allowed
    pub(b"PUB u\n", b"other topic"),
    pub(b"PUB t\r\n", b"crlf"),  # next_command strips the CR
    pub(b"PUB t extra\n", b"extra parameter"),
    pub(b"PUB t\n", b"x" * (MAX_SIZE + 1)),  # too big: E_BAD_MESSAGE
    pub(b"PUB t\n", b"", 0),  # empty: E_BAD_MESSAGE
    pub(b"PUB t\n", b"", -1),
    pub(b"PUB t!\n", b"bad name"),
    b"NOP\n",
    pub(b"MPUB t\n", struct.pack(">i", 1) + pub(b"", b"m")),
]


def read_all(data: bytes, cuts: list[int], *, batched: bool, limit: int) -> list[object]:
    """Everything one parser reads from ``data`` arriving cut at ``cuts``: each PUB as a
    Publish, other commands, and the error that ends it."""
    conn = V2ServerConnection(Limits(max_msg_size=MAX_SIZE), expect_magic=False)
    seen: list[object] = []
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        while True:
            try:
                command = conn.next_command()
            except (ProtocolError, ConnectionMustClose) as error:
                seen.append(repr(error))
                return seen
            if command is NEED_DATA or command is CLOSED:
                break
            if command is BUSY:
                continue
            seen.append(command)
            if batched and isinstance(command, Publish):
                more = conn.next_publishes(command.topic, limit)
                assert len(more) <= limit
                seen += [Publish(command.topic, body) for body in more]
    return seen


@pytest.mark.parametrize("seed", range(300))
def test_batched_and_single_reads_agree(seed: int) -> None:
    rng = random.Random(seed)
    weights = [30, 30, 5, 8, 3, 3, 1, 1, 1, 1, 4, 3]
    data = b"".join(rng.choices(COMMANDS, weights, k=rng.randint(1, 40)))
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 6))))
    limit = rng.choice([1, 2, 7, 1023])
    expected = read_all(data, cuts, batched=False, limit=limit)
    assert read_all(data, cuts, batched=True, limit=limit) == expected


def test_a_run_stops_at_the_limit_and_at_an_incomplete_body() -> None:
    conn = V2ServerConnection(Limits(), expect_magic=False)
    whole = b"".join(pub(b"PUB t\n", bytes([n])) for n in range(5))
    conn.receive_data(whole + pub(b"PUB t\n", b"late")[:-2])
    assert conn.next_command() == Publish("t", b"\x00")
    assert conn.next_publishes("t", 2) == [b"\x01", b"\x02"]
    assert conn.next_publishes("t", 100) == [b"\x03", b"\x04"]
    assert conn.next_publishes("t", 100) == []  # its body is not all here yet
    conn.receive_data(b"te")
    assert conn.next_publishes("t", 100) == [b"late"]
    assert conn.next_command() is NEED_DATA


def test_no_run_before_tls_when_tls_is_required() -> None:
    conn = V2ServerConnection(Limits(), expect_magic=False)
    conn.receive_data(pub(b"PUB t\n", b"a") * 2)
    conn.tls_required = True
    assert conn.next_publishes("t", 10) == []
    with pytest.raises(ProtocolError, match="TLS required"):
        conn.next_command()

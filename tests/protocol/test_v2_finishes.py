"""``next_finishes``, the batched read of a consumer's FINs, reads exactly what
``next_command`` would: the same IDs in the same order, and leaves to it every line it would
read otherwise (IDs with spaces, CRLF, short or long IDs, other commands, wrong states)."""

from __future__ import annotations

import random

import pytest

from trinsq.protocol import (
    BUSY,
    CLOSED,
    NEED_DATA,
    ClientState,
    ConnectionMustClose,
    Finish,
    Limits,
    ProtocolError,
    V2ServerConnection,
)

MSG_ID = b"0123456789abcdef"

LINES = [
    b"FIN " + MSG_ID + b"\n",
    b"FIN fedcba9876543210\n",
    b"FIN " + MSG_ID + b"\r\n",  # CRLF: next_command strips the CR
    b"FIN 0123456789abcde\r\n",  # 15 bytes and a CR: 16 before the newline
    b"FIN 01234567 9abcdef\n",  # a space inside
    b"FIN  123456789abcdef\n",  # two spaces after FIN
    b"FIN 0123456789abcdef0\n",  # 17 bytes
    b"FIN 012345\n",  # short
    b"FIN\n",
    b"NOP\n",
    b"RDY 5\n",
    b"TOUCH " + MSG_ID + b"\n",
    b"FIN " + MSG_ID + b" extra\n",
]


def connection(state: ClientState = ClientState.SUBSCRIBED) -> V2ServerConnection:
    conn = V2ServerConnection(Limits(), expect_magic=False)
    conn.state = state
    return conn


def read_all(data: bytes, cuts: list[int], *, batched: bool, limit: int) -> list[object]:
    """Everything one parser reads from ``data`` arriving cut at ``cuts``: Finish IDs,
    other commands, and the error that ends it."""
    conn = connection()
    seen: list[object] = []
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        while True:
            try:
                if batched:
                    ids = conn.next_finishes(limit)
                    if ids:
                        seen += [Finish(message_id) for message_id in ids]
                        continue
                command = conn.next_command()
            except (ProtocolError, ConnectionMustClose) as error:
                seen.append(repr(error))
                return seen
            if command is NEED_DATA or command is CLOSED:
                break
            if command is not BUSY:
                seen.append(command)
    return seen


@pytest.mark.parametrize("seed", range(300))
def test_batched_and_single_reads_agree(seed: int) -> None:
    rng = random.Random(seed)
    data = b"".join(rng.choice(LINES) for _ in range(rng.randint(1, 40)))
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 6))))
    limit = rng.choice([1, 2, 7, 4096])
    expected = read_all(data, cuts, batched=False, limit=limit)
    assert read_all(data, cuts, batched=True, limit=limit) == expected


def test_a_run_of_fins_is_read_at_once_up_to_the_limit() -> None:
    conn = connection()
    ids = [b"%016x" % n for n in range(10)]
    conn.receive_data(b"".join(b"FIN " + i + b"\n" for i in ids) + b"NOP\n")
    assert conn.next_finishes(4) == ids[:4]
    assert conn.next_finishes(100) == ids[4:]
    assert conn.next_finishes(100) == []  # the NOP is next_command's
    assert conn.buffered == 4


@pytest.mark.parametrize("state", [ClientState.INIT, ClientState.CLOSING])
def test_the_state_decides_as_next_command_does(state: ClientState) -> None:
    conn = connection(state)
    conn.receive_data(b"FIN " + MSG_ID + b"\n")
    if state is ClientState.CLOSING:
        assert conn.next_finishes(10) == [MSG_ID]  # FIN is allowed while closing
    else:
        assert conn.next_finishes(10) == []  # next_command answers E_INVALID


def test_tls_required_leaves_the_refusal_to_next_command() -> None:
    conn = connection()
    conn.tls_required = True
    conn.receive_data(b"FIN " + MSG_ID + b"\n")
    assert conn.next_finishes(10) == []
    conn.tls_active = True
    assert conn.next_finishes(10) == [MSG_ID]

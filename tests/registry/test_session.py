"""The registry's V1 peer session with no I/O, and its transport over memory streams."""

from __future__ import annotations

import json
import struct

import trio
import trio.lowlevel
import trio.testing

from trinsq.registry._db import RegistrationDB
from trinsq.registry._options import RegistryOptions
from trinsq.registry._server import RegistryServer
from trinsq.registry._session import PeerSession

IDENTIFY = json.dumps(
    {"broadcast_address": "b.example", "tcp_port": 4150, "http_port": 4151, "version": "1.3.0"}
).encode()
IDENTIFY_COMMAND = b"IDENTIFY\n" + struct.pack(">i", len(IDENTIFY)) + IDENTIFY


def ok(count: int = 1) -> bytes:
    return (struct.pack(">i", 2) + b"OK") * count


def new_session() -> tuple[PeerSession, RegistrationDB]:
    db = RegistrationDB(clock=lambda: 100.0)
    session = PeerSession(db, "10.0.0.1:5000", lambda: b'{"tcp_port":4160}')
    session.receive_data(b"  V1")
    return session, db


def test_a_session_registers_and_leaves_with_its_registrations() -> None:
    session, db = new_session()
    session.receive_data(b"PING\n" + IDENTIFY_COMMAND + b"REGISTER t c\nREGISTER t2\n")
    step = session.step()
    reply = b'{"tcp_port":4160}'
    assert step.replies == ok() + struct.pack(">i", len(reply)) + reply + ok(2)
    assert (step.closing, step.more) == (False, False)
    assert sorted(db.topics()) == ["t", "t2"]
    session.close()
    lookup = db.lookup("t", inactive_timeout=300, tombstone_lifetime=45)
    assert lookup is not None
    assert lookup.producers == []  # gone with its connection


def test_an_error_is_answered_and_closes() -> None:
    session, db = new_session()
    session.receive_data(b"REGISTER t\n")
    step = session.step()
    assert step.closing
    assert step.replies.endswith(b"E_INVALID client must IDENTIFY")
    assert db.topics() == []


def test_a_flood_of_commands_is_served_in_bounded_steps() -> None:
    session, _ = new_session()
    session.receive_data(b"PING\n" * 2500)
    steps = [session.step(max_commands=1000) for _ in range(3)]
    assert [len(s.replies) // len(ok()) for s in steps] == [1000, 1000, 500]
    assert [s.more for s in steps] == [True, True, False]


async def test_a_flooding_peer_leaves_room_for_another() -> None:
    """Over memory streams: one peer sends 3,500 REGISTERs at once (one read's worth); a
    second peer's PING, sent once the flood has started to be served, is answered before the
    flood is through (served in one go, all 3,500 would be registered first)."""
    server = RegistryServer(RegistryOptions(tcp_address="127.0.0.1:0", http_address=""))
    flood = 3500
    registered_when_answered: list[int] = []
    async with trio.open_nursery() as nursery:
        flooder, flooder_server = trio.testing.memory_stream_pair()
        other, other_server = trio.testing.memory_stream_pair()
        nursery.start_soon(server.handle_stream, flooder_server, "10.0.0.1:1")
        nursery.start_soon(server.handle_stream, other_server, "10.0.0.2:1")
        commands = b"".join(b"REGISTER t%04d\n" % n for n in range(flood))
        assert len(commands) + len(IDENTIFY_COMMAND) + 4 < 65536  # one receive_some
        await flooder.send_all(b"  V1" + IDENTIFY_COMMAND + commands)
        with trio.fail_after(30):
            while not server.db.topics():
                await trio.lowlevel.checkpoint()  # until the flood is being served
            await other.send_all(b"  V1PING\n")
            assert await other.receive_some(65536) == ok()
            registered_when_answered.append(len(server.db.topics()))
            while len(server.db.topics()) < flood:
                await trio.lowlevel.checkpoint()
        await flooder.aclose()
        await other.aclose()
    assert 0 < registered_when_answered[0] < flood

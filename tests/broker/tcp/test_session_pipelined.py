"""A producer's pipelined PUBs, read and put together (``V2Session._publish`` with
``next_publishes``), are answered exactly as one at a time: an OK each, in order, with other
commands and topics in between, over as many turns as they take; a failed put ends the
connection with one E_PUB_FAILED and none of them accepted."""

from __future__ import annotations

from tests.broker.core.test_core import RecordingPersistence
from tests.broker.tcp.test_session import body, make_world, mpub_command, run_turns
from trinsq.broker.tcp._session import MESSAGES_PER_TURN, Progress


def pub(topic: str, data: bytes) -> bytes:
    return f"PUB {topic}\n".encode() + body(data)


def test_pipelined_pubs_are_answered_in_order_between_other_commands() -> None:
    world = make_world()
    consumer, producer = world.connect(), world.connect()
    consumer.send(b"SUB t ch\nRDY 100\n")
    assert consumer.responses() == [b"OK"]
    producer.send(
        pub("t", b"1")
        + pub("t", b"2")
        + pub("u", b"u1")
        + pub("t", b"3")
        + b"NOP\n"
        + pub("t", b"4")
        + pub("t", b"")  # E_BAD_MESSAGE, fatal: nothing after it runs
        + pub("t", b"never")
    )
    assert producer.responses() == [b"OK"] * 5 + [b"E_BAD_MESSAGE PUB invalid message body size 0"]
    channel = consumer.session.client.channel
    assert channel is not None
    consumer.session.take_messages(channel, 100)
    assert [f.message_fields()[3] for f in consumer.frames()] == [b"1", b"2", b"3", b"4"]
    assert producer.session.client.pub_counts == {"t": 4, "u": 1}


def test_more_pipelined_pubs_than_a_turn_allows_run_over_turns() -> None:
    world = make_world()
    wire = world.connect()
    count = 3 * MESSAGES_PER_TURN + 5
    wire.session.receive_data(b"".join(pub("t", str(n).encode()) for n in range(count)))
    turns, progress = run_turns(wire)
    assert progress is Progress.NEED_DATA
    assert turns >= 3  # bounded turns, as for an MPUB of as many messages
    assert wire.responses() == [b"OK"] * count
    assert world.broker.core.topics["t"].message_count == count


def test_a_failed_put_of_pipelined_pubs_accepts_none_and_answers_once() -> None:
    world = make_world()
    wire = world.connect()
    persistence = world.broker.core.graph.persistence
    assert isinstance(persistence, RecordingPersistence)
    wire.send(pub("t", b"before"))
    assert wire.responses() == [b"OK"]
    persistence.failing = "no space left on device"
    assert wire.send(pub("t", b"a") + pub("t", b"b") + pub("t", b"c")) is Progress.STOP
    assert wire.responses() == [b"E_PUB_FAILED PUB failed no space left on device"]
    assert wire.session.client.pub_counts == {"t": 1}


def test_a_pipelined_pub_after_an_mpub_to_the_same_topic() -> None:
    world = make_world()
    wire = world.connect()
    wire.send(pub("t", b"a") + mpub_command("t", 3) + pub("t", b"b") + pub("t", b"c"))
    assert wire.responses() == [b"OK"] * 4
    assert world.broker.core.topics["t"].message_count == 6


def test_pipelined_pubs_already_read_are_put_together() -> None:
    world = make_world()
    wire = world.connect()
    persistence = world.broker.core.graph.persistence
    assert isinstance(persistence, RecordingPersistence)
    wire.send(pub("t", b"a") + pub("t", b"b") + pub("t", b"c"))
    assert wire.responses() == [b"OK"] * 3
    assert persistence.commits == [False]  # one put of all three, not one each


def test_every_pipelined_pub_accepted_is_answered_ok_even_when_a_put_fails() -> None:
    """With channels, a long pipelined run is put in pieces that each fit one step, so a put
    that fails leaves no message accepted without its OK."""
    world = make_world()
    consumers = [world.connect() for _ in range(4)]
    for n, consumer in enumerate(consumers):
        consumer.send(f"SUB t ch{n}\n".encode())
    producer = world.connect()
    persistence = world.broker.core.graph.persistence
    assert isinstance(persistence, RecordingPersistence)
    commits_before = len(persistence.commits)
    producer.session.receive_data(b"".join(pub("t", b"%d" % n) for n in range(2000)))
    while producer.session.run_commands() is Progress.YIELD:
        if len(persistence.commits) - commits_before >= 3:
            persistence.failing = "no space left on device"
    responses = producer.responses()
    assert responses[-1] == b"E_PUB_FAILED PUB failed no space left on device"
    # Three whole puts of MESSAGES_PER_TURN // 4 channels went in and were answered, each
    # PUB an OK; the fourth put failed whole (one put of up to 1,023 PUBs spanning several
    # steps would have left the first steps' messages accepted with no OK).
    assert responses.count(b"OK") == len(responses) - 1 == 3 * (MESSAGES_PER_TURN // 4)

"""A V2 client session with no I/O and no trio: bytes in, core calls, bytes and requests out.

The transport's duties (reading, writing, upgrades, auth queries, fsync) are played by the
test, which is what makes the session testable without sockets or real time.
"""

from __future__ import annotations

import json
import re
import ssl
import struct

import attrs
import pytest

from tests.broker.core.test_core import RecordingPersistence
from tests.broker.core.test_model import FakeClock, FakeScheduler
from tests.support import mpub_body
from trinsq.broker import BrokerOptions
from trinsq.broker.core._authstate import Authorization, AuthState
from trinsq.broker.core._broker import BrokerCore
from trinsq.broker.core._graph import TopicGraph
from trinsq.broker.core._services import BoundAddresses, QueueHealth, StorageService
from trinsq.broker.core._stats import InfoDocument
from trinsq.broker.tcp._session import (
    COMMANDS_PER_TURN,
    MESSAGES_PER_TURN,
    AuthRequest,
    Progress,
    V2Session,
)
from trinsq.protocol import (
    ClientSettings,
    Frame,
    FrameDecoder,
    FrameType,
    Limits,
    ProtocolError,
    ServerFeatures,
    V2ServerConnection,
)


def body(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


@attrs.define
class FakeStorage:
    crash_safe: bool = False
    write_error: str = ""
    health_error: str | None = None
    queues: dict[str, QueueHealth] = attrs.field(factory=dict)

    def commit(self, *, keep_failed: bool) -> bool:
        return True

    def metadata_changed(self, topic_name: str) -> None:
        pass

    async def sync(self) -> None:
        pass


@attrs.define(eq=False)
class FakeBroker:
    """The parts of a running broker a session uses, with nothing running."""

    core: BrokerCore
    options: BrokerOptions
    storage: StorageService
    features: ServerFeatures = attrs.field(factory=lambda: ServerFeatures(version="1.3.0"))
    limits: Limits = attrs.field(factory=Limits)
    ssl_context: ssl.SSLContext | None = None
    https_context: ssl.SSLContext | None = None
    auth_tls_context: ssl.SSLContext = attrs.field(factory=ssl.create_default_context)
    addresses: BoundAddresses | None = None
    start_time: float = 0.0
    health: str = "OK"

    def info(self) -> InfoDocument:
        raise NotImplementedError

    def config_value(self, opt: str) -> object | None:
        return None

    def set_config(self, opt: str, body: bytes) -> bool:
        raise KeyError(opt)

    def request_shutdown(self) -> None:
        pass


@attrs.define
class FakeHost:
    wakes: int = 0
    outputs: int = 0
    heartbeats: list[float] = attrs.field(factory=list)

    def wake(self) -> None:
        self.wakes += 1

    def output_ready(self) -> None:
        self.outputs += 1

    def slots_freed(self) -> None:
        self.wakes += 1

    def set_heartbeat(self, interval: float) -> None:
        self.heartbeats.append(interval)


@attrs.define(eq=False)
class Wire:
    """One client's session and what it has sent so far, decoded."""

    session: V2Session
    host: FakeHost
    decoder: FrameDecoder = attrs.field(factory=FrameDecoder)

    def send(self, data: bytes) -> Progress:
        """Feed ``data`` and run turns until it has all run, the connection must end, or the
        transport has a request to carry out."""
        session = self.session
        session.receive_data(data)
        while (progress := session.run_commands()) is Progress.YIELD:
            if session.upgrade is not None or session.auth_request is not None:
                break
        return progress

    def frames(self) -> list[Frame]:
        self.decoder.feed(bytes(self.session.out))
        self.session.out.clear()
        found = []
        while (frame := self.decoder.next_frame()) is not None:
            found.append(frame)
        return found

    def responses(self) -> list[bytes]:
        return [f.data for f in self.frames() if f.frame_type != FrameType.MESSAGE]


@attrs.define
class World:
    broker: FakeBroker
    clock: FakeClock
    next_id: int = 1

    def connect(self) -> Wire:
        client = self.broker.core.connect(f"10.0.0.{self.next_id}:5000", 0.0, ClientSettings())
        self.next_id += 1
        host = FakeHost()
        protocol = V2ServerConnection(Limits())
        session = V2Session(self.broker, client, protocol, host, self.clock)
        wire = Wire(session, host)
        wire.send(b"  V2")
        return wire


def make_world(**options: object) -> World:
    clock = FakeClock()
    broker_options = BrokerOptions(node_id=1, **options)  # type: ignore[arg-type]
    graph = TopicGraph(
        broker_options,
        clock,
        FakeScheduler(),
        persistence=RecordingPersistence(),
        wall_clock_ns=lambda: 1_700_000_000_000_000_000,
    )
    broker = FakeBroker(BrokerCore(graph), broker_options, FakeStorage())
    return World(broker, clock)


def test_identify_answers_and_sets_the_heartbeat() -> None:
    wire = make_world().connect()
    identify = {"feature_negotiation": True, "heartbeat_interval": 5000, "snappy": True}
    wire.send(b"IDENTIFY\n" + body(json.dumps(identify).encode()))
    (reply,) = wire.responses()
    assert json.loads(reply)["snappy"] is True
    assert wire.host.heartbeats == [5.0]
    assert wire.session.upgrade is not None  # the transport must wrap the stream next
    assert wire.session.upgrade.snappy


def test_publish_subscribe_finish() -> None:
    world = make_world()
    producer, consumer = world.connect(), world.connect()
    consumer.send(b"SUB orders archive\nRDY 5\n")
    assert consumer.responses() == [b"OK"]
    producer.send(b"PUB orders\n" + body(b"first") + b"PUB orders\n" + body(b"second"))
    assert producer.responses() == [b"OK", b"OK"]
    channel = consumer.session.client.channel
    assert channel is not None
    assert consumer.session.take_messages(channel, 5) == 3
    messages = [f.message_fields() for f in consumer.frames()]
    assert [m[3] for m in messages] == [b"first", b"second"]
    consumer.send(b"FIN " + messages[0][2] + b"\nFIN " + messages[0][2] + b"\n")
    (error,) = consumer.responses()
    assert error.startswith(b"E_FIN_FAILED FIN ")  # the second FIN: not in flight any more
    assert consumer.session.client.finish_count == 1


def test_a_run_of_fins_answers_its_failures_in_order() -> None:
    world = make_world()
    producer, consumer = world.connect(), world.connect()
    consumer.send(b"SUB orders archive\nRDY 5\n")
    assert consumer.responses() == [b"OK"]
    producer.send(b"MPUB orders\n" + mpub_body([b"a", b"b", b"c"]))
    assert producer.responses() == [b"OK"]
    channel = consumer.session.client.channel
    assert channel is not None
    consumer.session.take_messages(channel, 5)
    a, b, c = (f.message_fields()[2] for f in consumer.frames())
    unknown = b"ffffffffffffffff"
    consumer.send(b"".join(b"FIN " + i + b"\n" for i in (a, unknown, b, a)))
    assert consumer.responses() == [
        b"E_FIN_FAILED FIN " + unknown + b" failed ID not in flight",
        b"E_FIN_FAILED FIN " + a + b" failed ID not in flight",
    ]
    client = consumer.session.client
    assert (client.finish_count, client.in_flight_count) == (2, 1)
    assert list(channel.in_flight) == [c]


def test_crash_safe_answers_wait_for_the_fsync() -> None:
    world = make_world()
    storage = world.broker.storage
    assert isinstance(storage, FakeStorage)
    storage.crash_safe = True
    wire = world.connect()
    wire.send(b"PUB t\n" + body(b"a") + b"NOP\nPUB t\n" + body(b"b"))
    assert wire.responses() == []  # held until the transport has synced
    wire.session.release_held()
    assert wire.responses() == [b"OK", b"OK"]


def test_auth_asks_the_transport_then_answers() -> None:
    wire = make_world(auth_http_addresses=["127.0.0.1:1"]).connect()
    wire.send(b"AUTH\n" + body(b"secret") + b"SUB t c\n")
    request = wire.session.auth_request
    assert request == AuthRequest()
    assert wire.session.client.channel is None  # SUB waits behind AUTH
    allow_all = Authorization(re.compile(".*"), (re.compile(".*"),), frozenset({"subscribe"}))
    wire.session.auth_request = None
    wire.session.auth_answered(request, AuthState("me", "", (allow_all,), expires=2000.0))
    assert json.loads(wire.responses()[0]) == {
        "identity": "me",
        "identity_url": "",
        "permission_count": 1,
    }
    wire.session.run_commands()
    assert wire.responses() == [b"OK"]


def test_an_expired_authorization_is_renewed_before_the_command() -> None:
    world = make_world(auth_http_addresses=["127.0.0.1:1"])
    wire = world.connect()
    allow = Authorization(re.compile("t"), (re.compile(""),), frozenset({"publish"}))
    wire.session.client.auth = AuthState("me", "", (allow,), expires=world.clock.now + 1)
    world.clock.now += 5
    wire.send(b"PUB t\n" + body(b"x"))
    request = wire.session.auth_request
    assert request is not None
    assert request.retry is not None
    assert wire.responses() == []
    wire.session.auth_request = None
    renewed = AuthState("me", "", (allow,), expires=world.clock.now + 60)
    wire.session.auth_answered(request, renewed)
    assert wire.responses() == [b"OK"]  # the publish ran once the answer came
    assert world.broker.core.topic("t").message_count == 1
    world.clock.now += 120
    wire.send(b"PUB t\n" + body(b"y"))
    request = wire.session.auth_request
    assert request is not None
    wire.session.auth_request = None
    with pytest.raises(ProtocolError, match="E_UNAUTHORIZED"):  # judged by the new answer
        wire.session.auth_answered(request, AuthState("me", "", (), expires=0.0))


# -- bounded turns -------------------------------------------------------------------------------


def run_turns(wire: Wire) -> tuple[int, Progress]:
    """Run the session's turns to the end of its input; count those that used up the turn."""
    turns = 0
    while (progress := wire.session.run_commands()) is Progress.YIELD:
        turns += 1
    return turns, progress


def test_a_turn_runs_a_bounded_number_of_commands() -> None:
    wire = make_world().connect()
    wire.session.receive_data(b"NOP\n" * (3 * COMMANDS_PER_TURN + 5))
    assert run_turns(wire) == (3, Progress.NEED_DATA)


def mpub_command(topic: str, count: int) -> bytes:
    inner = struct.pack(">i", count) + b"".join(body(b"%d" % i) for i in range(count))
    return f"MPUB {topic}\n".encode() + body(inner)


def test_a_large_mpub_is_published_over_turns_and_answered_once() -> None:
    world = make_world()
    producer, consumer = world.connect(), world.connect()
    consumer.send(b"SUB big c\n")
    assert consumer.responses() == [b"OK"]
    channel = consumer.session.client.channel
    assert channel is not None
    count = 5 * MESSAGES_PER_TURN
    producer.session.receive_data(mpub_command("big", count))
    progress = Progress.YIELD
    while not channel.message_count:
        progress = producer.session.run_commands()
        assert progress is Progress.YIELD
    # Published in part, not answered yet; a consumer may take the first messages already.
    assert 0 < channel.message_count < count
    assert producer.responses() == []
    assert consumer.session.take_messages(channel, 3) == 0
    assert [f.message_fields()[3] for f in consumer.frames()] == [b"0", b"1", b"2"]
    assert run_turns(producer)[1] is Progress.NEED_DATA
    assert producer.responses() == [b"OK"]
    assert channel.message_count == count
    assert producer.session.client.pub_counts == {"big": count}


def test_an_mpub_that_fails_midway_answers_mpub_failed_and_keeps_the_first_messages() -> None:
    world = make_world()
    wire = world.connect()
    wire.session.receive_data(mpub_command("t", 5 * MESSAGES_PER_TURN))
    topic = None
    while topic is None or not topic.message_count:
        assert wire.session.run_commands() is Progress.YIELD
        topic = world.broker.core.topics.get("t")
    published = topic.message_count
    persistence = world.broker.core.graph.persistence
    assert isinstance(persistence, RecordingPersistence)
    persistence.failing = "no space left on device"
    assert run_turns(wire)[1] is Progress.STOP
    assert wire.responses() == [b"E_MPUB_FAILED MPUB failed no space left on device"]
    assert published >= MESSAGES_PER_TURN - 1


def test_an_mpub_into_a_topic_deleted_midway_fails() -> None:
    world = make_world()
    wire = world.connect()
    wire.session.receive_data(mpub_command("t", 5 * MESSAGES_PER_TURN))
    while "t" not in world.broker.core.topics or not world.broker.core.topics["t"].message_count:
        assert wire.session.run_commands() is Progress.YIELD
    world.broker.core.delete_topic("t")
    assert run_turns(wire)[1] is Progress.STOP
    assert wire.responses() == [b"E_MPUB_FAILED MPUB failed exiting"]
    assert "t" not in world.broker.core.topics  # the rest did not make a new one

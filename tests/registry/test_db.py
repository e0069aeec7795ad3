"""The registry's registration database on its own: no sockets, no trio, hand-driven clocks."""

from __future__ import annotations

import attrs
import pytest

from trinsq.registry._db import (
    CLIENT,
    GO_ZERO_TIME_NS,
    DebugProducer,
    LookupResult,
    Node,
    PeerAddress,
    PeerInfo,
    Producer,
    Registration,
    RegistrationDB,
)

INACTIVE = 300.0
LIFETIME = 45.0


@attrs.define
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall_ns(self) -> int:
        return int(self.now * 1e9)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(clock: FakeClock) -> RegistrationDB:
    return RegistrationDB(clock=clock, wall_clock_ns=clock.wall_ns)


def peer(n: int) -> PeerInfo:
    return PeerInfo(
        id=f"10.0.0.{n}:5{n:04d}",
        remote_address=f"10.0.0.{n}:5{n:04d}",
        hostname=f"host{n}",
        broadcast_address=f"nsqd{n}",
        tcp_port=4150,
        http_port=4151,
        version="1.3.0",
    )


def connect(db: RegistrationDB, n: int, *registrations: tuple[str, str]) -> PeerInfo:
    """IDENTIFY peer ``n`` and REGISTER each (topic, channel)."""
    p = peer(n)
    db.identify(p)
    for topic, channel in registrations:
        db.register(p, topic, channel)
    return p


def topic(name: str) -> Registration:
    return Registration("topic", name)


def channel(t: str, c: str) -> Registration:
    return Registration("channel", t, c)


# -- primitives --------------------------------------------------------------------------


def test_add_producer_is_idempotent_and_keeps_the_tombstone(db: RegistrationDB) -> None:
    p = peer(1)
    first = Producer(p)
    assert db.add_producer(topic("t"), first)
    db.tombstone("t", p.node)
    assert not db.add_producer(topic("t"), Producer(p))
    [kept] = db.find_producers("topic", "t", "")
    assert kept is first
    assert kept.tombstoned


def test_add_registration_creates_an_empty_key_and_keeps_producers(db: RegistrationDB) -> None:
    db.add_registration(topic("empty"))
    assert db.find_registrations("topic", "empty", "") == [topic("empty")]
    assert db.find_producers("topic", "empty", "") == []
    connect(db, 1, ("t", ""))
    db.add_registration(topic("t"))
    assert len(db.find_producers("topic", "t", "")) == 1


@pytest.mark.parametrize(
    ("registered", "remove", "expected"),
    [
        pytest.param([1, 2], 1, (True, 1), id="one-of-two"),
        pytest.param([1], 1, (True, 0), id="last"),
        pytest.param([1], 2, (False, 1), id="absent-peer"),
        pytest.param([], 1, (False, 0), id="absent-key"),
    ],
)
def test_remove_producer_counts(
    db: RegistrationDB, registered: list[int], remove: int, expected: tuple[bool, int]
) -> None:
    for n in registered:
        db.add_producer(topic("t"), Producer(peer(n)))
    assert db.remove_producer(topic("t"), peer(remove).id) == expected
    # The key is never deleted by removing producers.
    assert db.find_registrations("topic", "t", "") == ([topic("t")] if registered else [])


def test_remove_registration_drops_key_and_producers(db: RegistrationDB) -> None:
    p = connect(db, 1, ("t", "c"))
    db.remove_registration(topic("t"))
    assert db.find_registrations("topic", "t", "") == []
    assert db.lookup_registrations(p.id) == [CLIENT, channel("t", "c")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(("topic", "*", ""), [topic("a"), topic("b")], id="all-topics"),
        pytest.param(("topic", "a", ""), [topic("a")], id="exact"),
        pytest.param(("topic", "zz", ""), [], id="exact-missing"),
        pytest.param(("channel", "a", "*"), [channel("a", "x"), channel("a", "y")], id="channels"),
        pytest.param(("channel", "*", "x"), [channel("a", "x"), channel("b", "x")], id="subkey"),
        pytest.param(
            ("channel", "*", "*"),
            [channel("a", "x"), channel("a", "y"), channel("b", "x")],
            id="both",
        ),
        pytest.param(("topic", "a", "*"), [topic("a")], id="wild-subkey-on-topic"),
        pytest.param(("client", "", ""), [CLIENT], id="client"),
    ],
)
def test_find_registrations(
    db: RegistrationDB, query: tuple[str, str, str], expected: list[Registration]
) -> None:
    connect(db, 1, ("a", "x"), ("a", "y"))
    connect(db, 2, ("b", "x"))
    assert db.find_registrations(*query) == expected


@pytest.mark.parametrize(
    ("query", "expected_peers"),
    [
        pytest.param(("channel", "a", "*"), [1, 2], id="dedup-across-channels"),
        pytest.param(("topic", "*", ""), [1, 2, 3], id="dedup-across-topics"),
        pytest.param(("channel", "a", "x"), [1, 2], id="exact"),
        pytest.param(("channel", "a", "nope"), [], id="exact-missing"),
        pytest.param(("client", "", ""), [1, 2, 3], id="clients"),
    ],
)
def test_find_producers(
    db: RegistrationDB, query: tuple[str, str, str], expected_peers: list[int]
) -> None:
    connect(db, 1, ("a", "x"), ("a", "y"), ("b", ""))
    connect(db, 2, ("a", "x"), ("a", "y"))
    connect(db, 3, ("b", ""))
    found = db.find_producers(*query)
    assert [p.peer.id for p in found] == [peer(n).id for n in expected_peers]


def test_lookup_registrations(db: RegistrationDB) -> None:
    p = connect(db, 1, ("a", "x"), ("b", ""))
    connect(db, 2, ("c", ""))
    assert db.lookup_registrations(p.id) == [CLIENT, channel("a", "x"), topic("a"), topic("b")]
    assert db.lookup_registrations("nobody") == []


# -- the TCP protocol's use ----------------------------------------------------------------


def test_identify_and_touch_stamp_both_clocks(db: RegistrationDB, clock: FakeClock) -> None:
    p = peer(1)
    assert db.identify(p)
    assert (p.last_update, p.last_update_ns) == (1000.0, 1000 * 10**9)
    clock.now = 1015.0
    db.touch(p)
    assert (p.last_update, p.last_update_ns) == (1015.0, 1015 * 10**9)
    assert db.find_producers("client", "", "")[0].peer is p


def test_register_adds_channel_and_topic_and_reports_only_new(db: RegistrationDB) -> None:
    p = peer(1)
    assert db.register(p, "t", "c") == [channel("t", "c"), topic("t")]
    assert db.register(p, "t", "c2") == [channel("t", "c2")]
    assert db.register(p, "t") == []
    # One PeerInfo shared by every registration, so a PING refreshes it everywhere.
    assert {id(pr.peer) for pr in db.find_producers("channel", "t", "*")} == {id(p)}


@pytest.mark.parametrize(
    ("others", "command", "removed", "remaining"),
    [
        pytest.param(
            False,
            ("t", "c"),
            [channel("t", "c")],
            {channel("t", "c"), topic("t")},
            id="channel-key-kept",
        ),
        pytest.param(
            False,
            ("t", "c#ephemeral"),
            [channel("t", "c#ephemeral")],
            {topic("t")},
            id="ephemeral-channel-deleted",
        ),
        pytest.param(
            True,
            ("t", "c#ephemeral"),
            [channel("t", "c#ephemeral")],
            {channel("t", "c#ephemeral"), topic("t")},
            id="ephemeral-channel-still-used",
        ),
        pytest.param(
            False,
            ("t", ""),
            [channel("t", "c"), topic("t")],
            {channel("t", "c"), topic("t")},
            id="topic-also-leaves-channels",
        ),
        pytest.param(
            False,
            ("t#ephemeral", ""),
            [channel("t#ephemeral", "c"), topic("t#ephemeral")],
            {channel("t#ephemeral", "c")},
            id="ephemeral-topic-deleted-channels-kept",
        ),
        pytest.param(
            True,
            ("t#ephemeral", ""),
            [channel("t#ephemeral", "c"), topic("t#ephemeral")],
            {channel("t#ephemeral", "c"), topic("t#ephemeral")},
            id="ephemeral-topic-still-used",
        ),
    ],
)
def test_unregister(
    db: RegistrationDB,
    others: bool,
    command: tuple[str, str],
    removed: list[Registration],
    remaining: set[Registration],
) -> None:
    t, c = command
    registered_channel = c or "c"
    p = connect(db, 1, (t, registered_channel))
    if others:
        connect(db, 2, (t, registered_channel))
    assert db.unregister(p.id, t, c) == removed
    assert (
        set(db.find_registrations("topic", "*", ""))
        | set(db.find_registrations("channel", "*", "*"))
        == remaining
    )


def test_unregister_ephemeral_deletes_an_empty_key_it_was_not_in(db: RegistrationDB) -> None:
    db.create_channel("t", "c#ephemeral")
    assert db.unregister(peer(1).id, "t", "c#ephemeral") == []
    assert db.channels("t") == []


def test_disconnect_keeps_keys(db: RegistrationDB) -> None:
    p = connect(db, 1, ("t", "c"), ("t#ephemeral", "c#ephemeral"))
    gone = db.remove_peer(p.id)
    assert gone == [
        CLIENT,
        channel("t", "c"),
        topic("t"),
        channel("t#ephemeral", "c#ephemeral"),
        topic("t#ephemeral"),
    ]
    assert db.lookup_registrations(p.id) == []
    assert db.topics() == ["t", "t#ephemeral"]
    assert db.channels("t#ephemeral") == ["c#ephemeral"]
    assert db.find_producers("client", "", "") == []


# -- the active filter -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("silent_for", "tombstoned_ago", "active"),
    [
        pytest.param(0.0, None, True, id="fresh"),
        pytest.param(INACTIVE, None, True, id="silent-exactly-timeout"),
        pytest.param(INACTIVE + 0.001, None, False, id="silent-past-timeout"),
        pytest.param(0.0, 0.0, False, id="just-tombstoned"),
        pytest.param(0.0, LIFETIME - 0.001, False, id="tombstone-within-lifetime"),
        pytest.param(0.0, LIFETIME, True, id="tombstone-exactly-lifetime"),
        pytest.param(0.0, LIFETIME + 100, True, id="stale-tombstone"),
        pytest.param(INACTIVE + 1, LIFETIME + 1, False, id="stale-tombstone-but-silent"),
    ],
)
def test_active_filter(
    db: RegistrationDB,
    clock: FakeClock,
    silent_for: float,
    tombstoned_ago: float | None,
    active: bool,
) -> None:
    p = connect(db, 1, ("t", ""))
    start = clock.now
    if tombstoned_ago is not None:
        clock.now = start + silent_for - tombstoned_ago
        db.tombstone("t", p.node)
    clock.now = start + silent_for
    producers = db.find_producers("topic", "t", "")
    result = db.active(producers, inactive_timeout=INACTIVE, tombstone_lifetime=LIFETIME)
    assert result == (producers if active else [])


# -- HTTP helpers --------------------------------------------------------------------------


def test_tombstone_by_node_marks_only_that_node_in_that_topic(
    db: RegistrationDB, clock: FakeClock
) -> None:
    a = connect(db, 1, ("t", ""), ("u", ""))
    connect(db, 2, ("t", ""))
    clock.now = 1010.0
    assert db.tombstone("t", "nsqd1:4151") == 1
    assert db.tombstone("t", "nsqd1:4150") == 0  # the node is broadcast_address:http_port
    assert db.tombstone("missing", "nsqd1:4151") == 0
    states = {
        (r.key, pr.peer.id): (pr.tombstoned, pr.tombstoned_at, pr.tombstoned_at_ns)
        for r in db.find_registrations("topic", "*", "")
        for pr in db.find_producers("topic", r.key, "")
    }
    assert states == {
        ("t", a.id): (True, 1010.0, 1010 * 10**9),
        ("t", peer(2).id): (False, 0.0, GO_ZERO_TIME_NS),
        ("u", a.id): (False, 0.0, GO_ZERO_TIME_NS),
    }


def test_tombstone_wildcard_topic_hits_every_topic_of_the_node(db: RegistrationDB) -> None:
    connect(db, 1, ("t", ""), ("u", ""))
    assert db.tombstone("*", "nsqd1:4151") == 2


def test_topics_and_channels(db: RegistrationDB) -> None:
    assert db.topics() == []
    assert db.channels("t") == []
    connect(db, 1, ("t", "c1"), ("t", "c2"), ("u", ""))
    db.create_topic("v")
    assert db.topics() == ["t", "u", "v"]
    assert db.channels("t") == ["c1", "c2"]
    assert db.channels("unknown") == []


def test_lookup_unknown_topic_is_none(db: RegistrationDB) -> None:
    connect(db, 1, ("t", "c"))
    assert db.lookup("nope", inactive_timeout=INACTIVE, tombstone_lifetime=LIFETIME) is None


def test_lookup_lists_all_channels_and_active_producers(
    db: RegistrationDB, clock: FakeClock
) -> None:
    db.create_topic("empty")
    assert db.lookup("empty", inactive_timeout=INACTIVE, tombstone_lifetime=LIFETIME) == (
        LookupResult([], [])
    )
    silent = connect(db, 1, ("t", "c"))
    clock.now += INACTIVE
    connect(db, 2, ("t", ""))
    connect(db, 3, ("t", ""))
    db.create_channel("t", "unused")
    db.tombstone("t", "nsqd3:4151")
    clock.now += 1  # peer 1 is now silent past the timeout, peer 3 freshly tombstoned
    result = db.lookup("t", inactive_timeout=INACTIVE, tombstone_lifetime=LIFETIME)
    assert result == LookupResult(["c", "unused"], [PeerAddress.of(peer(2))])
    assert silent.last_update < clock.now - INACTIVE
    # nsqlookupd's JSON key order for a producer
    assert [f.name for f in attrs.fields(PeerAddress)] == [
        "remote_address",
        "hostname",
        "broadcast_address",
        "tcp_port",
        "http_port",
        "version",
    ]


def test_nodes_align_tombstones_with_topics(db: RegistrationDB, clock: FakeClock) -> None:
    connect(db, 1, ("t1", "c"), ("t2", ""), ("t3", ""))
    connect(db, 2)
    db.tombstone("t2", "nsqd1:4151")

    def by_node() -> dict[str, tuple[list[str], list[bool]]]:
        nodes = db.nodes(inactive_timeout=INACTIVE, tombstone_lifetime=LIFETIME)
        for node in nodes:
            assert len(node.topics) == len(node.tombstones)
        return {n.broadcast_address: (n.topics, n.tombstones) for n in nodes}

    # A tombstoned node is still listed; only its flag for that topic is set.
    assert by_node() == {
        "nsqd1": (["t1", "t2", "t3"], [False, True, False]),
        "nsqd2": ([], []),
    }
    clock.now += LIFETIME  # the tombstone has lived its lifetime
    assert by_node()["nsqd1"] == (["t1", "t2", "t3"], [False, False, False])


def test_nodes_drop_inactive_clients_and_carry_peer_fields(
    db: RegistrationDB, clock: FakeClock
) -> None:
    connect(db, 1, ("t", ""))
    clock.now += INACTIVE + 1
    connect(db, 2, ("t", ""))
    p2 = peer(2)
    assert db.nodes(inactive_timeout=INACTIVE, tombstone_lifetime=LIFETIME) == [
        Node(
            remote_address=p2.remote_address,
            hostname=p2.hostname,
            broadcast_address=p2.broadcast_address,
            tcp_port=p2.tcp_port,
            http_port=p2.http_port,
            version=p2.version,
            tombstones=[False],
            topics=["t"],
        )
    ]


def test_delete_topic_removes_its_channel_keys_and_topic_key(db: RegistrationDB) -> None:
    p = connect(db, 1, ("t", "c1"), ("t", "c2"), ("u", "c1"))
    gone = db.delete_topic("t")
    assert gone == [channel("t", "c1"), channel("t", "c2"), topic("t")]
    assert db.topics() == ["u"]
    assert db.channels("t") == []
    assert db.lookup_registrations(p.id) == [CLIENT, channel("u", "c1"), topic("u")]
    assert db.delete_topic("absent") == []


def test_create_channel_creates_the_topic_key(db: RegistrationDB) -> None:
    db.create_channel("t", "c")
    assert db.topics() == ["t"]
    assert db.channels("t") == ["c"]
    assert db.lookup("t", inactive_timeout=INACTIVE, tombstone_lifetime=LIFETIME) == (
        LookupResult(["c"], [])
    )


@pytest.mark.parametrize(
    ("topic_name", "channel_name", "found"),
    [("t", "c", True), ("t", "other", False), ("u", "c", False)],
)
def test_delete_channel(
    db: RegistrationDB, topic_name: str, channel_name: str, found: bool
) -> None:
    connect(db, 1, ("t", "c"))
    assert db.delete_channel(topic_name, channel_name) is found
    assert db.channels("t") == ([] if found else ["c"])
    assert db.topics() == ["t"]


def test_debug_dump(db: RegistrationDB, clock: FakeClock) -> None:
    db.create_topic("empty")  # registrations without producers are not shown
    p = connect(db, 1, ("t1", "c1"))
    clock.now = 1020.0
    db.tombstone("t1", p.node)
    dump = db.debug()
    assert list(dump) == ["channel:t1:c1", "client::", "topic:t1:"]
    untouched = DebugProducer(
        broadcast_address="nsqd1",
        hostname="host1",
        http_port=4151,
        id=p.id,
        last_update=1000 * 10**9,
        tcp_port=4150,
        tombstoned=False,
        tombstoned_at=GO_ZERO_TIME_NS,
        version="1.3.0",
    )
    assert dump["client::"] == [untouched]
    assert dump["channel:t1:c1"] == [untouched]
    assert dump["topic:t1:"] == [
        attrs.evolve(untouched, tombstoned=True, tombstoned_at=1020 * 10**9)
    ]
    assert GO_ZERO_TIME_NS == -6795364578871345152
    names = [f.name for f in attrs.fields(DebugProducer)]
    assert names == sorted(names)  # Go encodes a map: keys sorted


# -- trinsq's expiry of emptied registrations --------------------------------------------


def everything(db: RegistrationDB) -> set[Registration]:
    return {
        *db.find_registrations("client", "", ""),
        *db.find_registrations("topic", "*", ""),
        *db.find_registrations("channel", "*", "*"),
    }


@pytest.mark.parametrize(
    ("departure", "elapsed", "expired"),
    [
        pytest.param("disconnect", INACTIVE, False, id="disconnect-at-timeout"),
        pytest.param("disconnect", INACTIVE + 0.001, True, id="disconnect-past-timeout"),
        pytest.param("unregister", INACTIVE, False, id="unregister-at-timeout"),
        pytest.param("unregister", INACTIVE + 0.001, True, id="unregister-past-timeout"),
    ],
)
def test_emptied_registrations_expire(
    db: RegistrationDB, clock: FakeClock, departure: str, elapsed: float, expired: bool
) -> None:
    p = connect(db, 1, ("t", "c"))
    if departure == "disconnect":
        db.remove_peer(p.id)
        emptied = {CLIENT, channel("t", "c"), topic("t")}
    else:
        db.unregister(p.id, "t", "c")
        db.unregister(p.id, "t")
        emptied = {channel("t", "c"), topic("t")}
    before = everything(db)
    dropped = db.expire_empty(clock.now + elapsed, INACTIVE)
    assert set(dropped) == (emptied if expired else set())
    assert everything(db) == before - set(dropped)


def test_http_created_registrations_never_expire(db: RegistrationDB, clock: FakeClock) -> None:
    db.create_topic("made")
    db.create_channel("t", "c")
    assert db.expire_empty(clock.now + 10 * INACTIVE, INACTIVE) == []
    assert everything(db) == {topic("made"), topic("t"), channel("t", "c")}


def test_recreating_an_emptied_registration_keeps_it(db: RegistrationDB, clock: FakeClock) -> None:
    p = connect(db, 1, ("t", ""))
    db.remove_peer(p.id)
    db.create_topic("t")
    assert db.expire_empty(clock.now + 10 * INACTIVE, INACTIVE) == [CLIENT]
    assert db.topics() == ["t"]


def test_repopulated_registration_does_not_expire(db: RegistrationDB, clock: FakeClock) -> None:
    p = connect(db, 1, ("t", ""))
    db.unregister(p.id, "t")
    clock.now += 1
    db.register(p, "t")
    assert db.expire_empty(clock.now + 10 * INACTIVE, INACTIVE) == []


def test_emptied_topic_is_kept_while_a_channel_key_remains(
    db: RegistrationDB, clock: FakeClock
) -> None:
    db.create_channel("t", "kept")  # operator-made channel, and so its topic
    p = connect(db, 1, ("t", "c"))
    db.remove_peer(p.id)
    later = clock.now + INACTIVE + 1
    assert set(db.expire_empty(later, INACTIVE)) == {CLIENT, channel("t", "c")}
    assert db.topics() == ["t"]
    db.delete_channel("t", "kept")
    assert db.expire_empty(later, INACTIVE) == [topic("t")]
    assert db.topics() == []


def test_expiry_measures_from_when_the_last_producer_left(
    db: RegistrationDB, clock: FakeClock
) -> None:
    connect(db, 1, ("t", ""))
    p2 = connect(db, 2, ("t", ""))
    db.remove_peer(peer(1).id)
    clock.now += 100  # peer 2 leaves later: the clock starts then
    db.remove_peer(p2.id)
    assert db.expire_empty(clock.now + INACTIVE, INACTIVE) == []
    assert set(db.expire_empty(clock.now + INACTIVE + 1, INACTIVE)) == {CLIENT, topic("t")}

"""The cached bodies of the read endpoints: the same bytes as a fresh build, before and after
every kind of change, and reused while nothing changed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from trinsq.common._json import go_json
from trinsq.registry._db import PeerInfo, RegistrationDB
from trinsq.registry._views import RegistryViews

from .test_db import INACTIVE, LIFETIME, FakeClock, connect, peer

Change = Callable[[RegistrationDB, FakeClock], object]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(clock: FakeClock) -> RegistrationDB:
    return RegistrationDB(clock=clock, wall_clock_ns=clock.wall_ns)


@pytest.fixture
def views(db: RegistrationDB) -> RegistryViews:
    return RegistryViews(db, inactive_timeout=INACTIVE, tombstone_lifetime=LIFETIME)


def fresh(db: RegistrationDB) -> dict[str, bytes | None]:
    """Every body as the uncached path encodes it."""
    limits = {"inactive_timeout": INACTIVE, "tombstone_lifetime": LIFETIME}
    result = db.lookup("t", **limits)
    return {
        "lookup": None
        if result is None
        else go_json({"channels": result.channels, "producers": result.producers}),
        "nodes": go_json({"producers": db.nodes(**limits)}),
        "topics": go_json({"topics": db.topics()}),
        "channels": go_json({"channels": db.channels("t")}),
    }


def cached(views: RegistryViews) -> dict[str, bytes | None]:
    return {
        "lookup": views.lookup("t"),
        "nodes": views.nodes(),
        "topics": views.topics(),
        "channels": views.channels("t"),
    }


def setup(db: RegistrationDB, clock: FakeClock) -> list[PeerInfo]:
    """Two producers of ``t``, the first heard 10 s before the second; returns them."""
    first = connect(db, 1, ("t", "c1"), ("u", ""))
    clock.now += 10
    return [first, connect(db, 2, ("t", "c2"), ("t", "e#ephemeral"))]


CHANGES: dict[str, Change] = {
    "register a new producer": lambda db, clock: connect(db, 3, ("t", "")),
    "register a new channel": lambda db, clock: db.register(peer(1), "t", "c3"),
    "unregister an ephemeral channel": lambda db, clock: db.unregister(
        peer(2).id, "t", "e#ephemeral"
    ),
    "unregister the topic": lambda db, clock: db.unregister(peer(1).id, "t"),
    "disconnect": lambda db, clock: db.remove_peer(peer(2).id),
    "tombstone": lambda db, clock: db.tombstone("t", "nsqd1:4151"),
    "create a topic": lambda db, clock: db.create_topic("v"),
    "create a channel": lambda db, clock: db.create_channel("t", "c9"),
    "delete the topic": lambda db, clock: db.delete_topic("t"),
    "delete a channel": lambda db, clock: db.delete_channel("t", "c1"),
    "a producer goes silent": lambda db, clock: setattr(clock, "now", clock.now + INACTIVE - 5),
    "expiry of emptied keys": lambda db, clock: (
        db.remove_peer(peer(1).id),
        db.remove_peer(peer(2).id),
        db.expire_empty(clock.now + INACTIVE + 1, INACTIVE),
    ),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_bodies_follow_every_change(
    db: RegistrationDB, clock: FakeClock, views: RegistryViews, change: Change
) -> None:
    setup(db, clock)
    assert cached(views) == fresh(db)
    before = fresh(db)
    change(db, clock)
    after = fresh(db)
    assert after != before, "the change should show in some body"
    assert cached(views) == after


def test_a_missing_topic_is_none_until_registered(
    db: RegistrationDB, clock: FakeClock, views: RegistryViews
) -> None:
    assert views.lookup("t") is None
    assert views.channels("t") == b'{"channels":[]}'
    connect(db, 1, ("t", ""))
    assert views.lookup("t") == fresh(db)["lookup"]
    assert views.channels("t") == b'{"channels":[]}'


def test_unchanged_registrations_reuse_the_body(
    db: RegistrationDB, clock: FakeClock, views: RegistryViews
) -> None:
    one, _ = setup(db, clock)
    first = cached(views)
    clock.now += 5
    db.touch(one)  # a PING of a listed producer changes nothing
    again = cached(views)
    assert all(again[k] is first[k] for k in first)  # the very same objects: not rebuilt
    assert again == fresh(db)


def test_a_tombstone_ends_by_time(
    db: RegistrationDB, clock: FakeClock, views: RegistryViews
) -> None:
    setup(db, clock)
    db.tombstone("t", "nsqd1:4151")
    hidden = cached(views)
    assert b"nsqd1" not in (hidden["lookup"] or b"")
    assert b'"tombstones":[true,false],"topics":["t","u"]' in (hidden["nodes"] or b"")
    clock.now += LIFETIME - 0.001
    assert cached(views) == hidden
    clock.now += 0.001  # the lifetime is over: visible again, with no change to the database
    shown = cached(views)
    assert shown == fresh(db)
    assert b"nsqd1" in (shown["lookup"] or b"")
    assert b"true" not in (shown["nodes"] or b"")


def test_silence_ends_a_listing_by_time(
    db: RegistrationDB, clock: FakeClock, views: RegistryViews
) -> None:
    setup(db, clock)  # peer 1 was last heard 10 s before peer 2
    both = cached(views)
    clock.now += INACTIVE - 10
    assert cached(views) == both  # peer 1 is at the timeout exactly: still listed
    clock.now += 0.001
    one = cached(views)
    assert one == fresh(db)
    assert b"nsqd1" not in (one["lookup"] or b"")
    assert b"nsqd1" not in (one["nodes"] or b"")


def test_a_ping_revives_a_silent_producer(
    db: RegistrationDB, clock: FakeClock, views: RegistryViews
) -> None:
    one, two = setup(db, clock)
    clock.now += INACTIVE + 1
    db.touch(two)
    silent = cached(views)
    assert b"nsqd1" not in (silent["lookup"] or b"")
    generation = db.generation
    db.touch(one)  # a PING: no change to the generation, yet the body must change
    assert db.generation == generation
    revived = cached(views)
    assert revived == fresh(db)
    assert b"nsqd1" in (revived["lookup"] or b"")


@pytest.mark.parametrize(
    "change",
    [
        lambda db: db.register(peer(1), "t", "c1"),  # already there
        lambda db: db.unregister(peer(9).id, "t", "c1"),  # never there
        lambda db: db.tombstone("t", "nowhere:1"),
        lambda db: db.add_registration(db.find_registrations("topic", "t", "")[0]),
        lambda db: db.remove_peer(peer(9).id),
        lambda db: db.delete_channel("t", "absent"),
    ],
)
def test_no_op_changes_keep_the_generation(
    db: RegistrationDB, clock: FakeClock, change: Callable[[RegistrationDB], object]
) -> None:
    setup(db, clock)
    generation = db.generation
    change(db)
    assert db.generation == generation

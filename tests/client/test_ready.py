"""RDY across a consumer's connections: spreading max_in_flight, go-nsq's redistribution,
backoff, and the bounds that always hold."""

from __future__ import annotations

import math
import random

from trinsq.client._backoff import BackoffPolicy
from trinsq.client._ready import ReadyCoordinator, ReadyTimings

POLICY = BackoffPolicy(multiplier=1.0, max_duration=60.0)


def coordinator(
    max_in_flight: int, *, seed: int = 0, policy: BackoffPolicy = POLICY
) -> ReadyCoordinator[str]:
    return ReadyCoordinator(max_in_flight, policy, now=0.0, rng=random.Random(seed))


def test_one_connection_gets_all_of_max_in_flight() -> None:
    ready = coordinator(200)
    assert ready.add_connection("a", max_rdy=2500, now=0) == [("a", 200)]


def test_max_in_flight_is_spread_and_earlier_connections_lowered_first() -> None:
    ready = coordinator(9)
    assert ready.add_connection("a", max_rdy=2500, now=0) == [("a", 9)]
    assert ready.add_connection("b", max_rdy=2500, now=0) == [("a", 4), ("b", 4)]
    assert ready.add_connection("c", max_rdy=2500, now=0) == [("a", 3), ("b", 3), ("c", 3)]
    assert ready.total_rdy == 9


def test_rdy_never_above_the_servers_max_rdy_count() -> None:
    ready = coordinator(5000)
    assert ready.add_connection("a", max_rdy=100, now=0) == [("a", 100)]
    assert ready.add_connection("b", max_rdy=None, now=0) == [("b", 2500)]


def test_a_connection_that_leaves_frees_its_share_for_the_others() -> None:
    ready = coordinator(9)
    for key in "abc":
        ready.add_connection(key, max_rdy=2500, now=0)
    assert ready.remove_connection("c", now=1) == [("a", 4), ("b", 4)]
    assert ready.total_rdy == 8


def test_more_connections_than_max_in_flight_are_refused_then_retried() -> None:
    ready = coordinator(2)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.add_connection("b", max_rdy=2500, now=0)
    assert ready.add_connection("c", max_rdy=2500, now=0) == []
    assert ready.rdy("c") == 0
    assert ready.deadline() == 5.0
    assert ready.tick(5.0) == []  # still full: asked again later
    assert ready.total_rdy == 2


def test_redistribution_moves_rdy_from_idle_connections() -> None:
    ready = coordinator(2, seed=3)
    for key in "abc":
        ready.add_connection(key, max_rdy=2500, now=0)
    given: set[str] = set()
    for step in range(1, 40):
        now = step * 5.0
        for key, count in ready.tick(now):
            if count:
                given.add(key)
        assert ready.total_rdy <= 2
        assert sum(ready.rdy(k) for k in "abc") == ready.total_rdy
    assert "c" in given


def test_a_busy_connection_keeps_its_rdy_in_redistribution() -> None:
    ready = coordinator(1, seed=1)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.add_connection("b", max_rdy=2500, now=0)
    holder = "a" if ready.rdy("a") else "b"
    for step in range(1, 6):  # within low_rdy_timeout (30 s), after which RDY moves anyway
        ready.message_received(holder, now=step * 5.0 - 1)
        ready.message_finished(holder, now=step * 5.0 - 1)
        ready.tick(step * 5.0)
        assert ready.rdy(holder) == 1


def test_backoff_then_single_rdy_1_then_resume() -> None:
    ready = coordinator(4, seed=2)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.add_connection("b", max_rdy=2500, now=0)
    ready.message_received("a", now=1)
    assert ready.message_requeued("a", backoff=True, now=1) == [("a", 0), ("b", 0)]
    assert (ready.backoff_level, ready.backoff_until) == (1, 3.0)
    # Signals during the duration change nothing.
    ready.message_received("b", now=1.5)
    assert ready.message_finished("b", now=1.5) == []
    assert ready.backoff_level == 1
    assert ready.tick(2.9) == []
    test = ready.tick(3.0)
    assert len(test) == 1
    assert test[0][1] == 1
    assert ready.total_rdy == 1
    ready.message_received(test[0][0], now=3.1)
    assert sorted(ready.message_finished(test[0][0], now=3.2)) == [("a", 2), ("b", 2)]
    assert not ready.in_backoff


def test_a_failed_test_message_backs_off_longer() -> None:
    ready = coordinator(4)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.message_requeued("a", backoff=True, now=0)
    assert ready.tick(2.0) == [("a", 1)]
    assert ready.message_requeued("a", backoff=True, now=2.5) == [("a", 0)]
    assert (ready.backoff_level, ready.backoff_until) == (2, 6.5)
    assert ready.tick(6.5) == [("a", 1)]
    # A success lowers the level by one: still backing off, for the shorter duration.
    assert ready.message_finished("a", now=7.0) == [("a", 0)]
    assert (ready.backoff_level, ready.backoff_until) == (1, 9.0)
    assert ready.tick(9.0) == [("a", 1)]
    assert ready.message_finished("a", now=9.5) == [("a", 4)]


def test_requeue_without_backoff_outside_backoff_changes_nothing() -> None:
    ready = coordinator(4)
    ready.add_connection("a", max_rdy=2500, now=0)
    assert ready.message_requeued("a", backoff=False, now=1) == []
    assert ready.rdy("a") == 4


def test_requeue_without_backoff_during_backoff_continues_it() -> None:
    ready = coordinator(4)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.message_requeued("a", backoff=True, now=0)
    ready.tick(2.0)
    assert ready.message_requeued("a", backoff=False, now=2.5) == [("a", 0)]
    assert (ready.backoff_level, ready.backoff_until) == (1, 4.5)


def test_no_backoff_when_max_backoff_duration_is_zero() -> None:
    ready = coordinator(4, policy=BackoffPolicy(multiplier=1.0, max_duration=0.0))
    ready.add_connection("a", max_rdy=2500, now=0)
    assert ready.message_requeued("a", backoff=True, now=1) == []
    assert not ready.in_backoff


def test_level_stops_rising_at_the_cap() -> None:
    ready = coordinator(4, policy=BackoffPolicy(multiplier=1.0, max_duration=5.0))
    ready.add_connection("a", max_rdy=2500, now=0)
    now = 0.0
    for _ in range(5):
        ready.message_requeued("a", backoff=True, now=now)
        assert ready.backoff_until is not None
        now = ready.backoff_until
        ready.tick(now)
    assert ready.backoff_level == 2  # 2 ** 3 = 8 > 5


def test_resume_with_no_connection_waits_a_second() -> None:
    ready = coordinator(4)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.message_requeued("a", backoff=True, now=0)
    ready.remove_connection("a", now=1)
    assert ready.tick(2.0) == []
    assert ready.backoff_until == 3.0


def test_adding_a_connection_in_backoff_gives_it_nothing() -> None:
    ready = coordinator(4)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.message_requeued("a", backoff=True, now=0)
    assert ready.add_connection("b", max_rdy=2500, now=1) == []


def test_losing_the_test_connection_in_backoff_moves_rdy_1() -> None:
    ready = coordinator(4, seed=4)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.add_connection("b", max_rdy=2500, now=0)
    ready.message_requeued("a", backoff=True, now=0)
    ((holder, _),) = ready.tick(2.0)
    other = "b" if holder == "a" else "a"
    assert ready.remove_connection(holder, now=2.5) == [(other, 1)]


def test_max_in_flight_zero_pauses_and_back_resumes() -> None:
    ready = coordinator(6)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.add_connection("b", max_rdy=2500, now=0)
    assert ready.set_max_in_flight(0, now=1) == [("a", 0), ("b", 0)]
    assert ready.set_max_in_flight(6, now=2) == [("a", 3), ("b", 3)]


def test_a_stopped_coordinator_sends_no_rdy() -> None:
    ready = coordinator(6)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.message_requeued("a", backoff=True, now=0)
    ready.stop()
    assert ready.backoff_until is None
    assert ready.add_connection("b", max_rdy=2500, now=0) == []
    assert ready.set_max_in_flight(10, now=1) == []
    assert ready.tick(100.0) == []


def test_in_flight_and_starvation() -> None:
    ready = coordinator(10)
    ready.add_connection("a", max_rdy=2500, now=0)
    for _ in range(7):
        ready.message_received("a", now=1)
    assert not ready.is_starved()
    ready.message_received("a", now=1)
    assert ready.in_flight("a") == 8
    assert ready.is_starved()  # 85% of RDY 10 in flight
    ready.message_dropped("a")
    assert ready.in_flight("a") == 7


def test_bounds_hold_under_random_events() -> None:
    """Whatever happens, the RDY sent sums to total_rdy, never passes max_in_flight and no
    connection passes its max_rdy."""
    for seed in range(200):
        rng = random.Random(seed)
        max_in_flight = rng.choice([0, 1, 2, 3, 5, 10, 100])
        ready = ReadyCoordinator[int](
            max_in_flight,
            BackoffPolicy(multiplier=0.1, max_duration=rng.choice([0.0, 1.0, 10.0])),
            now=0.0,
            timings=ReadyTimings(redistribute_interval=0.5),
            rng=random.Random(seed),
        )
        sent: dict[int, int] = {}
        max_rdy: dict[int, int] = {}
        now = 0.0
        next_key = 0
        for _ in range(300):
            now += rng.random()
            event = rng.randrange(8)
            keys = ready.connections
            commands = []
            if event == 0 or not keys:
                max_rdy[next_key] = rng.choice([1, 3, 2500])
                commands = ready.add_connection(next_key, max_rdy=max_rdy[next_key], now=now)
                next_key += 1
            elif event == 1:
                key = rng.choice(keys)
                commands = ready.remove_connection(key, now)
                sent.pop(key, None)
            elif event in (2, 3):
                key = rng.choice(keys)
                ready.message_received(key, now)
                commands = ready.message_requeued(key, backoff=event == 2, now=now)
            elif event == 4:
                key = rng.choice(keys)
                ready.message_received(key, now)
                commands = ready.message_finished(key, now)
            elif event == 5:
                commands = ready.set_max_in_flight(rng.choice([0, 1, 4, 50]), now)
            else:
                commands = ready.tick(max(now, ready.deadline()))
                now = max(now, ready.deadline())
            for key, count in commands:
                assert count <= max_rdy[key]
                sent[key] = count
            assert sum(sent.values()) == ready.total_rdy
            assert ready.total_rdy <= ready.max_in_flight


def test_timer_changes_are_reported_once() -> None:
    ready = ReadyCoordinator[str](
        1, POLICY, now=0.0, timings=ReadyTimings(redistribute_interval=100.0)
    )
    ready.add_connection("a", max_rdy=2500, now=0)
    assert not ready.take_timer_change()
    ready.message_finished("a", now=0.5)
    assert not ready.take_timer_change()  # nothing scheduled by a plain finish
    ready.message_requeued("a", backoff=True, now=1)
    assert ready.take_timer_change()  # the backoff duration
    assert not ready.take_timer_change()
    ready.add_connection("b", max_rdy=2500, now=1)
    ready.tick(3.0)  # the test RDY 1 goes to one of them
    ready.set_max_in_flight(1, now=3.0)
    ready.take_timer_change()
    ready.message_finished("a", now=3.5)  # back to level 0: the one without RDY is refused
    assert ready.take_timer_change()  # and retried later
    assert ready.deadline() == 8.5


def test_a_stopped_coordinator_has_no_deadline() -> None:
    """A deadline left in the past would have the I/O layer call tick in a loop."""
    ready = coordinator(1)
    ready.add_connection("a", max_rdy=2500, now=0)
    ready.stop()
    assert ready.tick(100.0) == []
    assert ready.deadline() == math.inf

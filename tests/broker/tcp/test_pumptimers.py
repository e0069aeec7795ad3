"""The pump timers in virtual time: every timer fires at its due time, in order, whenever it
was scheduled; an earlier request supersedes a later one; a cancelled timer wakes nobody and
keeps nothing of its connection alive."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from trinsq.broker.tcp._pumptimers import PumpTimer, PumpTimers


@pytest.fixture
async def timers() -> AsyncIterator[PumpTimers]:
    timers = PumpTimers()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.run)
        yield timers
        nursery.cancel_scope.cancel()


class Woken:
    """A stand-in for a connection: records when its timer woke it."""

    def __init__(self, name: str, log: list[tuple[str, float]]) -> None:
        self.name = name
        self.log = log
        self.timer = PumpTimer(self.wake)

    def wake(self) -> None:
        self.log.append((self.name, trio.current_time()))


async def test_timers_fire_at_their_due_times_in_order(
    autojump_clock: trio.testing.MockClock, timers: PumpTimers
) -> None:
    log: list[tuple[str, float]] = []
    late, early, same, overdue = (Woken(n, log) for n in ("late", "early", "same", "overdue"))
    start = trio.current_time()
    timers.schedule(late.timer, start + 30)
    timers.schedule(early.timer, start + 5)  # earlier than the task sleeps for
    await trio.sleep(1)
    timers.schedule(same.timer, start + 5)
    timers.schedule(overdue.timer, start + 0.5)  # already due: at once
    await trio.sleep(60)
    assert [name for name, _ in log] == ["overdue", "early", "same", "late"]
    assert [at - start for _, at in log] == pytest.approx([1, 5, 5, 30])


async def test_an_earlier_request_supersedes_a_later_one_and_not_the_reverse(
    autojump_clock: trio.testing.MockClock, timers: PumpTimers
) -> None:
    log: list[tuple[str, float]] = []
    first, second = Woken("first", log), Woken("second", log)
    start = trio.current_time()
    timers.schedule(first.timer, start + 30)
    timers.schedule(first.timer, start + 10)  # sooner: this one counts, once
    timers.schedule(second.timer, start + 10)
    timers.schedule(second.timer, start + 30)  # later while one is pending: ignored
    await trio.sleep(60)
    assert [name for name, _ in log] == ["first", "second"]
    assert [at - start for _, at in log] == pytest.approx([10, 10])


async def test_a_cancelled_timer_wakes_nobody_and_holds_nothing(
    autojump_clock: trio.testing.MockClock, timers: PumpTimers
) -> None:
    log: list[tuple[str, float]] = []
    gone = Woken("gone", log)
    timers.schedule(gone.timer, trio.current_time() + 30)
    gone.timer.cancel()
    ref = weakref.ref(gone)
    del gone
    gc.collect()
    assert ref() is None  # the heap's entry does not keep the connection alive
    await trio.sleep(60)
    assert log == []

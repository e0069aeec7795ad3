"""The pump timers in virtual time: every entry fires at its due time, in order, whenever it
was scheduled."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from trinsq.broker.tcp._pumptimers import PumpTimers


async def test_entries_fire_at_their_due_times_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timers = PumpTimers()
    fired: list[tuple[str, float, float]] = []

    def recorder(name: str) -> Callable[[float], None]:
        return lambda due: fired.append((name, due, trio.current_time()))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.run)
        timers.schedule(start + 30, recorder("late"))
        timers.schedule(start + 5, recorder("early"))  # earlier than the task sleeps for
        await trio.sleep(1)
        timers.schedule(start + 5, recorder("same time"))
        timers.schedule(start + 0.5, recorder("already due"))
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert [(name, due - start) for name, due, _ in fired] == [
        ("already due", 0.5),
        ("early", 5),
        ("same time", 5),
        ("late", 30),
    ]
    # Each fired no sooner than due, and an overdue one at once.
    assert [at - start for _, _, at in fired] == pytest.approx([1, 5, 5, 30])

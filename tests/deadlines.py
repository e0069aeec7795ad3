"""A Trio deadline for every async test, so that a test that runs too long fails alone.

pytest-timeout interrupts the main thread wherever it is; inside ``trio.run`` that leaves the
run half-finished, and every later test then fails with "Attempted to call run() from inside a
run()". Here each Trio test runs under a cancel scope instead: when its deadline passes, the
test and its fixtures are cancelled, torn down, and ``trio.run`` returns normally before the
test is reported as failed. pytest-timeout stays configured only as a last resort, well past
every deadline.

``@pytest.mark.deadline(seconds)`` sets a test's own deadline (the default is
:data:`DEFAULT_DEADLINE`). The deadline is in real seconds even under a ``MockClock``, whose
virtual time may legitimately run far ahead.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import pytest
import trio

__all__ = ["DEFAULT_DEADLINE", "TestDeadlineExceeded"]

# Generous: the slowest ordinary test takes ~5 s on a quiet 2-core machine and under three
# times that with both cores busy with other work.
DEFAULT_DEADLINE = 60.0


class TestDeadlineExceeded(Exception):
    """A Trio test (with its fixtures) ran past its deadline and was cancelled."""

    __test__ = False  # not a test class, despite the name


def _run_with_deadline(
    test: Callable[[], Awaitable[Any]],
    *,
    seconds: float,
    clock: trio.abc.Clock | None = None,
    instruments: Sequence[trio.abc.Instrument] = (),
) -> Any:
    def exceeded() -> TestDeadlineExceeded:
        return TestDeadlineExceeded(
            f"the test ran past its {seconds:g} s deadline and was cancelled"
        )

    async def bounded() -> Any:
        result = None
        with trio.CancelScope() as scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_watchdog, scope, seconds, clock is not None)
                    result = await test()
                    nursery.cancel_scope.cancel()  # the watchdog
            except BaseException as error:
                if scope.cancel_called:
                    raise exceeded() from error
                raise
        if scope.cancel_called:  # cancelled, even if the test swallowed it
            raise exceeded()
        return result

    return trio.run(bounded, clock=clock, instruments=instruments)


async def _watchdog(scope: trio.CancelScope, seconds: float, virtual_clock: bool) -> None:
    if not virtual_clock:
        await trio.sleep(seconds)
    else:
        # A MockClock jumps while every task waits; a thread keeps real time regardless.
        released = threading.Event()
        try:
            await trio.to_thread.run_sync(released.wait, seconds, abandon_on_cancel=True)
        finally:
            released.set()
    scope.cancel()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"deadline(seconds): the Trio test's own deadline (default {DEFAULT_DEADLINE:g} s)",
    )


@pytest.hookimpl(trylast=True)  # after pytest-trio has marked the async tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("trio") is None:
            continue
        marker = item.get_closest_marker("deadline")
        seconds = float(marker.args[0]) if marker is not None else DEFAULT_DEADLINE
        # pytest-trio takes the first trio marker that names a runner: put this one first.
        item.add_marker(
            pytest.mark.trio(run=partial(_run_with_deadline, seconds=seconds)), append=False
        )

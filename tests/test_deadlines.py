"""The per-test Trio deadline (tests/deadlines.py): a test that overruns fails alone, cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

PLUGIN = Path(__file__).with_name("deadlines.py")

INNER_TESTS = """
import pytest
import trio


@pytest.mark.deadline(0.5)
async def test_hangs():
    await trio.sleep_forever()


@pytest.mark.deadline(0.5)
async def test_hangs_and_swallows_the_cancellation():
    try:
        await trio.sleep_forever()
    except trio.Cancelled:
        pass


@pytest.fixture
async def slow_teardown():
    yield
    await trio.sleep_forever()  # cancelled with the test: the teardown cannot hang either


@pytest.mark.deadline(0.5)
async def test_fixture_teardown_hangs(slow_teardown):
    pass


@pytest.mark.deadline(0.5)
async def test_hangs_under_a_mock_clock(autojump_clock):
    await trio.Event().wait()  # nothing to jump to: waits in real time, cut by the deadline


@pytest.mark.deadline(30)
async def test_virtual_hour_is_not_a_real_hour(autojump_clock):
    await trio.sleep(3600)


async def test_after_the_hangs_runs_normally():
    await trio.sleep(0)


def test_sync_tests_are_untouched():
    pass
"""


@pytest.mark.slow
def test_an_overrun_fails_only_its_own_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # whole summary lines
    pytester.makeconftest(PLUGIN.read_text())
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=4)
    for name in (
        "test_hangs",
        "test_hangs_and_swallows_the_cancellation",
        "test_fixture_teardown_hangs",
        "test_hangs_under_a_mock_clock",
    ):
        result.stdout.fnmatch_lines([f"FAILED test_inner.py::{name} - *TestDeadlineExceeded*"])
    result.stdout.no_fnmatch_line("*run() from inside a run()*")

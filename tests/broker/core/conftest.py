"""Fixtures of the graph tests: a hand-driven clock and a scheduler that fires on request."""

from __future__ import annotations

import pytest

from tests.broker.core.test_model import FakeClock, FakeScheduler


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scheduler() -> FakeScheduler:
    return FakeScheduler()

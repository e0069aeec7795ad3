"""The README's consumer example runs as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_readme import run_example


@pytest.mark.slow
def test_consumer_example_runs_as_written(tmp_path: Path) -> None:
    assert run_example(tmp_path, "open_consumer") == ["50 100 2"]

"""The README's embedding example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def run_example(tmp_path: Path, marker: str) -> list[str]:
    """Run the one Python block that mentions ``marker``; return its output lines."""
    (example,) = [block for block in python_blocks() if marker in block]
    script = tmp_path / "example.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.slow
def test_embedding_example_runs_as_written(tmp_path: Path) -> None:
    lines = run_example(tmp_path, "trinsq.open_cluster")
    address = r"127\.0\.0\.1:\d+"
    assert re.fullmatch(rf"{address} {address}", lines[0])  # the broker's TCP and HTTP
    assert lines[1] == "{}"  # no topics yet
    assert re.fullmatch(rf"{address} {address}", lines[2])  # the registry's
    assert re.fullmatch(rf"\['{address}', '{address}'\]", lines[3])  # two brokers
    assert re.fullmatch(rf"\['{address}'\]", lines[4])  # one registry's HTTP address


@pytest.mark.slow
def test_client_example_runs_as_written(tmp_path: Path) -> None:
    assert run_example(tmp_path, "no spaces allowed") == ["E_BAD_TOPIC", "104"]

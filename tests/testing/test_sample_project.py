"""The plugin from the outside: a separate project whose virtualenv only ``pip install``s trinsq
(and pytest with pytest-trio) gets trinsq's fixtures with no configuration of its own; the test
it runs is docs/testing.md's example."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GUIDE = ROOT / "docs" / "testing.md"


def sample_test() -> str:
    """The guide's example (the code block after its ``sample-test`` marker)."""
    text = GUIDE.read_text()
    start = text.index("```python\n", text.index("<!-- sample-test -->")) + len("```python\n")
    return text[start : text.index("```", start)]


@pytest.mark.slow
def test_a_project_that_installs_trinsq_gets_its_fixtures(tmp_path: Path) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "test_app.py").write_text(sample_test())
    (project / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT), "pytest", "pytest-trio"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout

"""Developer sessions: `nox -s tests`, `nox -s quick` (no slow tests), `nox -s lint`,
`nox -s bench -- <scenario> ...`."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole test suite, interop with real NSQ clients included."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.11")
def quick(session: nox.Session) -> None:
    """The tests not marked slow: about 40 s instead of 1.5-2 min, for the edit-test loop."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-m", "not slow", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and mypy --strict on the package and the tests."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("mypy", "--strict", "src/trinsq", "tests")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The benchmark suite (docs/benchmarks.md): `nox -s bench -- writer --start-broker`.

    Without arguments it runs the smoke mode: every scenario for about a second.
    """
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks", *(session.posargs or ["smoke"]))

"""An error that stops a server once it serves (issue 13): `trinsq broker` and `trinsq registry`
log the real exception (type, message, traceback) and exit with status 1. Start-up failures
keep their one line (tests/test_startup_errors.py).

Each failure is injected as a background job that fails once the server has started.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest
import trio

from trinsq._cli import main
from trinsq.broker.cluster._lookup import LookupService
from trinsq.common._running import run_until_signal
from trinsq.registry._server import RegistryServer

pytestmark = pytest.mark.usefixtures("restore_process_state")

EMFILE = OSError(errno.EMFILE, os.strerror(errno.EMFILE))


def _assert_reported(err: str, command: str, what: str) -> None:
    """One FATAL line naming the error, then its traceback down to where it was raised."""
    first, *rest = err[err.index("FATAL: ") :].splitlines()
    assert first == f"FATAL: trinsq {command} stopped by an unexpected error - {what}"
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == what
    assert "Exceptions from Trio nursery" not in err


def test_broker_stopped_by_a_failing_background_job_logs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def fail_once_started(
        self: LookupService, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        # The last job to start: the broker reports itself started right after this.
        task_status.started()
        raise EMFILE

    monkeypatch.setattr(LookupService, "run", fail_once_started)
    argv = ["broker", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"]
    assert main([*argv, f"--data-path={tmp_path}"]) == 1
    err = capsys.readouterr().err
    _assert_reported(err, "broker", "OSError: [Errno 24] Too many open files")
    assert "in fail_once_started" in err


def test_registry_stopped_by_a_failing_background_job_logs_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def fail_once_started(self: RegistryServer) -> None:
        while self.addresses is None:  # set just before it reports itself started
            await trio.sleep(0.01)
        raise EMFILE

    monkeypatch.setattr(RegistryServer, "expire_empty_registrations", fail_once_started)
    assert main(["registry", "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"]) == 1
    err = capsys.readouterr().err
    _assert_reported(err, "registry", "OSError: [Errno 24] Too many open files")
    assert "in fail_once_started" in err


class _Server:
    def request_shutdown(self) -> None:
        pass


async def _serve_then_fail_twice(
    server: _Server, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    async def fail(message: str) -> None:
        raise RuntimeError(message)  # both, before either is cancelled

    async with trio.open_nursery() as nursery:
        task_status.started()
        nursery.start_soon(fail, "first")
        nursery.start_soon(fail, "second")


def test_several_errors_at_once_are_all_logged(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("trinsq.tests.runtime-errors")
    log.handlers[:] = [logging.StreamHandler()]  # to stderr, as the commands log
    log.propagate = False
    assert run_until_signal("broker", _Server(), _serve_then_fail_twice, log) == 1
    err = capsys.readouterr().err
    assert "stopped by an unexpected error - ExceptionGroup:" in err
    assert "RuntimeError: first" in err
    assert "RuntimeError: second" in err

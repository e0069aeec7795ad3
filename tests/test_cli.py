"""The ``trinsq`` command: dispatch, exit codes, and one-line errors on stderr."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

import trinsq.broker
import trinsq.tools.stat
from trinsq._cli import main
from trinsq.broker.config._options import BrokerOptions
from trinsq.tools.stat import StatOptions


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["broker", "--bogus"], "trinsq broker: flag provided but not defined: -bogus"),
        (
            ["broker", "-topology-zone=x"],
            "trinsq broker: flag provided but not defined: -topology-zone",
        ),
        (
            ["broker", "--msg-timeout", "abc"],
            'trinsq broker: invalid value "abc" for flag -msg-timeout: '
            'time: invalid duration "abc"',
        ),
        (["broker", "--node-id=1024"], "trinsq broker: --node-id must be [0,1024), got 1024"),
        (["broker", "--config=/nonexistent/nsqd.cfg"], "trinsq broker: failed to load config "
         "file /nonexistent/nsqd.cfg - No such file or directory"),
        (["registry", "--bogus"], "trinsq registry: flag provided but not defined: -bogus"),
        (["registry", "--tcp-address=4160"], "trinsq registry: --tcp-address: '4160' is not a "
         "host:port"),
        (["stat", "--bogus"], "trinsq stat: flag provided but not defined: -bogus"),
        (["stat", "--count=x"], 'trinsq stat: invalid value "x" for flag -count: parse error'),
        (["nsqd"], 'trinsq: unknown command "nsqd" (see "trinsq --help")'),
        (["--bogus"], 'trinsq: unknown command "--bogus" (see "trinsq --help")'),
    ],
)  # fmt: skip
def test_errors_are_one_line_with_status_2(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == error + "\n"
    assert captured.out == ""


@pytest.mark.parametrize(
    ("argv", "out"),
    [
        (["--version"], "trinsq v0.1.0 (nsqd v1.3.0 compatible)\n"),
        (["broker", "--version"], "trinsq broker v0.1.0 (nsqd v1.3.0 compatible)\n"),
        (["broker", "-version"], "trinsq broker v0.1.0 (nsqd v1.3.0 compatible)\n"),
        (["stat", "--version"], "trinsq stat v0.1.0 (nsq_stat v1.3.0 compatible)\n"),
    ],
)
def test_version(argv: list[str], out: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    assert capsys.readouterr() == (out, "")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], "  broker "),
        (["-h"], "  registry "),
        (["--help"], "  stat "),
        (["broker", "--help"], "  -msg-timeout"),
        (["stat", "--help"], "  -lookupd-http-address value"),
    ],
)
def test_help(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert expected in captured.out
    assert captured.err == ""


def test_no_command_prints_usage_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("Usage: trinsq <command>")
    assert captured.out == ""


def test_argv_defaults_to_sys_argv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["trinsq", "--version"])
    assert main() == 0
    assert capsys.readouterr().out.startswith("trinsq v")


@pytest.mark.parametrize("status", [0, 1])
def test_broker_runs_with_parsed_options(monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    seen: list[BrokerOptions] = []

    def fake_run_broker(options: BrokerOptions) -> int:
        seen.append(options)
        return status

    # stands in for the real server, which is not started by these tests
    monkeypatch.setattr(trinsq.broker, "run_broker", fake_run_broker, raising=False)
    assert main(["broker", "--tcp-address=127.0.0.1:0", "-deflate=false"]) == status
    [options] = seen
    assert (options.tcp_address, options.deflate) == ("127.0.0.1:0", False)


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trinsq", "broker", "--bogus"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr == "trinsq broker: flag provided but not defined: -bogus\n"


def test_the_executable_exits_at_once_with_mains_status_after_flushing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server's work is done when main returns; the interpreter's teardown (seconds on a
    loaded machine) is skipped, but nothing written is lost."""
    import trinsq._cli as cli

    events: list[str] = []

    class Exited(Exception):
        pass

    class Recording:
        def __init__(self, name: str) -> None:
            self.name = name

        def flush(self) -> None:
            events.append(f"flush {self.name}")

    def fake_exit(status: int) -> None:
        events.append(f"exit {status}")
        raise Exited

    monkeypatch.setattr(cli, "main", lambda: 3)
    monkeypatch.setattr(logging, "shutdown", lambda: events.append("logging"))
    monkeypatch.setattr(sys, "stdout", Recording("stdout"))
    monkeypatch.setattr(sys, "stderr", Recording("stderr"))
    monkeypatch.setattr(os, "_exit", fake_exit)
    with pytest.raises(Exited):
        cli.run()
    assert events == ["logging", "flush stdout", "flush stderr", "exit 3"]


def test_stat_runs_with_parsed_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[StatOptions] = []

    def fake_run_stat(options: StatOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(trinsq.tools.stat, "run_stat", fake_run_stat)
    argv = ["stat", "-topic", "t", "--channel=c", "--count=3", "--interval=250ms"]
    argv += ["--nsqd-http-address=a:1", "--nsqd-http-address", "b:2"]
    assert main(argv) == 0
    [options] = seen
    assert (options.topic, options.channel, options.count, options.interval) == ("t", "c", 3, 0.25)
    assert options.nsqd_http_address == ["a:1", "b:2"]
    assert options.lookupd_http_address == []


def test_stat_help_shows_count_without_a_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stat", "--help"]) == 0
    out = capsys.readouterr().out
    assert "  -count int\n    \tnumber of reports\n" in out
    assert "None" not in out

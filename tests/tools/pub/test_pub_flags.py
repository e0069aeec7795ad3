"""``trinsq pub``'s command line: to_nsq's flags, defaults, refusals and exit statuses."""

from __future__ import annotations

import re

import pytest

import trinsq.tools.pub
from trinsq._cli import main
from trinsq.tools.pub import PubOptions, parse_pub_args

LOG_LINE = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "


def test_defaults_are_to_nsqs() -> None:
    options = parse_pub_args(["--topic=t", "--nsqd-tcp-address=127.0.0.1:4150"])
    assert options is not None
    assert options.delimiter_byte == b"\n"
    assert options.rate == 0
    assert options.producer_opt == []
    config = options.client_config()
    assert config.max_in_flight == 1
    assert config.output_buffer_timeout == 0.25
    assert config.user_agent.startswith("trinsq-pub/")


def test_addresses_repeat_and_split_on_commas_producer_opts_do_not() -> None:
    options = parse_pub_args(
        [
            "-topic",
            "t",
            "--nsqd-tcp-address=a:1,b:2",
            "--nsqd-tcp-address",
            "a:1",
            "--producer-opt=client_id,x,y",
            "--producer-opt=user_agent,mine",
            "--rate=5",
        ]
    )
    assert options is not None
    assert options.addresses == ["a:1", "b:2"]  # one producer per nsqd, as to_nsq's map
    assert options.config_fields == {"client_id": "x,y", "user_agent": "mine"}
    # to_nsq sets its user agent after the flags: a --producer-opt cannot change it
    assert options.client_config().user_agent.startswith("trinsq-pub/")
    assert options.client_config().client_id == "x,y"
    assert options.rate == 5


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--bogus"], "trinsq pub: flag provided but not defined: -bogus"),
        (["--rate=x"], 'trinsq pub: invalid value "x" for flag -rate: parse error'),
        (["--version"], "trinsq pub: flag provided but not defined: -version"),
        (
            ["--producer-opt=max_in_flight,lots"],
            'trinsq pub: invalid value "max_in_flight,lots" for flag -producer-opt: '
            'failed to coerce option max_in_flight (lots) - strconv.ParseInt: parsing "lots": '
            "invalid syntax",
        ),
    ],
)
def test_bad_flags_are_one_line_with_status_2(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pub", *argv]) == 2
    assert capsys.readouterr().err == line + "\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nsqd-tcp-address=127.0.0.1:4150"], "--topic required"),
        (["--topic=t", "--delimiter=ab"], "--delimiter must be a single byte"),
        (["--topic=t", "--delimiter="], "--delimiter must be a single byte"),
        (["--topic=t", "--delimiter=\u00e9"], "--delimiter must be a single byte"),  # 2 bytes
        (["--topic=t"], "--nsqd-tcp-address required"),
        (
            [
                "--topic=t",
                "--nsqd-tcp-address=127.0.0.1:4150",
                "--producer-opt=deflate",
                "--producer-opt=snappy",
            ],
            "failed to create nsq.Producer - snappy and deflate cannot both be enabled",
        ),
        (
            ["--topic=t", "--nsqd-tcp-address=nowhere"],
            "failed to create nsq.Producer - not a host:port address: 'nowhere'",
        ),
    ],
)
def test_refused_values_are_a_fatal_log_line_with_status_1(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pub", *argv]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(LOG_LINE + re.escape(message) + "\n", err), err


def test_help_lists_to_nsqs_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pub", "--help"]) == 0
    out = capsys.readouterr().out
    for line in (
        "  -delimiter string",
        '    \tcharacter to split input from stdin (default "\\n")',
        "  -nsqd-tcp-address value",
        "  -producer-opt value",
        "  -rate int",
        "    \tThrottle messages to n/second. 0 to disable",
        "  -topic string",
    ):
        assert line in out.splitlines()


def test_pub_runs_with_checked_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[PubOptions] = []

    def fake_run_pub(options: PubOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(trinsq.tools.pub, "run_pub", fake_run_pub)
    assert main(["pub", "--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--delimiter=,"]) == 0
    assert [(options.topic, options.delimiter_byte) for options in seen] == [("t", b",")]

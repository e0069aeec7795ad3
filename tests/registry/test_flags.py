"""``trinsq registry`` flags: nsqlookupd's names, defaults, Go flag syntax and its config file."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

import trinsq.registry
from trinsq._cli import main
from trinsq.common._flagparse import UsageError
from trinsq.common._options import OptionError
from trinsq.registry._flags import parse_registry_args
from trinsq.registry._options import RegistryOptions

ALL_FLAGS = [
    "version", "config", "log-level", "log-prefix", "verbose", "tcp-address", "http-address",
    "broadcast-address", "inactive-producer-timeout", "tombstone-lifetime",
]  # fmt: skip

# nsqlookupd v1.3.0's defaults (nsqlookupd/options.go NewOptions), durations in seconds
NSQLOOKUPD_DEFAULTS = [
    ("log_level", "info"),
    ("log_prefix", "[nsqlookupd] "),
    ("tcp_address", "0.0.0.0:4160"),
    ("http_address", "0.0.0.0:4161"),
    ("broadcast_address", socket.gethostname()),
    ("inactive_producer_timeout", 300.0),
    ("tombstone_lifetime", 45.0),
]

# one non-default value per option flag: (flag, text, field, parsed)
FLAG_VALUES = [
    ("log-level", "Warn", "log_level", "warn"),
    ("log-prefix", "[r] ", "log_prefix", "[r] "),
    ("tcp-address", "127.0.0.1:0", "tcp_address", "127.0.0.1:0"),
    ("http-address", "[::1]:8080", "http_address", "[::1]:8080"),
    ("broadcast-address", "r.example", "broadcast_address", "r.example"),
    ("inactive-producer-timeout", "1m30s", "inactive_producer_timeout", 90.0),
    ("tombstone-lifetime", "250ms", "tombstone_lifetime", 0.25),
]

STYLES = [
    pytest.param(lambda f, v: [f"--{f}={v}"], id="--flag=value"),
    pytest.param(lambda f, v: [f"--{f}", v], id="--flag value"),
    pytest.param(lambda f, v: [f"-{f}={v}"], id="-flag=value"),
    pytest.param(lambda f, v: [f"-{f}", v], id="-flag value"),
]


def parse(argv: list[str]) -> RegistryOptions:
    options = parse_registry_args(argv)
    assert options is not None
    return options


@pytest.mark.parametrize(("field", "default"), NSQLOOKUPD_DEFAULTS)
def test_defaults_are_nsqlookupds(field: str, default: object) -> None:
    assert getattr(parse([]), field) == default


def test_defaults_match_the_options_class() -> None:
    assert parse([]) == RegistryOptions()


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("flag", "text", "field", "parsed"), FLAG_VALUES)
def test_flag_styles(
    style: Callable[[str, str], list[str]], flag: str, text: str, field: str, parsed: object
) -> None:
    assert getattr(parse(style(flag, text)), field) == parsed


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("5m", 300.0), ("1h2m3s", 3723.0), ("1.5s", 1.5), ("100us", 0.0001)],
)
def test_durations(text: str, seconds: float) -> None:
    options = parse([f"--inactive-producer-timeout={text}", "-tombstone-lifetime", text])
    assert options.inactive_producer_timeout == pytest.approx(seconds)
    assert options.tombstone_lifetime == pytest.approx(seconds)


@pytest.mark.parametrize("argv", [["--verbose"], ["-verbose=false"], ["--verbose=true"]])
def test_verbose_is_deprecated_and_has_no_effect(argv: list[str]) -> None:
    assert parse(argv) == parse([])


@pytest.mark.parametrize(
    "flag",
    [
        "bogus",
        "lookupd-tcp-address",  # an nsqd flag, not an nsqlookupd one
        "data-path",
        "node-id",
        "broadcast-tcp-port",
        "msg-timeout",
        "Tcp-address",  # names are case-sensitive
        "tombstone",  # and never abbreviated
    ],
)
@pytest.mark.parametrize("dashes", ["-", "--"])
def test_unknown_flags(flag: str, dashes: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_registry_args(["--log-level=debug", f"{dashes}{flag}=x"])
    assert str(caught.value) == f"flag provided but not defined: -{flag}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tombstone-lifetime=abc"],
         'invalid value "abc" for flag -tombstone-lifetime: time: invalid duration "abc"'),
        (["-inactive-producer-timeout", "300"], 'invalid value "300" for flag '
         '-inactive-producer-timeout: time: missing unit in duration "300"'),
        (["--log-level=loud"], 'invalid value "loud" for flag -log-level: '
         "invalid log level 'loud' (debug, info, warn, error, fatal)"),
        (["--verbose=yes"], 'invalid boolean value "yes" for -verbose: parse error'),
        (["--tcp-address"], "flag needs an argument: -tcp-address"),
        (["--verbose", "x"], 'unexpected argument "x": flags start with -'),
    ],
)  # fmt: skip
def test_bad_values(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_registry_args(argv)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--inactive-producer-timeout=-1s"], "--inactive-producer-timeout must not be negative"),
        (["--tombstone-lifetime", "-1ms"], "--tombstone-lifetime must not be negative"),
        (["--tcp-address=localhost"], "--tcp-address: 'localhost' is not a host:port"),
        (["--http-address="], "--http-address: '' is not a host:port"),
    ],
)
def test_refused_options(argv: list[str], message: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse_registry_args(argv)
    assert str(caught.value) == message


VERSION_LINE = "trinsq registry v0.1.0 (nsqlookupd v1.3.0 compatible)\n"


@pytest.mark.parametrize("argv", [["--version"], ["-version"], ["--version=1", "--verbose"]])
def test_version(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_registry_args(argv) is None
    assert capsys.readouterr().out == VERSION_LINE


@pytest.mark.parametrize("flag", ["-h", "--help", "-help"])
def test_help(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_registry_args([flag]) is None
    out = capsys.readouterr().out
    assert out.startswith("Usage: trinsq registry [flags]\n")
    for name in ALL_FLAGS:
        assert f"\n  -{name}" in out
    assert "  -inactive-producer-timeout duration\n" in out
    assert "(default 5m0s)" in out
    assert "(default 45s)" in out
    assert '(default "0.0.0.0:4160")' in out
    assert '(default "[nsqlookupd] ")' in out
    assert "data-path" not in out


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "nsqlookupd.cfg"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_config_precedence(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, 'tcp_address = "127.0.0.1:1"\ntombstone_lifetime = "10s"\nlog_level = "warn"\n'
    )
    options = parse(["--tcp-address=127.0.0.1:2", f"--config={config}", "-log-level", "debug"])
    assert options.tcp_address == "127.0.0.1:2"  # flag beats file
    assert options.log_level == "debug"
    assert options.tombstone_lifetime == 10.0  # file beats default
    assert options.inactive_producer_timeout == 300.0  # default


@pytest.mark.parametrize(
    ("toml", "field", "parsed"),
    [
        ("tombstone_lifetime = 1500", "tombstone_lifetime", 1.5),  # integers are milliseconds
        ('inactive_producer_timeout = "5m"', "inactive_producer_timeout", 300.0),
        ('log_level = "ERROR"', "log_level", "error"),
        ('log_prefix = ""', "log_prefix", ""),
        ('broadcast_address = "r.example"', "broadcast_address", "r.example"),
        ("verbose = true", "log_level", "info"),  # not an option: ignored
        ('data_path = "/x"\n[section]\nkey = 2', "tcp_address", "0.0.0.0:4160"),
    ],
)
def test_config_values(tmp_path: Path, toml: str, field: str, parsed: object) -> None:
    config = write_config(tmp_path, toml)
    assert getattr(parse(["-config", config]), field) == parsed


def test_config_accepts_every_nsqlookupd_example_key(tmp_path: Path) -> None:
    # every key of nsqlookupd's contrib/nsqlookupd.cfg.example (broadcast_address uncommented)
    config = write_config(
        tmp_path,
        """
        log_level = "info"
        tcp_address = "127.0.0.1:4160"
        http_address = "127.0.0.1:4161"
        broadcast_address = "registry.example"
        inactive_producer_timeout = "300s"
        tombstone_lifetime = "45s"
        """,
    )
    assert parse([f"--config={config}"]) == RegistryOptions(
        log_level="info",
        tcp_address="127.0.0.1:4160",
        http_address="127.0.0.1:4161",
        broadcast_address="registry.example",
        inactive_producer_timeout=300.0,
        tombstone_lifetime=45.0,
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("tombstone_lifetime = 1.5", "invalid value for tombstone_lifetime: must be a duration "
         'string like "60s" or integer milliseconds, not a TOML float'),
        ("tcp_address = 4160", "invalid value for tcp_address: must be a string, not a TOML "
         "integer"),
        ('log_level = "loud"', 'invalid value "loud" for log_level: invalid log level '
         "'loud' (debug, info, warn, error, fatal)"),
    ],
)  # fmt: skip
def test_config_bad_values(tmp_path: Path, toml: str, message: str) -> None:
    config = write_config(tmp_path, toml)
    with pytest.raises(UsageError) as caught:
        parse_registry_args([f"--config={config}"])
    assert str(caught.value) == f"config file {config}: {message}"


def test_config_value_refused_by_validate(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'inactive_producer_timeout = "-5s"')
    with pytest.raises(OptionError, match=r"^--inactive-producer-timeout must not be negative$"):
        parse_registry_args([f"--config={config}"])


def test_config_unreadable(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.cfg")
    with pytest.raises(UsageError) as caught:
        parse_registry_args(["--config", path])
    assert str(caught.value) == f"failed to load config file {path} - No such file or directory"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["registry", "--bogus"], "trinsq registry: flag provided but not defined: -bogus"),
        (["registry", "--data-path=/x"], "trinsq registry: flag provided but not defined: "
         "-data-path"),
        (["registry", "-tombstone-lifetime=-1s"], "trinsq registry: --tombstone-lifetime must "
         "not be negative"),
        (["registry", "--config=/nonexistent/nsqlookupd.cfg"], "trinsq registry: failed to load "
         "config file /nonexistent/nsqlookupd.cfg - No such file or directory"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line_with_status_2(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr() == ("", error + "\n")


@pytest.mark.parametrize(("flag", "out"), [("--version", VERSION_LINE), ("-h", "Usage: ")])
def test_cli_version_and_help(flag: str, out: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", flag]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(out)
    assert captured.err == ""


@pytest.mark.parametrize("status", [0, 1])
def test_cli_runs_registry_with_parsed_options(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    seen: list[RegistryOptions] = []

    def fake_run_registry(options: RegistryOptions) -> int:
        seen.append(options)
        return status

    # stands in for the real server, which is not started by these tests
    monkeypatch.setattr(trinsq.registry, "run_registry", fake_run_registry, raising=False)
    assert main(["registry", "--tcp-address=127.0.0.1:0", "-tombstone-lifetime", "1m"]) == status
    [options] = seen
    assert (options.tcp_address, options.tombstone_lifetime) == ("127.0.0.1:0", 60.0)

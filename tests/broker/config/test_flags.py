"""``trinsq broker`` flags: nsqd's names, defaults, Go flag syntax and the TOML config file."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from trinsq.broker.config._config_api import config_value
from trinsq.broker.config._flags import UsageError, parse_broker_args
from trinsq.broker.config._options import BrokerOptions, OptionError, default_node_id
from trinsq.common._flagparse import (
    Flag,
    FlagSet,
    check_non_negative,
    option,
    option_flags,
    option_specs,
)

ALL_FLAGS = [
    "version", "config", "log-level", "log-prefix", "verbose", "node-id", "worker-id",
    "tcp-address", "http-address", "broadcast-address", "broadcast-tcp-port",
    "broadcast-http-port", "lookupd-tcp-address", "http-client-connect-timeout",
    "http-client-request-timeout", "https-address", "auth-http-address", "tls-cert", "tls-key",
    "tls-client-auth-policy", "tls-root-ca-file", "tls-required", "tls-min-version",
    "statsd-address", "statsd-interval", "statsd-mem-stats", "statsd-prefix",
    "statsd-udp-packet-size", "statsd-exclude-ephemeral", "e2e-processing-latency-percentile",
    "e2e-processing-latency-window-time", "http-admin-token", "http-admin-client-cert",
    "data-path", "mem-queue-size", "max-bytes-per-file",
    "sync-every", "sync-timeout", "msg-timeout", "max-msg-timeout",
    "max-msg-size", "max-body-size", "max-req-timeout", "max-rdy-count", "max-channel-consumers",
    "max-heartbeat-interval", "max-output-buffer-size", "max-output-buffer-timeout",
    "min-output-buffer-timeout", "output-buffer-timeout", "deflate", "max-deflate-level",
    "snappy",
]  # fmt: skip

# nsqd v1.3.0's defaults (nsqd/options.go NewOptions), durations in seconds
NSQD_DEFAULTS = [
    ("log_level", "info"),
    ("log_prefix", "[nsqd] "),
    ("node_id", default_node_id()),
    ("tcp_address", "0.0.0.0:4150"),
    ("http_address", "0.0.0.0:4151"),
    ("broadcast_address", socket.gethostname()),
    ("broadcast_tcp_port", 0),
    ("broadcast_http_port", 0),
    ("lookupd_tcp_addresses", []),
    ("http_client_connect_timeout", 2.0),
    ("http_client_request_timeout", 5.0),
    ("https_address", "0.0.0.0:4152"),
    ("auth_http_addresses", []),
    ("tls_cert", ""),
    ("tls_key", ""),
    ("tls_client_auth_policy", ""),
    ("tls_root_ca_file", ""),
    ("tls_required", "false"),
    ("tls_min_version", "tls1.0"),
    ("statsd_address", ""),
    ("statsd_interval", 60.0),
    ("statsd_mem_stats", True),
    ("statsd_prefix", "nsq.%s"),
    ("statsd_udp_packet_size", 508),
    ("statsd_exclude_ephemeral", False),
    ("e2e_processing_latency_percentiles", []),
    ("e2e_processing_latency_window_time", 600.0),
    ("data_path", ""),
    ("mem_queue_size", 10000),
    ("max_bytes_per_file", 104857600),
    ("sync_every", 2500),
    ("sync_timeout", 2.0),
    ("msg_timeout", 60.0),
    ("max_msg_timeout", 900.0),
    ("max_msg_size", 1048576),
    ("max_body_size", 5242880),
    ("max_req_timeout", 3600.0),
    ("max_rdy_count", 2500),
    ("max_channel_consumers", 0),
    ("max_heartbeat_interval", 60.0),
    ("max_output_buffer_size", 65536),
    ("max_output_buffer_timeout", 30.0),
    ("min_output_buffer_timeout", 0.025),
    ("output_buffer_timeout", 0.25),
    ("deflate", True),
    ("max_deflate_level", 6),
    ("snappy", True),
]

# one non-default value per option flag: (flag, text, field, parsed)
FLAG_VALUES = [
    ("log-level", "DEBUG", "log_level", "debug"),
    ("log-prefix", "[b] ", "log_prefix", "[b] "),
    ("node-id", "1023", "node_id", 1023),
    ("tcp-address", "127.0.0.1:0", "tcp_address", "127.0.0.1:0"),
    ("http-address", "[::1]:8080", "http_address", "[::1]:8080"),
    ("broadcast-address", "b.example", "broadcast_address", "b.example"),
    ("broadcast-tcp-port", "1", "broadcast_tcp_port", 1),
    ("broadcast-http-port", "2", "broadcast_http_port", 2),
    ("lookupd-tcp-address", "a:1,b:2", "lookupd_tcp_addresses", ["a:1", "b:2"]),
    ("http-client-connect-timeout", "1s", "http_client_connect_timeout", 1.0),
    ("http-client-request-timeout", "3s", "http_client_request_timeout", 3.0),
    ("https-address", "127.0.0.1:4443", "https_address", "127.0.0.1:4443"),
    ("auth-http-address", "a:1", "auth_http_addresses", ["a:1"]),
    ("tls-root-ca-file", "/ca.pem", "tls_root_ca_file", "/ca.pem"),
    ("tls-min-version", "TLS1.2", "tls_min_version", "tls1.2"),
    ("statsd-address", "127.0.0.1:8125", "statsd_address", "127.0.0.1:8125"),
    ("statsd-interval", "10s", "statsd_interval", 10.0),
    ("statsd-prefix", "x.%s", "statsd_prefix", "x.%s"),
    ("statsd-udp-packet-size", "1000", "statsd_udp_packet_size", 1000),
    (
        "e2e-processing-latency-percentile",
        "0.99,1.0",
        "e2e_processing_latency_percentiles",
        [0.99, 1.0],
    ),
    ("e2e-processing-latency-window-time", "1m", "e2e_processing_latency_window_time", 60.0),
    ("http-admin-token", "s3cret", "http_admin_token", "s3cret"),
    ("data-path", "/var/lib/x", "data_path", "/var/lib/x"),
    ("mem-queue-size", "0", "mem_queue_size", 0),
    ("max-bytes-per-file", "1024", "max_bytes_per_file", 1024),
    ("sync-every", "1", "sync_every", 1),
    ("sync-timeout", "500ms", "sync_timeout", 0.5),
    ("msg-timeout", "1m30s", "msg_timeout", 90.0),
    ("max-msg-timeout", "1h", "max_msg_timeout", 3600.0),
    ("max-msg-size", "10", "max_msg_size", 10),
    ("max-body-size", "20", "max_body_size", 20),
    ("max-req-timeout", "90m", "max_req_timeout", 5400.0),
    ("max-rdy-count", "100", "max_rdy_count", 100),
    ("max-channel-consumers", "3", "max_channel_consumers", 3),
    ("max-heartbeat-interval", "10s", "max_heartbeat_interval", 10.0),
    ("max-output-buffer-size", "4096", "max_output_buffer_size", 4096),
    ("max-output-buffer-timeout", "2s", "max_output_buffer_timeout", 2.0),
    ("min-output-buffer-timeout", "1ms", "min_output_buffer_timeout", 0.001),
    ("output-buffer-timeout", "0", "output_buffer_timeout", 0.0),
    ("max-deflate-level", "9", "max_deflate_level", 9),
]

STYLES = [
    pytest.param(lambda f, v: [f"--{f}={v}"], id="--flag=value"),
    pytest.param(lambda f, v: [f"--{f}", v], id="--flag value"),
    pytest.param(lambda f, v: [f"-{f}={v}"], id="-flag=value"),
    pytest.param(lambda f, v: [f"-{f}", v], id="-flag value"),
]


def parse(argv: list[str]) -> BrokerOptions:
    options = parse_broker_args(argv)
    assert options is not None
    return options


@pytest.mark.parametrize(("field", "default"), NSQD_DEFAULTS)
def test_defaults_are_nsqds(field: str, default: object) -> None:
    assert getattr(parse([]), field) == default


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("flag", "text", "field", "parsed"), FLAG_VALUES)
def test_flag_styles(
    style: Callable[[str, str], list[str]], flag: str, text: str, field: str, parsed: object
) -> None:
    assert getattr(parse(style(flag, text)), field) == parsed


@pytest.mark.parametrize(
    ("argv", "deflate", "snappy"),
    [
        (["--deflate"], True, True),
        (["-deflate=false", "--snappy=0"], False, False),
        (["--deflate=F", "-snappy=FALSE"], False, False),
        (["--deflate=false", "--deflate=t"], True, True),  # the last one wins
        (["--snappy=False", "--deflate=TRUE"], True, False),
    ],
)
def test_bool_flags(argv: list[str], deflate: bool, snappy: bool) -> None:
    options = parse(argv)
    assert (options.deflate, options.snappy) == (deflate, snappy)


@pytest.mark.parametrize("argv", [["--verbose"], ["-worker-id"], ["--verbose=false"]])
def test_deprecated_flags_have_no_effect(argv: list[str]) -> None:
    assert parse(argv) == parse([])


@pytest.mark.parametrize(
    ("argv", "field", "parsed"),
    [
        (["--mem-queue-size=0x10"], "mem_queue_size", 16),  # Go flags read ints with base 0
        (["--mem-queue-size=010"], "mem_queue_size", 8),
        (["--mem-queue-size=0o10"], "mem_queue_size", 8),
        (["--mem-queue-size=1_000"], "mem_queue_size", 1000),
        (["--mem-queue-size=+5"], "mem_queue_size", 5),
        (["--mem-queue-size=1", "--mem-queue-size=2"], "mem_queue_size", 2),
        (["--log-prefix", "-x-"], "log_prefix", "-x-"),  # the next argument, even if it has a -
        (["--log-prefix="], "log_prefix", ""),
        (["--http-address="], "http_address", ""),
        (["--data-path=a=b"], "data_path", "a=b"),
        (["--mem-queue-size=5", "--"], "mem_queue_size", 5),
    ],
)
def test_flag_values(argv: list[str], field: str, parsed: object) -> None:
    assert getattr(parse(argv), field) == parsed


@pytest.mark.parametrize(
    "flag",
    [
        "bogus",
        "topology-region",  # nsq HEAD only, not in v1.3.0
        "enable-experiment",
        "Deflate",  # names are case-sensitive
        "mem-queue",  # and never abbreviated
    ],
)
@pytest.mark.parametrize("dashes", ["-", "--"])
def test_unknown_flags(flag: str, dashes: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_broker_args(["--mem-queue-size=1", f"{dashes}{flag}=x", "--deflate"])
    assert str(caught.value) == f"flag provided but not defined: -{flag}"


INVALID_DURATION = 'time: invalid duration "abc"'
NO_UNIT = 'time: missing unit in duration "1"'
BIG = str(1 << 63)
BAD_LEVEL = "invalid log level 'loud' (debug, info, warn, error, fatal)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--msg-timeout=abc"], f'invalid value "abc" for flag -msg-timeout: {INVALID_DURATION}'),
        (["-max-req-timeout", "1"], 'invalid value "1" for flag -max-req-timeout: ' + NO_UNIT),
        (["--mem-queue-size=abc"], 'invalid value "abc" for flag -mem-queue-size: parse error'),
        (["--mem-queue-size= 5"], 'invalid value " 5" for flag -mem-queue-size: parse error'),
        (["--mem-queue-size=1.5"], 'invalid value "1.5" for flag -mem-queue-size: parse error'),
        (["--node-id=" + BIG], f'invalid value "{BIG}" for flag -node-id: value out of range'),
        (["--log-level=loud"], f'invalid value "loud" for flag -log-level: {BAD_LEVEL}'),
        (["--deflate=yes"], 'invalid boolean value "yes" for -deflate: parse error'),
        (["--snappy="], 'invalid boolean value "" for -snappy: parse error'),
        (["--msg-timeout"], "flag needs an argument: -msg-timeout"),
        (["---deflate"], "bad flag syntax: ---deflate"),
        (["-=x"], "bad flag syntax: -=x"),
        (["--deflate", "false"], 'unexpected argument "false": flags start with -'),
        (["--", "--deflate"], 'unexpected argument "--deflate": flags start with -'),
        (["-"], 'unexpected argument "-": flags start with -'),
    ],
)  # fmt: skip
def test_bad_values(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_broker_args(argv)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--node-id=1024"], "--node-id must be [0,1024), got 1024"),
        (["--node-id", "-1"], "--node-id must be [0,1024), got -1"),
        (["--max-deflate-level=10"], "--max-deflate-level must be [1,9]"),
        (["--mem-queue-size=-1"], "--mem-queue-size must not be negative"),
        (["--msg-timeout=-1s"], "--msg-timeout must not be negative"),
    ],
)
def test_refused_options(argv: list[str], message: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse_broker_args(argv)
    assert str(caught.value) == message


@pytest.mark.parametrize("argv", [["--version"], ["-version"], ["--version=true", "--node-id=1"]])
def test_version(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_broker_args(argv) is None
    assert capsys.readouterr().out == "trinsq broker v0.1.0 (nsqd v1.3.0 compatible)\n"


def test_version_false_runs() -> None:
    assert parse_broker_args(["--version=false"]) is not None


def test_version_after_a_bad_flag_is_an_error() -> None:
    # like Go, every flag is parsed before --version is acted on
    with pytest.raises(UsageError):
        parse_broker_args(["--version", "--bogus"])


@pytest.mark.parametrize("flag", ["-h", "--help", "-help"])
def test_help(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_broker_args(["--deflate", flag, "--bogus"]) is None
    out = capsys.readouterr().out
    for name in ALL_FLAGS:
        assert f"\n  -{name}" in out
    assert "  -msg-timeout duration\n" in out
    assert "(default 1m0s)" in out
    assert '(default "0.0.0.0:4150")' in out
    assert (
        "  -deflate\n    \tenable deflate feature negotiation (client compression) (default true)\n"
        in out
    )
    assert "\tpath to store disk-backed messages\n" in out  # zero defaults are not shown
    assert "  -tls-required\n" in out  # a bool-style flag: no value type shown
    assert "topology" not in out  # nsq HEAD flags are not v1.3.0's


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "nsqd.cfg"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_config_precedence(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'mem_queue_size = 5\nmsg_timeout = "5s"\nid = 7\n')
    options = parse(["--mem-queue-size=9", f"--config={config}", "-node-id", "8"])
    assert options.mem_queue_size == 9  # flag beats file
    assert options.node_id == 8
    assert options.msg_timeout == 5.0  # file beats default
    assert options.max_rdy_count == 2500  # default


@pytest.mark.parametrize(
    ("toml", "field", "parsed"),
    [
        ("msg_timeout = 1500", "msg_timeout", 1.5),  # bare integers are milliseconds
        ("msg_timeout = 0", "msg_timeout", 0.0),
        ('msg_timeout = "1m30s"', "msg_timeout", 90.0),
        ("id = 5", "node_id", 5),  # nsqd's config key for --node-id
        ("node_id = 5", "node_id", default_node_id()),  # not a key nsqd reads
        ('mem_queue_size = "20"', "mem_queue_size", 20),
        ('deflate = "false"', "deflate", False),
        ("snappy = false", "snappy", False),
        ('log_level = "WARN"', "log_level", "warn"),
        ('http_address = ""', "http_address", ""),
        ("version = true", "log_level", "info"),  # not an option: ignored, no version printed
        ("bogus = 1\n[section]\nkey = 2", "mem_queue_size", 10000),
    ],
)
def test_config_values(tmp_path: Path, toml: str, field: str, parsed: object) -> None:
    config = write_config(tmp_path, toml)
    assert getattr(parse(["-config", config]), field) == parsed


def test_config_accepts_every_nsqd_example_key(tmp_path: Path) -> None:
    # every key of nsqd's contrib/nsqd.cfg.example, with values of the same TOML types
    config = write_config(
        tmp_path,
        """
        log_level = "debug"
        id = 12
        tcp_address = "127.0.0.1:4150"
        http_address = "127.0.0.1:4151"
        https_address = "127.0.0.1:4152"
        broadcast_address = "broker.example"
        nsqlookupd_tcp_addresses = ["127.0.0.1:4160"]
        http_client_connect_timeout = "3s"
        http_client_request_timeout = "6s"
        data_path = "/var/lib/nsq"
        mem_queue_size = 1000
        max_bytes_per_file = 1048576
        sync_every = 100
        sync_timeout = "3s"
        msg_timeout = "30s"
        max_msg_timeout = "10m"
        max_msg_size = 1024768
        max_req_timeout = "2h"
        max_body_size = 5123840
        max_heartbeat_interval = "30s"
        max_rdy_count = 200
        max_output_buffer_size = 32768
        max_output_buffer_timeout = "1s"
        statsd_address = "127.0.0.1:8125"
        statsd_prefix = "nsq.%s"
        statsd_interval = "30s"
        statsd_mem_stats = true
        statsd_udp_packet_size = 508
        e2e_processing_latency_percentiles = [1.0, 0.99, 0.95]
        e2e_processing_latency_window_time = "10m"
        tls_cert = ""
        tls_key = ""
        tls_client_auth_policy = ""
        tls_root_ca_file = ""
        tls_required = false
        tls_min_version = ""
        deflate = false
        max_deflate_level = 3
        snappy = false
        """,
    )
    options = parse([f"--config={config}"])
    assert options == BrokerOptions(
        log_level="debug",
        node_id=12,
        tcp_address="127.0.0.1:4150",
        http_address="127.0.0.1:4151",
        broadcast_address="broker.example",
        https_address="127.0.0.1:4152",
        lookupd_tcp_addresses=["127.0.0.1:4160"],
        http_client_connect_timeout=3.0,
        http_client_request_timeout=6.0,
        statsd_address="127.0.0.1:8125",
        statsd_interval=30.0,
        e2e_processing_latency_percentiles=[1.0, 0.99, 0.95],
        data_path="/var/lib/nsq",
        mem_queue_size=1000,
        max_bytes_per_file=1048576,
        sync_every=100,
        sync_timeout=3.0,
        msg_timeout=30.0,
        max_msg_timeout=600.0,
        max_msg_size=1024768,
        max_req_timeout=7200.0,
        max_body_size=5123840,
        max_heartbeat_interval=30.0,
        max_rdy_count=200,
        max_output_buffer_size=32768,
        max_output_buffer_timeout=1.0,
        deflate=False,
        max_deflate_level=3,
        snappy=False,
    )


DURATION_TYPE = 'must be a duration string like "60s" or integer milliseconds'


@pytest.mark.parametrize(
    ("toml", "shown", "reason"),
    [
        ("msg_timeout = 1.5", "", f"{DURATION_TYPE}, not a TOML float"),
        ("msg_timeout = true", "", f"{DURATION_TYPE}, not a TOML boolean"),
        ('msg_timeout = "60"', ' "60"', 'time: missing unit in duration "60"'),
        ('mem_queue_size = "0x10"', ' "0x10"', "parse error"),  # base 10 only, as go-options
        ("mem_queue_size = true", "", "must be an integer, not a TOML boolean"),
        ("mem_queue_size = 1e3", "", "must be an integer, not a TOML float"),
        (f"mem_queue_size = {BIG}", "", "value out of range"),
        ("id = 1979-05-27", "", "must be an integer, not a TOML date/time"),
        ("deflate = 1", "", "must be a boolean, not a TOML integer"),
        ('deflate = "yes"', ' "yes"', "parse error"),
        ("tcp_address = 4150", "", "must be a string, not a TOML integer"),
        ('tcp_address = ["a:1"]', "", "must be a string, not a TOML array"),
        ("data_path = {a = 1}", "", "must be a string, not a TOML table"),
        ('log_level = "loud"', ' "loud"', BAD_LEVEL),
    ],
)
def test_config_bad_values(tmp_path: Path, toml: str, shown: str, reason: str) -> None:
    config = write_config(tmp_path, toml)
    with pytest.raises(UsageError) as caught:
        parse_broker_args([f"--config={config}"])
    key = toml.partition(" =")[0]
    assert str(caught.value) == f"config file {config}: invalid value{shown} for {key}: {reason}"


def test_config_value_refused_by_validate(tmp_path: Path) -> None:
    config = write_config(tmp_path, "id = 2000")
    with pytest.raises(OptionError, match=r"^--node-id must be \[0,1024\), got 2000$"):
        parse_broker_args([f"--config={config}"])


@pytest.mark.parametrize("toml", ["msg_timeout = ", "a = 1\na = 2\n", 'a = """\nunterminated\n'])
def test_config_invalid_toml(tmp_path: Path, toml: str) -> None:
    config = write_config(tmp_path, toml)
    with pytest.raises(UsageError) as caught:
        parse_broker_args([f"--config={config}"])
    # tomllib's wording varies between Python versions; the shape does not
    message = str(caught.value)
    assert message.startswith(f"failed to load config file {config} - ")
    assert "(at " in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "reason"),
    [("missing.cfg", "No such file or directory"), (".", "Is a directory")],
)
def test_config_unreadable(tmp_path: Path, name: str, reason: str) -> None:
    path = str(tmp_path / name)
    with pytest.raises(UsageError) as caught:
        parse_broker_args(["--config", path])
    assert str(caught.value) == f"failed to load config file {path} - {reason}"


def test_empty_config_flag_reads_no_file() -> None:
    assert parse(["--config="]) == parse([])


# -- one description per option ----------------------------------------------------------------


@attrs.define(kw_only=True)
class _Toy:
    """A made-up options class: everything about each option is said on its field."""

    max_widgets: int = option(
        7, usage="how many widgets", kind="int", non_negative=True, cfg_key="widgets"
    )
    pause: float = option(1.5, usage="pause between widgets", kind="duration", flag="gap")
    internal: float = option(2.0, kind="duration", non_negative=True)  # no flag

    def validate(self) -> None:
        check_non_negative(self, OptionError)


def test_a_new_option_is_described_once(tmp_path: Path) -> None:
    flags = FlagSet(
        program="toy",
        version_line="toy v0",
        flags=(
            Flag("config", "string", "path to config file", sets_option=False),
            *option_flags(_Toy),
        ),
        options=_Toy,
    )
    assert sorted(flag.name for flag in flags.flags) == ["config", "gap", "max-widgets"]
    config = tmp_path / "toy.toml"
    config.write_text("widgets = 3\n")
    parsed = flags.parse([f"--config={config}", "--gap=250ms"])
    assert parsed == _Toy(max_widgets=3, pause=0.25)
    with pytest.raises(OptionError, match="--max-widgets must not be negative"):
        flags.parse(["--max-widgets=-1"])
    with pytest.raises(OptionError, match="--internal must not be negative"):
        _Toy(internal=-1).validate()


def test_config_api_lists_what_the_options_say() -> None:
    specs = option_specs(BrokerOptions)
    shown = {spec.cfg_key or name for name, spec in specs.items() if spec.config_api}
    assert {"id", "mem_queue_size", "msg_timeout", "snappy"} <= shown
    assert "tls_key" not in shown  # never readable over HTTP
    for opt in shown:
        assert config_value(BrokerOptions(), opt) is not None

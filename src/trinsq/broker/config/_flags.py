"""The ``trinsq broker`` command line: nsqd's flags and nsqd's TOML config file.

The flag names, kinds and config keys are nsqd v1.3.0's (apps/nsqd/main.go, nsqd/options.go);
Go flag syntax and go-options config handling live in :mod:`trinsq.common._flagparse`.
"""

from __future__ import annotations

from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.broker.config._options import BrokerOptions
from trinsq.common._flagparse import Flag, FlagSet, UsageError

__all__ = ["UsageError", "parse_broker_args"]

_REGISTERED = "{} port that will be registered with lookupd (defaults to the port listened on)"
_FLUSH = "client configurable duration of time between flushing to a client"
_FLAGS = (
    Flag("version", "bool", "print version string", sets_option=False),
    Flag("config", "string", "path to config file", sets_option=False),
    Flag("log-level", "level", "set log verbosity: debug, info, warn, error, or fatal"),
    Flag("log-prefix", "string", "log message prefix"),
    Flag("verbose", "bool", "[deprecated] has no effect, use --log-level", sets_option=False),
    Flag(
        "node-id",
        "int",
        "unique part for message IDs, (int) in range [0,1024) (default is hash of hostname)",
        cfg_key="id",
    ),
    Flag("worker-id", "bool", "[deprecated] use --node-id", sets_option=False),
    Flag("tcp-address", "string", "<addr>:<port> to listen on for TCP clients"),
    Flag("http-address", "string", "<addr>:<port> to listen on for HTTP clients (empty: no HTTP)"),
    Flag(
        "broadcast-address",
        "string",
        "address that will be registered with lookupd (defaults to the OS hostname)",
    ),
    Flag("broadcast-tcp-port", "int", _REGISTERED.format("TCP")),
    Flag("broadcast-http-port", "int", _REGISTERED.format("HTTP")),
    Flag(
        "lookupd-tcp-address",
        "list",
        "lookupd TCP address (may be given multiple times)",
        cfg_key="nsqlookupd_tcp_addresses",
        field_name="lookupd_tcp_addresses",
    ),
    Flag(
        "http-client-connect-timeout",
        "duration",
        "timeout for HTTP connect",
    ),
    Flag(
        "http-client-request-timeout",
        "duration",
        "timeout for HTTP request",
    ),
    Flag("https-address", "string", "<addr>:<port> to listen on for HTTPS clients"),
    Flag(
        "auth-http-address",
        "list",
        "<addr>:<port> or a full url to query auth server (may be given multiple times)",
        cfg_key="auth_http_addresses",
        field_name="auth_http_addresses",
    ),
    Flag("tls-cert", "string", "path to certificate file"),
    Flag("tls-key", "string", "path to key file"),
    Flag(
        "tls-client-auth-policy",
        "string",
        "client certificate auth policy ('require' or 'require-verify')",
    ),
    Flag("tls-root-ca-file", "string", "path to certificate authority file"),
    Flag(
        "tls-required", "tlsrequired", "require TLS for client connections (true, false, tcp-https)"
    ),
    Flag(
        "tls-min-version",
        "tlsversion",
        "minimum SSL/TLS version acceptable ('tls1.0', 'tls1.1', 'tls1.2' or 'tls1.3')",
    ),
    Flag("statsd-address", "string", "UDP <addr>:<port> of a statsd daemon for pushing stats"),
    Flag("statsd-interval", "duration", "duration between pushing to statsd"),
    Flag("statsd-mem-stats", "bool", "toggle sending memory and GC stats to statsd"),
    Flag(
        "statsd-prefix", "string", "prefix used for keys sent to statsd (%s for host replacement)"
    ),
    Flag("statsd-udp-packet-size", "int", "the size in bytes of statsd UDP packets"),
    Flag(
        "statsd-exclude-ephemeral",
        "bool",
        "Skip ephemeral topics and channels when sending stats to statsd",
    ),
    Flag(
        "e2e-processing-latency-percentile",
        "floats",
        "message processing time percentiles (as float (0, 1.0]) to track (can be specified "
        "multiple times or comma separated '1.0,0.99,0.95', default none)",
        cfg_key="e2e_processing_latency_percentiles",
        field_name="e2e_processing_latency_percentiles",
    ),
    Flag(
        "e2e-processing-latency-window-time",
        "duration",
        "calculate end to end latency quantiles for this duration of time (ie: 60s would only "
        "show quantile calculations from the past 60 seconds)",
    ),
    Flag(
        "http-admin-token",
        "string",
        "[trinsq] require 'Authorization: Bearer <token>' on HTTP admin endpoints",
    ),
    Flag(
        "http-admin-client-cert",
        "bool",
        "[trinsq] require a verified HTTPS client certificate on HTTP admin endpoints",
    ),
    Flag("data-path", "string", "path to store disk-backed messages"),
    Flag("mem-queue-size", "int", "number of messages to keep in memory (per topic/channel)"),
    Flag("max-bytes-per-file", "int", "number of bytes per diskqueue file before rolling"),
    Flag("sync-every", "int", "number of messages per diskqueue fsync"),
    Flag("sync-timeout", "duration", "duration of time per diskqueue fsync"),
    Flag("msg-timeout", "duration", "default duration to wait before auto-requeing a message"),
    Flag("max-msg-timeout", "duration", "maximum duration before a message will timeout"),
    Flag("max-msg-size", "int", "maximum size of a single message in bytes"),
    Flag("max-body-size", "int", "maximum size of a single command body"),
    Flag("max-req-timeout", "duration", "maximum requeuing timeout for a message"),
    Flag("max-rdy-count", "int", "maximum RDY count for a client"),
    Flag(
        "max-channel-consumers",
        "int",
        "maximum channel consumer connection count per broker (default 0, i.e., unlimited)",
    ),
    Flag(
        "max-heartbeat-interval",
        "duration",
        "maximum client configurable duration of time between client heartbeats",
    ),
    Flag(
        "max-output-buffer-size",
        "int",
        "maximum client configurable size (in bytes) for a client output buffer",
    ),
    Flag("max-output-buffer-timeout", "duration", "maximum " + _FLUSH),
    Flag("min-output-buffer-timeout", "duration", "minimum " + _FLUSH),
    Flag(
        "output-buffer-timeout",
        "duration",
        "default duration of time between flushing data to clients",
    ),
    Flag("deflate", "bool", "enable deflate feature negotiation (client compression)"),
    Flag(
        "max-deflate-level",
        "int",
        "max deflate compression level a client can negotiate (> values == > CPU usage)",
    ),
    Flag("snappy", "bool", "enable snappy feature negotiation (client compression)"),
)
_BROKER = FlagSet(
    program="trinsq broker",
    version_line=f"trinsq broker v{__version__} (nsqd v{NSQ_COMPAT_VERSION} compatible)",
    flags=_FLAGS,
    options=BrokerOptions,
)


def parse_broker_args(argv: list[str]) -> BrokerOptions | None:
    """Build validated BrokerOptions from nsqd-style arguments (without the program name).

    Returns None when the request was --version or --help, which have been printed to stdout;
    the caller should exit successfully. Config file keys nsqd has but trinsq does not (lookupd,
    statsd, TLS, e2e percentiles) are ignored, so an nsqd config file keeps working.

    Raises:
        UsageError: for an unknown flag, a bad value or an unusable config file.
        OptionError: when the resulting options are refused by ``BrokerOptions.validate``.
    """
    return _BROKER.parse(argv)

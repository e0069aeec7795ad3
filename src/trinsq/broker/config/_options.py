"""Broker options: one typed class with nsqd's names and defaults (nsqd/options.go).

Each field says everything about its option once (:func:`trinsq.common._flagparse.option`):
the flag and its --help text, the config file key, the start-up check, and whether GET
/config shows it; the flag table, ``validate`` and the config API are derived from that.

Durations are float seconds here; the command line and config file take Go-style values
("60s", "250ms") and convert. Field names are nsqd's flag names with ``-`` turned into ``_``.
"""

from __future__ import annotations

import hashlib
import socket
import zlib

import attrs

from trinsq.common._bodylimits import BODY_TIMEOUT
from trinsq.common._flagparse import check_non_negative, option
from trinsq.common._options import LOG_LEVELS, OptionError, split_host_port

__all__ = ["BrokerOptions", "OptionError", "default_node_id", "split_host_port"]


def default_node_id(hostname: str | None = None) -> int:
    """nsqd's default node id: crc32 of the md5 digest of the hostname, modulo 1024."""
    name = socket.gethostname() if hostname is None else hostname
    return zlib.crc32(hashlib.md5(name.encode()).digest()) % 1024


@attrs.define(kw_only=True)
class BrokerOptions:
    """Everything a broker can be configured with.

    Addresses are ``host:port`` strings; port 0 asks the OS for a free port (the bound ports are
    reported back by :func:`trinsq.open_broker`).
    """

    # logging
    log_level: str = option(
        "info", usage="set log verbosity: debug, info, warn, error, or fatal", kind="level"
    )
    log_prefix: str = option("[nsqd] ", usage="log message prefix", kind="string", config_api=True)

    # identity and listeners
    node_id: int = option(
        factory=default_node_id,
        usage="unique part for message IDs, (int) in range [0,1024) (default is hash of hostname)",
        kind="int",
        cfg_key="id",
        config_api=True,
    )
    tcp_address: str = option(
        "0.0.0.0:4150",
        usage="<addr>:<port> to listen on for TCP clients",
        kind="string",
        config_api=True,
    )
    http_address: str = option(
        "0.0.0.0:4151",
        usage="<addr>:<port> to listen on for HTTP clients (empty: no HTTP)",
        kind="string",
        config_api=True,
    )
    broadcast_address: str = option(
        factory=socket.gethostname,
        usage="address that will be registered with lookupd (defaults to the OS hostname)",
        kind="string",
        config_api=True,
    )
    broadcast_tcp_port: int = option(
        0,
        usage="TCP port that will be registered with lookupd (defaults to the port listened on)",
        kind="int",
        config_api=True,
    )
    broadcast_http_port: int = option(
        0,
        usage="HTTP port that will be registered with lookupd (defaults to the port listened on)",
        kind="int",
        config_api=True,
    )
    # served only when a TLS cert and key are given
    https_address: str = option(
        "0.0.0.0:4152", usage="<addr>:<port> to listen on for HTTPS clients", kind="string"
    )
    lookupd_tcp_addresses: list[str] = option(
        factory=list,
        usage="lookupd TCP address (may be given multiple times)",
        kind="list",
        flag="lookupd-tcp-address",
        cfg_key="nsqlookupd_tcp_addresses",
    )
    auth_http_addresses: list[str] = option(
        factory=list,
        usage="<addr>:<port> or a full url to query auth server (may be given multiple times)",
        kind="list",
        flag="auth-http-address",
        cfg_key="auth_http_addresses",
    )
    http_client_connect_timeout: float = option(
        2.0, usage="timeout for HTTP connect", kind="duration", non_negative=True, config_api=True
    )
    http_client_request_timeout: float = option(
        5.0, usage="timeout for HTTP request", kind="duration", non_negative=True, config_api=True
    )
    # Not a flag in nsqd either (15 s there); tests shorten it.
    lookup_ping_interval: float = option(15.0, kind="duration")
    # Not in nsqd, whose HTTP server waits forever: how long an HTTP request body may go
    # without a byte before it is answered 408; 0 waits for ever (no flag; tests shorten it).
    http_body_timeout: float = option(BODY_TIMEOUT, kind="duration", non_negative=True)

    # storage
    # empty: the current working directory, as nsqd
    data_path: str = option(
        "", usage="path to store disk-backed messages", kind="string", config_api=True
    )
    mem_queue_size: int = option(
        10_000,
        usage="number of messages to keep in memory (per topic/channel)",
        kind="int",
        non_negative=True,
        config_api=True,
    )
    max_bytes_per_file: int = option(
        104_857_600,
        usage="number of bytes per diskqueue file before rolling",
        kind="int",
        config_api=True,
    )
    sync_every: int = option(
        2500, usage="number of messages per diskqueue fsync", kind="int", config_api=True
    )
    sync_timeout: float = option(
        2.0,
        usage="duration of time per diskqueue fsync",
        kind="duration",
        non_negative=True,
        config_api=True,
    )

    # message handling
    msg_timeout: float = option(
        60.0,
        usage="default duration to wait before auto-requeing a message",
        kind="duration",
        non_negative=True,
        config_api=True,
    )
    max_msg_timeout: float = option(
        15 * 60.0,
        usage="maximum duration before a message will timeout",
        kind="duration",
        non_negative=True,
        config_api=True,
    )
    max_msg_size: int = option(
        1_048_576,
        usage="maximum size of a single message in bytes",
        kind="int",
        non_negative=True,
        config_api=True,
    )
    max_body_size: int = option(
        5_242_880,
        usage="maximum size of a single command body",
        kind="int",
        non_negative=True,
        config_api=True,
    )
    max_req_timeout: float = option(
        3600.0,
        usage="maximum requeuing timeout for a message",
        kind="duration",
        non_negative=True,
        config_api=True,
    )
    max_rdy_count: int = option(
        2500, usage="maximum RDY count for a client", kind="int", non_negative=True, config_api=True
    )
    max_channel_consumers: int = option(
        0,
        usage="maximum channel consumer connection count per broker (default 0, i.e., unlimited)",
        kind="int",
        non_negative=True,
        config_api=True,
    )

    # client connections
    # not a flag in nsqd; the default heartbeat is half of it
    client_timeout: float = option(60.0, kind="duration", non_negative=True)
    max_heartbeat_interval: float = option(
        60.0,
        usage="maximum client configurable duration of time between client heartbeats",
        kind="duration",
        non_negative=True,
        config_api=True,
    )
    max_output_buffer_size: int = option(
        65_536,
        usage="maximum client configurable size (in bytes) for a client output buffer",
        kind="int",
        non_negative=True,
        config_api=True,
    )
    max_output_buffer_timeout: float = option(
        30.0,
        usage="maximum client configurable duration of time between flushing to a client",
        kind="duration",
        non_negative=True,
        config_api=True,
    )
    min_output_buffer_timeout: float = option(
        0.025,
        usage="minimum client configurable duration of time between flushing to a client",
        kind="duration",
        non_negative=True,
        config_api=True,
    )
    output_buffer_timeout: float = option(
        0.25,
        usage="default duration of time between flushing data to clients",
        kind="duration",
        non_negative=True,
        config_api=True,
    )

    # stream upgrades a client can negotiate in IDENTIFY
    deflate: bool = option(
        True,
        usage="enable deflate feature negotiation (client compression)",
        kind="bool",
        config_api=True,
    )
    max_deflate_level: int = option(
        6,
        usage="max deflate compression level a client can negotiate (> values == > CPU usage)",
        kind="int",
        config_api=True,
    )
    snappy: bool = option(
        True,
        usage="enable snappy feature negotiation (client compression)",
        kind="bool",
        config_api=True,
    )
    tls_cert: str = option("", usage="path to certificate file", kind="string")
    tls_key: str = option("", usage="path to key file", kind="string")
    tls_root_ca_file: str = option("", usage="path to certificate authority file", kind="string")
    # "", "require" or "require-verify"
    tls_client_auth_policy: str = option(
        "", usage="client certificate auth policy ('require' or 'require-verify')", kind="string"
    )
    # "false", "true" or "tcp-https"
    tls_required: str = option(
        "false",
        usage="require TLS for client connections (true, false, tcp-https)",
        kind="tlsrequired",
    )
    tls_min_version: str = option(
        "tls1.0",
        usage="minimum SSL/TLS version acceptable ('tls1.0', 'tls1.1', 'tls1.2' or 'tls1.3')",
        kind="tlsversion",
    )

    # statsd and end-to-end latency
    statsd_address: str = option(
        "", usage="UDP <addr>:<port> of a statsd daemon for pushing stats", kind="string"
    )
    statsd_prefix: str = option(
        "nsq.%s",
        usage="prefix used for keys sent to statsd (%s for host replacement)",
        kind="string",
    )
    statsd_interval: float = option(
        60.0, usage="duration between pushing to statsd", kind="duration", non_negative=True
    )
    statsd_mem_stats: bool = option(
        True, usage="toggle sending memory and GC stats to statsd", kind="bool"
    )
    statsd_udp_packet_size: int = option(
        508, usage="the size in bytes of statsd UDP packets", kind="int"
    )
    statsd_exclude_ephemeral: bool = option(
        False, usage="Skip ephemeral topics and channels when sending stats to statsd", kind="bool"
    )
    e2e_processing_latency_percentiles: list[float] = option(
        factory=list,
        usage="message processing time percentiles (as float (0, 1.0]) to track (can be "
        "specified multiple times or comma separated '1.0,0.99,0.95', default none)",
        kind="floats",
        flag="e2e-processing-latency-percentile",
        cfg_key="e2e_processing_latency_percentiles",
    )
    e2e_processing_latency_window_time: float = option(
        600.0,
        usage="calculate end to end latency quantiles for this duration of time (ie: 60s would "
        "only show quantile calculations from the past 60 seconds)",
        kind="duration",
        non_negative=True,
    )

    # Beyond nsqd, off by default: protect the HTTP admin endpoints (everything that changes
    # state but /pub and /mpub) with a bearer token, or with a verified HTTPS client
    # certificate.
    http_admin_token: str = option(
        "",
        usage="[trinsq] require 'Authorization: Bearer <token>' on HTTP admin endpoints",
        kind="string",
    )
    http_admin_client_cert: bool = option(
        False,
        usage="[trinsq] require a verified HTTPS client certificate on HTTP admin endpoints",
        kind="bool",
    )

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    def validate(self) -> None:
        """Refuse values nsqd refuses at start-up, plus ones that cannot work at all.

        Raises:
            OptionError: naming the option and the problem.
        """
        if not 0 <= self.node_id < 1024:
            raise OptionError(f"--node-id must be [0,1024), got {self.node_id}")
        if not 1 <= self.max_deflate_level <= 9:
            raise OptionError("--max-deflate-level must be [1,9]")
        if self.log_level.lower() not in LOG_LEVELS:
            raise OptionError(f"invalid log level {self.log_level!r}")
        check_non_negative(self, OptionError)
        for address in self.lookupd_tcp_addresses:
            split_host_port(address, "lookupd_tcp_address")
        # nsqd New(): a client-auth policy implies TLS is required, which needs cert and key.
        if self.tls_client_auth_policy and self.tls_required == "false":
            self.tls_required = "true"
        if self.tls_client_auth_policy not in ("", "require", "require-verify"):
            raise OptionError(
                f"--tls-client-auth-policy must be require or require-verify, "
                f"got {self.tls_client_auth_policy!r}"
            )
        if self.tls_required != "false" and not self.tls_enabled:
            raise OptionError("cannot require TLS client connections without TLS key and cert")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise OptionError("--tls-cert and --tls-key must be given together")
        for percentile in self.e2e_processing_latency_percentiles:
            if not 0 < percentile <= 1:
                raise OptionError(f"invalid E2E processing latency percentile: {percentile:g}")
        if self.statsd_address and self.statsd_interval <= 0:
            # nsqd's statsd ticker panics on a zero interval
            raise OptionError("--statsd-interval must be positive")
        if self.http_admin_client_cert and not self.tls_enabled:
            raise OptionError("--http-admin-client-cert needs --tls-cert and --tls-key")
        for name in ("tcp_address", "http_address"):
            value = getattr(self, name)
            if name == "http_address" and value == "":
                continue  # nsqd 1.3.0: an empty --http-address disables HTTP
            split_host_port(value, name)

    @property
    def heartbeat_interval(self) -> float:
        """The default client heartbeat interval (nsqd: ClientTimeout / 2)."""
        return self.client_timeout / 2

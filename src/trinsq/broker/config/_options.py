"""Broker options: one typed class with nsqd's names and defaults (nsqd/options.go).

Durations are float seconds here; the command line and config file take Go-style values
("60s", "250ms") and convert. Field names are nsqd's flag names with ``-`` turned into ``_``.
"""

from __future__ import annotations

import hashlib
import socket
import zlib

import attrs

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
    log_level: str = "info"
    log_prefix: str = "[nsqd] "

    # identity and listeners
    node_id: int = attrs.field(factory=default_node_id)
    tcp_address: str = "0.0.0.0:4150"
    http_address: str = "0.0.0.0:4151"
    broadcast_address: str = attrs.field(factory=socket.gethostname)
    broadcast_tcp_port: int = 0
    broadcast_http_port: int = 0
    https_address: str = "0.0.0.0:4152"  # served only when a TLS cert and key are given
    lookupd_tcp_addresses: list[str] = attrs.field(factory=list)
    auth_http_addresses: list[str] = attrs.field(factory=list)
    http_client_connect_timeout: float = 2.0
    http_client_request_timeout: float = 5.0
    # Not a flag in nsqd either (15 s there); tests shorten it.
    lookup_ping_interval: float = 15.0

    # storage
    data_path: str = ""  # empty: the current working directory, as nsqd
    mem_queue_size: int = 10_000
    max_bytes_per_file: int = 104_857_600
    sync_every: int = 2500
    sync_timeout: float = 2.0

    # message handling
    msg_timeout: float = 60.0
    max_msg_timeout: float = 15 * 60.0
    max_msg_size: int = 1_048_576
    max_body_size: int = 5_242_880
    max_req_timeout: float = 3600.0
    max_rdy_count: int = 2500
    max_channel_consumers: int = 0

    # client connections
    client_timeout: float = 60.0  # not a flag in nsqd; the default heartbeat is half of it
    max_heartbeat_interval: float = 60.0
    max_output_buffer_size: int = 65_536
    max_output_buffer_timeout: float = 30.0
    min_output_buffer_timeout: float = 0.025
    output_buffer_timeout: float = 0.25

    # stream upgrades a client can negotiate in IDENTIFY
    deflate: bool = True
    max_deflate_level: int = 6
    snappy: bool = True
    tls_cert: str = ""
    tls_key: str = ""
    tls_root_ca_file: str = ""
    tls_client_auth_policy: str = ""  # "", "require" or "require-verify"
    tls_required: str = "false"  # "false", "true" or "tcp-https"
    tls_min_version: str = "tls1.0"

    # statsd and end-to-end latency
    statsd_address: str = ""
    statsd_prefix: str = "nsq.%s"
    statsd_interval: float = 60.0
    statsd_mem_stats: bool = True
    statsd_udp_packet_size: int = 508
    statsd_exclude_ephemeral: bool = False
    e2e_processing_latency_percentiles: list[float] = attrs.field(factory=list)
    e2e_processing_latency_window_time: float = 600.0

    # Beyond nsqd, off by default: protect the HTTP admin endpoints (everything that changes
    # state but /pub and /mpub) with a bearer token, or with a verified HTTPS client
    # certificate.
    http_admin_token: str = ""
    http_admin_client_cert: bool = False

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
        for name in (
            "mem_queue_size",
            "max_msg_size",
            "max_body_size",
            "max_rdy_count",
            "max_channel_consumers",
            "max_output_buffer_size",
        ):
            if getattr(self, name) < 0:
                raise OptionError(f"--{name.replace('_', '-')} must not be negative")
        for name in (
            "msg_timeout",
            "max_msg_timeout",
            "max_req_timeout",
            "client_timeout",
            "max_heartbeat_interval",
            "max_output_buffer_timeout",
            "min_output_buffer_timeout",
            "output_buffer_timeout",
            "sync_timeout",
            "http_client_connect_timeout",
            "http_client_request_timeout",
            "statsd_interval",
            "e2e_processing_latency_window_time",
        ):
            if getattr(self, name) < 0:
                raise OptionError(f"--{name.replace('_', '-')} must not be negative")
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

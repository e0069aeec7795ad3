"""What a client asks of nsqd and how it behaves: go-nsq's ``Config`` (config.go), in seconds.

Durations are float seconds (go-nsq's ``time.Duration``); ``-1`` where go-nsq accepts it
(``heartbeat_interval``, ``output_buffer_timeout``, ``output_buffer_size``) turns the feature
off, ``0`` leaves nsqd's default. Values are checked against go-nsq's bounds when the config is
made, so a bad one fails at once with ``ValueError``, not later on the wire.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import attrs

from .._version import __version__
from ._backoff import BackoffStrategy

__all__ = ["ClientConfig"]


def _short_hostname() -> str:
    return socket.gethostname().split(".")[0]


def _between(low: float, high: float) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
        if not low <= value <= high:
            raise ValueError(f"{attribute.name} must be in [{low}, {high}], got {value!r}")

    return check


def _zero_or_between(low: float, high: float) -> Any:
    inner = _between(low, high)

    def check(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
        if value != 0:
            inner(instance, attribute, value)

    return check


def _off_or_between(low: float, high: float) -> Any:
    inner = _between(low, high)

    def check(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
        if value not in (-1, 0):
            inner(instance, attribute, value)

    return check


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Settings of a producer or consumer (go-nsq v1.1.0 ``Config``, same defaults).

    TLS: ``tls`` is False (plain), True (verify the server against the system CAs, or
    ``tls_ca_file``; present ``tls_cert_file``/``tls_key_file`` when given) or a ready
    ``ssl.SSLContext`` used as it is. ``tls_verify=False`` accepts any server certificate
    (go-nsq's ``tls_insecure_skip_verify``). A connection that asked for TLS fails if the
    server does not offer it (go-nsq would go on in the clear).
    """

    client_id: str = attrs.field(factory=_short_hostname)
    hostname: str = attrs.field(factory=socket.gethostname)
    user_agent: str = f"trinsq/{__version__}"

    dial_timeout: float = attrs.field(default=1.0, validator=_between(0.001, 3600))
    read_timeout: float = attrs.field(default=60.0, validator=_between(0.1, 300))
    write_timeout: float = attrs.field(default=1.0, validator=_between(0.1, 300))

    heartbeat_interval: float = attrs.field(default=30.0, validator=_off_or_between(1, 3600))
    output_buffer_size: int = attrs.field(default=16384, validator=_off_or_between(64, 1 << 31))
    output_buffer_timeout: float = attrs.field(default=0.25, validator=_off_or_between(0.001, 3600))
    sample_rate: int = attrs.field(default=0, validator=_between(0, 99))
    msg_timeout: float = attrs.field(default=0.0, validator=_zero_or_between(1, 3600))

    tls: bool | ssl.SSLContext = False
    tls_verify: bool = True
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    snappy: bool = False
    deflate: bool = False
    deflate_level: int = attrs.field(default=6, validator=_between(1, 9))

    auth_secret: str = ""

    max_in_flight: int = attrs.field(default=1, validator=_between(0, 1 << 31))
    max_attempts: int = attrs.field(default=5, validator=_between(0, 65535))
    backoff_multiplier: float = attrs.field(default=1.0, validator=_between(0.001, 60))
    max_backoff_duration: float = attrs.field(default=120.0, validator=_between(0, 3600))
    lookupd_poll_interval: float = attrs.field(default=60.0, validator=_between(0.01, 300))
    lookupd_poll_jitter: float = attrs.field(default=0.3, validator=_between(0, 1))
    default_requeue_delay: float = attrs.field(default=90.0, validator=_between(0, 3600))
    max_requeue_delay: float = attrs.field(default=900.0, validator=_between(0, 3600))
    # Consumer RDY handling (go-nsq's backoff_strategy, rdy_redistribute_interval,
    # low_rdy_idle_timeout, low_rdy_timeout).
    backoff_strategy: BackoffStrategy = attrs.field(
        default=BackoffStrategy.EXPONENTIAL, converter=BackoffStrategy
    )
    rdy_redistribute_interval: float = attrs.field(default=5.0, validator=_between(0.001, 5))
    low_rdy_idle_timeout: float = attrs.field(default=10.0, validator=_between(1, 300))
    low_rdy_timeout: float = attrs.field(default=30.0, validator=_between(1, 300))

    def __attrs_post_init__(self) -> None:
        if self.snappy and self.deflate:
            raise ValueError("snappy and deflate cannot both be enabled")
        if self.heartbeat_interval >= self.read_timeout:
            # go-nsq's rule: a connection that only hears heartbeats must not time out.
            raise ValueError("heartbeat_interval must be less than read_timeout")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")

    @property
    def wants_tls(self) -> bool:
        return self.tls is not False

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context to use, or None without TLS."""
        if self.tls is False:
            return None
        if isinstance(self.tls, ssl.SSLContext):
            return self.tls
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca_file)
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.tls_cert_file is not None:
            context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        return context

    def with_ssl_context(self) -> ClientConfig:
        """This config with ``tls`` as a ready ``SSLContext``, built once here: connections
        share it, and a missing or bad certificate file fails now, not at every connect.

        Raises:
            OSError: a certificate or CA file cannot be read (``ssl.SSLError`` if invalid).
        """
        context = self.ssl_context()
        if context is None or context is self.tls:
            return self
        return attrs.evolve(self, tls=context)

    def identify_body(self) -> dict[str, Any]:
        """The IDENTIFY JSON fields go-nsq sends (conn.go ``identify``), durations in ms."""

        def ms(value: float) -> int:
            return -1 if value == -1 else int(value * 1000)

        return {
            "client_id": self.client_id,
            "hostname": self.hostname,
            "user_agent": self.user_agent,
            "tls_v1": self.wants_tls,
            "deflate": self.deflate,
            "deflate_level": self.deflate_level,
            "snappy": self.snappy,
            "feature_negotiation": True,
            "heartbeat_interval": ms(self.heartbeat_interval),
            "sample_rate": self.sample_rate,
            "output_buffer_size": self.output_buffer_size,
            "output_buffer_timeout": ms(self.output_buffer_timeout),
            "msg_timeout": ms(self.msg_timeout),
        }

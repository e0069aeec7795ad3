"""Registry options: one typed class with nsqlookupd's names and defaults (nsqlookupd/options.go).

Durations are float seconds here; the command line and config file take Go-style values
("300s", "5m") and convert. Field names are nsqlookupd's flag names with ``-`` turned into ``_``.
"""

from __future__ import annotations

import socket

import attrs

from trinsq.common._options import LOG_LEVELS, OptionError, split_host_port

__all__ = ["OptionError", "RegistryOptions"]


@attrs.define(kw_only=True)
class RegistryOptions:
    """Everything a registry can be configured with.

    Addresses are ``host:port`` strings; port 0 asks the OS for a free port.
    """

    log_level: str = "info"
    log_prefix: str = "[nsqlookupd] "

    tcp_address: str = "0.0.0.0:4160"
    http_address: str = "0.0.0.0:4161"
    # returned to each broker in the IDENTIFY reply
    broadcast_address: str = attrs.field(factory=socket.gethostname)

    # how long since its last PING a broker stays in lookup results
    inactive_producer_timeout: float = 300.0
    # how long a tombstoned topic producer stays hidden from lookups
    tombstone_lifetime: float = 45.0

    def validate(self) -> None:
        """Refuse values that cannot work: a bad log level, address or negative duration.

        Raises:
            OptionError: naming the option and the problem.
        """
        if self.log_level.lower() not in LOG_LEVELS:
            raise OptionError(f"invalid log level {self.log_level!r}")
        for name in ("inactive_producer_timeout", "tombstone_lifetime"):
            if getattr(self, name) < 0:
                raise OptionError(f"--{name.replace('_', '-')} must not be negative")
        split_host_port(self.tcp_address, "tcp_address")
        split_host_port(self.http_address, "http_address")

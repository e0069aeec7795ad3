"""Registry options: one typed class with nsqlookupd's names and defaults (nsqlookupd/options.go).

Durations are float seconds here; the command line and config file take Go-style values
("300s", "5m") and convert. Field names are nsqlookupd's flag names with ``-`` turned into ``_``.
"""

from __future__ import annotations

import socket

import attrs

from trinsq.common._bodylimits import BODY_TIMEOUT
from trinsq.common._flagparse import check_non_negative, option
from trinsq.common._options import LOG_LEVELS, OptionError, split_host_port

__all__ = ["OptionError", "RegistryOptions"]


@attrs.define(kw_only=True)
class RegistryOptions:
    """Everything a registry can be configured with.

    Addresses are ``host:port`` strings; port 0 asks the OS for a free port.
    """

    log_level: str = option(
        "info", usage="set log verbosity: debug, info, warn, error, or fatal", kind="level"
    )
    log_prefix: str = option("[nsqlookupd] ", usage="log message prefix", kind="string")

    tcp_address: str = option(
        "0.0.0.0:4160", usage="<addr>:<port> to listen on for TCP clients", kind="string"
    )
    http_address: str = option(
        "0.0.0.0:4161", usage="<addr>:<port> to listen on for HTTP clients", kind="string"
    )
    # returned to each broker in the IDENTIFY reply
    broadcast_address: str = option(
        factory=socket.gethostname,
        usage="address of this lookupd node, (default to the OS hostname)",
        kind="string",
    )

    # how long since its last PING a broker stays in lookup results
    inactive_producer_timeout: float = option(
        300.0,
        usage="duration of time a producer will remain in the active list since its last ping",
        kind="duration",
        non_negative=True,
    )
    # how long a tombstoned topic producer stays hidden from lookups
    tombstone_lifetime: float = option(
        45.0,
        usage="duration of time a producer will remain tombstoned if registration remains",
        kind="duration",
        non_negative=True,
    )

    # Not in nsqlookupd, whose HTTP server waits forever: how long an HTTP request body may go
    # without a byte before it is answered 408; 0 waits for ever (no flag; tests shorten it).
    http_body_timeout: float = option(BODY_TIMEOUT, kind="duration", non_negative=True)

    def validate(self) -> None:
        """Refuse values that cannot work: a bad log level, address or negative duration.

        Raises:
            OptionError: naming the option and the problem.
        """
        if self.log_level.lower() not in LOG_LEVELS:
            raise OptionError(f"invalid log level {self.log_level!r}")
        check_non_negative(self, OptionError)
        split_host_port(self.tcp_address, "tcp_address")
        split_host_port(self.http_address, "http_address")

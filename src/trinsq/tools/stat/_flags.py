"""The ``trinsq stat`` command line: nsq_stat v1.3.0's flags (apps/nsq_stat/nsq_stat.go), and its
start-up checks with its words, in its order.

Go flag syntax is :mod:`trinsq.common._flagparse`'s. nsq_stat reports a bad flag as Go's flag
package does (exit status 2) and a refused value with ``log.Fatal`` (a timestamped line, exit
status 1); :meth:`StatOptions.problem` gives the latter's text.
"""

from __future__ import annotations

import attrs

from trinsq.common._flagparse import option
from trinsq.tools._toolflags import tool_flags

__all__ = ["StatOptions", "parse_stat_args"]


@attrs.define(kw_only=True)
class StatOptions:
    """What nsq_stat is told: one channel, and where to find the nodes that carry its topic."""

    topic: str = option("", usage="NSQ topic", kind="string")
    channel: str = option("", usage="NSQ channel", kind="string")
    interval: float = option(
        2.0, usage="duration of time between polling/printing output", kind="duration"
    )
    http_client_connect_timeout: float = option(
        2.0, usage="timeout for HTTP connect", kind="duration"
    )
    http_client_request_timeout: float = option(
        5.0, usage="timeout for HTTP request", kind="duration"
    )
    count: int | None = option(None, usage="number of reports", kind="int")
    nsqd_http_address: list[str] = option(
        factory=list, usage="nsqd HTTP address (may be given multiple times)", kind="list"
    )
    lookupd_http_address: list[str] = option(
        factory=list, usage="lookupd HTTP address (may be given multiple times)", kind="list"
    )

    def validate(self) -> None:
        """Nothing: nsq_stat's checks are fatal log lines, see :meth:`problem`."""

    def problem(self) -> str | None:
        """nsq_stat's start-up refusal, word for word, or None when the options can be used."""
        if not self.topic or not self.channel:
            return "--topic and --channel are required"
        for name in ("interval", "http_client_connect_timeout", "http_client_request_timeout"):
            if getattr(self, name) <= 0:
                return f"--{name.replace('_', '-')} should be positive"
        if self.count is not None and self.count <= 0:
            return "--count should be positive"
        if not self.nsqd_http_address and not self.lookupd_http_address:
            return "--nsqd-http-address or --lookupd-http-address required"
        if self.nsqd_http_address and self.lookupd_http_address:
            return "use --nsqd-http-address or --lookupd-http-address not both"
        for name in ("nsqd_http_address", "lookupd_http_address"):
            if any(address.startswith("http") for address in getattr(self, name)):
                return f"--{name.replace('_', '-')} error - address should not contain scheme"
        return None


_STAT = tool_flags("stat", "nsq_stat", StatOptions, "print version")


def parse_stat_args(argv: list[str]) -> StatOptions | None:
    """StatOptions from nsq_stat-style arguments (without the program name), not yet checked
    (see :meth:`StatOptions.problem`).

    Returns None when the request was --version or --help, which have been printed to stdout.

    Raises:
        UsageError: for an unknown flag or a value that does not parse.
    """
    return _STAT.parse(argv)

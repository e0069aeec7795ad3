"""The ``trinsq pub`` command line: to_nsq v1.3.0's flags (apps/to_nsq/to_nsq.go), and its
start-up checks with its words, in its order.

Go flag syntax is :mod:`trinsq.common._flagparse`'s. to_nsq reports a bad flag as Go's flag
package does (exit status 2; a ``--producer-opt`` go-nsq refuses is one of those) and a refused
value with ``log.Fatal`` (a timestamped line, exit status 1); :meth:`PubOptions.problem` gives
the latter's text.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.client import ClientConfig
from trinsq.client._connection import split_address
from trinsq.common._flagparse import FlagSet, option, option_flags
from trinsq.tools._goconfig import flag_config_values

__all__ = ["USER_AGENT", "PubOptions", "parse_pub_args"]

# to_nsq overrides any user_agent given with --producer-opt with its own
USER_AGENT = f"trinsq-pub/{__version__} to_nsq/{NSQ_COMPAT_VERSION}"


@attrs.define(kw_only=True)
class PubOptions:
    """What to_nsq is told: a topic, the nsqd nodes to publish to, how to split stdin."""

    topic: str = option("", usage="NSQ topic to publish to", kind="string")
    delimiter: str = option("\n", usage="character to split input from stdin", kind="string")
    nsqd_tcp_address: list[str] = option(
        factory=list,
        usage="destination nsqd TCP address (may be given multiple times)",
        kind="list",
    )
    producer_opt: list[str] = option(
        factory=list,
        usage=(
            "option to passthrough to nsq.Producer (may be given multiple times, "
            "http://godoc.org/github.com/nsqio/go-nsq#Config)"
        ),
        kind="values",
    )
    rate: int = option(0, usage="Throttle messages to n/second. 0 to disable", kind="int")
    # the --producer-opt values as ClientConfig fields, filled in by parse_pub_args
    config_fields: dict[str, Any] = attrs.field(factory=dict)

    @property
    def delimiter_byte(self) -> bytes:
        """The delimiter as the bytes it is on the command line (Go's strings are bytes)."""
        return os.fsencode(self.delimiter)

    @property
    def addresses(self) -> list[str]:
        """Each nsqd once, in the order given (to_nsq keeps one producer per address)."""
        return list(dict.fromkeys(self.nsqd_tcp_address))

    def validate(self) -> None:
        """Nothing: to_nsq's checks are fatal log lines, see :meth:`problem`."""

    def client_config(self) -> ClientConfig:
        """The producers' config: go-nsq's defaults, the --producer-opt values, to_nsq's user
        agent.

        Raises:
            ValueError: the values do not go together (go-nsq's ``Config.Validate``).
        """
        return ClientConfig(**{**self.config_fields, "user_agent": USER_AGENT})

    def problem(self) -> str | None:
        """to_nsq's start-up refusal, word for word, or None when the options can be used."""
        if not self.topic:
            return "--topic required"
        if len(self.delimiter_byte) != 1:
            return "--delimiter must be a single byte"
        if self.addresses:  # to_nsq makes its producers (checking the config) here
            try:
                self.client_config().with_ssl_context()
                for address in self.addresses:
                    split_address(address)
            except (ValueError, OSError) as exc:
                return f"failed to create nsq.Producer - {exc}"
        else:
            return "--nsqd-tcp-address required"
        return None


_PUB = FlagSet(
    program="trinsq pub",
    version_line="",  # to_nsq has no --version flag
    flags=option_flags(PubOptions),
    options=PubOptions,
)


def parse_pub_args(argv: list[str]) -> PubOptions | None:
    """PubOptions from to_nsq-style arguments (without the program name), not yet checked
    (see :meth:`PubOptions.problem`).

    Returns None when the request was --help, which has been printed to stdout.

    Raises:
        UsageError: for an unknown flag, a value that does not parse, or a --producer-opt
            go-nsq would refuse.
    """
    options = _PUB.parse(argv)
    if options is not None:
        options.config_fields = flag_config_values(options.producer_opt, "producer-opt")
    return options

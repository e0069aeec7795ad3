"""The ``trinsq broker`` command line: nsqd's flags and nsqd's TOML config file.

The flag names, kinds and config keys are nsqd v1.3.0's (apps/nsqd/main.go, nsqd/options.go),
described on BrokerOptions' fields;
Go flag syntax and go-options config handling live in :mod:`trinsq.common._flagparse`.
"""

from __future__ import annotations

from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.broker.config._options import BrokerOptions
from trinsq.common._flagparse import DAEMON_FLAGS, Flag, FlagSet, UsageError, option_flags

__all__ = ["UsageError", "parse_broker_args"]

# Every option's own flag is described on its field.
_FLAGS = (
    *DAEMON_FLAGS,
    Flag("worker-id", "bool", "[deprecated] use --node-id", sets_option=False),
    *option_flags(BrokerOptions),
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

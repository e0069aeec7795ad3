"""The ``trinsq registry`` command line: nsqlookupd's flags and nsqlookupd's TOML config file.

The flag names, kinds and usage texts are nsqlookupd v1.3.0's (apps/nsqlookupd/main.go); config
file keys are the flag names with ``-`` turned into ``_`` (contrib/nsqlookupd.cfg.example).
Go flag syntax and go-options config handling live in :mod:`trinsq.common._flagparse`.
"""

from __future__ import annotations

from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.common._flagparse import Flag, FlagSet
from trinsq.registry._options import RegistryOptions

__all__ = ["parse_registry_args"]

_FLAGS = (
    Flag("version", "bool", "print version string", sets_option=False),
    Flag("config", "string", "path to config file", sets_option=False),
    Flag("log-level", "level", "set log verbosity: debug, info, warn, error, or fatal"),
    Flag("log-prefix", "string", "log message prefix"),
    Flag("verbose", "bool", "[deprecated] has no effect, use --log-level", sets_option=False),
    Flag("tcp-address", "string", "<addr>:<port> to listen on for TCP clients"),
    Flag("http-address", "string", "<addr>:<port> to listen on for HTTP clients"),
    Flag(
        "broadcast-address",
        "string",
        "address of this lookupd node, (default to the OS hostname)",
    ),
    Flag(
        "inactive-producer-timeout",
        "duration",
        "duration of time a producer will remain in the active list since its last ping",
    ),
    Flag(
        "tombstone-lifetime",
        "duration",
        "duration of time a producer will remain tombstoned if registration remains",
    ),
)

_REGISTRY = FlagSet(
    program="trinsq registry",
    version_line=f"trinsq registry v{__version__} (nsqlookupd v{NSQ_COMPAT_VERSION} compatible)",
    flags=_FLAGS,
    options=RegistryOptions,
)


def parse_registry_args(argv: list[str]) -> RegistryOptions | None:
    """Build validated RegistryOptions from nsqlookupd-style arguments (without the program name).

    Returns None when the request was --version or --help, which have been printed to stdout;
    the caller should exit successfully. Unknown config file keys are ignored, as nsqlookupd does.

    Raises:
        UsageError: for an unknown flag, a bad value or an unusable config file.
        OptionError: when the resulting options are refused by ``RegistryOptions.validate``.
    """
    return _REGISTRY.parse(argv)

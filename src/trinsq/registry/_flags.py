"""The ``trinsq registry`` command line: nsqlookupd's flags and nsqlookupd's TOML config file.

The flag names, kinds and usage texts are nsqlookupd v1.3.0's (apps/nsqlookupd/main.go); config
file keys are the flag names with ``-`` turned into ``_`` (contrib/nsqlookupd.cfg.example).
Go flag syntax and go-options config handling live in :mod:`trinsq.common._flagparse`.
"""

from __future__ import annotations

from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.common._flagparse import DAEMON_FLAGS, FlagSet, option_flags
from trinsq.registry._options import RegistryOptions

__all__ = ["parse_registry_args"]

# Every option's own flag is described on its field.
_FLAGS = (*DAEMON_FLAGS, *option_flags(RegistryOptions))

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

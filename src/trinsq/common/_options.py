"""What the broker's and the registry's options share: the error they raise and address checks."""

from __future__ import annotations

__all__ = ["LOG_LEVELS", "OptionError", "split_host_port"]

LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


class OptionError(ValueError):
    """An option value the NSQ daemon would refuse at start-up."""


def split_host_port(address: str, option: str = "address") -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too) as Go's net.SplitHostPort does.

    Raises:
        OptionError: for a missing or non-numeric port.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise OptionError(f"--{option.replace('_', '-')}: {address!r} is not a host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)

"""`trinsq registry`: run one registry until SIGINT or SIGTERM."""

from __future__ import annotations

import logging

from ..common._logging import configure_logging
from ..common._running import run_until_signal
from ._options import RegistryOptions
from ._server import RegistryServer, serve_registry

__all__ = ["run_registry"]

log = logging.getLogger("trinsq.registry")


def run_registry(options: RegistryOptions) -> int:
    """Run a registry in the foreground; return the process exit status (0 after SIGINT or
    SIGTERM, 1 with one line on stderr naming the address when a listener cannot be bound)."""
    configure_logging(options.log_level, options.log_prefix)
    return run_until_signal("registry", RegistryServer(options), serve_registry, log)

"""`trinsq broker`: run one broker until SIGINT or SIGTERM."""

from __future__ import annotations

import gc
import logging
import sys

from ..common._freememory import return_free_memory
from ..common._logging import configure_logging
from ..common._running import run_until_signal
from ._server import BrokerServer, serve_broker
from .config._options import BrokerOptions, OptionError

__all__ = ["run_broker"]

log = logging.getLogger("trinsq.broker")


def run_broker(options: BrokerOptions) -> int:
    """Run a broker in the foreground; return the process exit status.

    SIGINT and SIGTERM shut it down gracefully with status 0. A listener that cannot be bound
    or a data path that cannot be locked, read or written prints one line naming what failed
    and where, and gives status 1.
    """
    configure_logging(options.log_level, options.log_prefix)
    # A broker holds many small objects for a long time (queued and in-flight messages) and
    # makes few reference cycles: rarer young-generation collections and a frozen start-up
    # heap cut the time the collector spends re-walking them. Only for the command; an
    # embedding program keeps its own settings.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    return_free_memory()  # what importing left behind, about 0.7 MB of an idle broker
    try:
        server = BrokerServer(options)
    except OptionError as error:  # e.g. a TLS cert or key that cannot be loaded
        print(f"trinsq broker: {error}", file=sys.stderr)
        return 1
    return run_until_signal("broker", server, serve_broker, log)

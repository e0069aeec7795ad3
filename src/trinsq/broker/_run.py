"""`trinsq broker`: run one broker until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys

import trio

from .._logging import configure_logging
from ._metadata import MetadataError
from ._options import BrokerOptions
from ._server import BrokerServer, serve_broker

__all__ = ["run_broker"]

log = logging.getLogger("trinsq.broker")


async def _main(options: BrokerOptions) -> None:
    server = BrokerServer(options)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_broker, server)
            async for signum in signals:
                log.info("received signal %s", signal.Signals(signum).name)
                server.request_shutdown()
                break
            # serve_broker now shuts down gracefully; a second signal changes nothing.


def run_broker(options: BrokerOptions) -> int:
    """Run a broker in the foreground; return the process exit status.

    SIGINT and SIGTERM shut it down gracefully with status 0. A listener that cannot be bound
    prints one line and gives status 1.
    """
    configure_logging(options.log_level, options.log_prefix)
    status = 0
    try:
        trio.run(_main, options)
    except* (OSError, MetadataError) as group:
        print(f"trinsq broker: {group.exceptions[0]}", file=sys.stderr)
        status = 1
    return status

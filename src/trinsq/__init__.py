"""trinsq: NSQ's nsqd and nsqlookupd rebuilt in Python on Trio.

The embedding API, for Trio programs and test harnesses:

- :func:`open_broker` starts a broker (a drop-in nsqd) and yields a :class:`RunningBroker`;
- :func:`open_registry` starts a registry (a drop-in nsqlookupd) and yields a
  :class:`RunningRegistry`;
- :func:`open_cluster` starts registries, then brokers registered with all of them, and yields
  a :class:`RunningCluster`.

Each is an async context manager: by default everything listens on 127.0.0.1 with OS-chosen
ports, and it all stops when the block exits. A server that cannot start (a port in use, a data
path that is locked or cannot be written) raises :class:`StartupError`, whose text says what
failed and where.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import NSQ_COMPAT_VERSION as NSQ_COMPAT_VERSION
from ._version import __version__ as __version__
from .common._lazy import lazy_exports

if TYPE_CHECKING:
    from ._cluster import RunningCluster as RunningCluster
    from ._cluster import open_cluster as open_cluster
    from .broker import BrokerOptions as BrokerOptions
    from .broker import RunningBroker as RunningBroker
    from .broker import open_broker as open_broker
    from .common._startup import StartupError as StartupError
    from .registry import RegistryOptions as RegistryOptions
    from .registry import RunningRegistry as RunningRegistry
    from .registry import open_registry as open_registry

__all__ = [
    "NSQ_COMPAT_VERSION",
    "BrokerOptions",
    "RegistryOptions",
    "RunningBroker",
    "RunningCluster",
    "RunningRegistry",
    "StartupError",
    "__version__",
    "open_broker",
    "open_cluster",
    "open_registry",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "BrokerOptions": ".broker",
        "RunningBroker": ".broker",
        "open_broker": ".broker",
        "RegistryOptions": ".registry",
        "RunningRegistry": ".registry",
        "open_registry": ".registry",
        "RunningCluster": "._cluster",
        "open_cluster": "._cluster",
        "StartupError": ".common._startup",
    },
)

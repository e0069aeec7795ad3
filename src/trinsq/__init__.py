"""trinsq: NSQ's nsqd and nsqlookupd rebuilt in Python on Trio."""

from ._version import NSQ_COMPAT_VERSION as NSQ_COMPAT_VERSION
from ._version import __version__ as __version__
from .broker import (
    BrokerOptions as BrokerOptions,
)
from .broker import (
    RunningBroker as RunningBroker,
)
from .broker import (
    open_broker as open_broker,
)

__all__ = ["NSQ_COMPAT_VERSION", "BrokerOptions", "RunningBroker", "__version__", "open_broker"]

"""`trinsq broker`: a drop-in nsqd."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..common._lazy import lazy_exports

if TYPE_CHECKING:
    from ._embed import RunningBroker as RunningBroker
    from ._embed import open_broker as open_broker
    from ._run import run_broker as run_broker
    from ._server import BoundAddresses as BoundAddresses
    from ._server import BrokerServer as BrokerServer
    from .config._options import BrokerOptions as BrokerOptions
    from .config._options import OptionError as OptionError

__all__ = [
    "BoundAddresses",
    "BrokerOptions",
    "BrokerServer",
    "OptionError",
    "RunningBroker",
    "open_broker",
    "run_broker",
]

# Imported on first use (see trinsq.common._lazy): parsing flags must not load the HTTP stack.
__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "BoundAddresses": "._server",
        "BrokerOptions": ".config._options",
        "BrokerServer": "._server",
        "OptionError": ".config._options",
        "RunningBroker": "._embed",
        "open_broker": "._embed",
        "run_broker": "._run",
    },
)

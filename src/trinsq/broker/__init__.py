"""`trinsq broker`: a drop-in nsqd."""

from ._embed import RunningBroker as RunningBroker, open_broker as open_broker
from ._options import BrokerOptions as BrokerOptions, OptionError as OptionError
from ._run import run_broker as run_broker
from ._server import BoundAddresses as BoundAddresses, BrokerServer as BrokerServer

__all__ = [
    "BoundAddresses",
    "BrokerOptions",
    "BrokerServer",
    "OptionError",
    "RunningBroker",
    "open_broker",
    "run_broker",
]

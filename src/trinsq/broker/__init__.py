"""`trinsq broker`: a drop-in nsqd."""

from ._embed import RunningBroker as RunningBroker
from ._embed import open_broker as open_broker
from ._options import BrokerOptions as BrokerOptions
from ._options import OptionError as OptionError
from ._run import run_broker as run_broker
from ._server import BoundAddresses as BoundAddresses
from ._server import BrokerServer as BrokerServer

__all__ = [
    "BoundAddresses",
    "BrokerOptions",
    "BrokerServer",
    "OptionError",
    "RunningBroker",
    "open_broker",
    "run_broker",
]

"""`trinsq registry`: a drop-in nsqlookupd."""

from ._embed import RunningRegistry as RunningRegistry
from ._embed import open_registry as open_registry
from ._options import RegistryOptions as RegistryOptions
from ._run import run_registry as run_registry
from ._server import RegistryAddresses as RegistryAddresses
from ._server import RegistryServer as RegistryServer

__all__ = [
    "RegistryAddresses",
    "RegistryOptions",
    "RegistryServer",
    "RunningRegistry",
    "open_registry",
    "run_registry",
]

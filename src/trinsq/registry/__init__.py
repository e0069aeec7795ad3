"""`trinsq registry`: a drop-in nsqlookupd."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..common._lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use (see trinsq.common._lazy): parsing flags must not load the HTTP stack.
__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "RegistryAddresses": "._server",
        "RegistryOptions": "._options",
        "RegistryServer": "._server",
        "RunningRegistry": "._embed",
        "open_registry": "._embed",
        "run_registry": "._run",
    },
)

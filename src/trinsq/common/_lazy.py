"""Package attributes imported on first use.

The servers pull in quart, flask and hypercorn (about a third of a second); `trinsq --version`,
`trinsq broker --help` and the flag parser need none of it, so the packages' ``__init__``
modules name their exports here instead of importing them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], sources: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``: each name in ``sources`` is
    imported from its (relative) module on first access and then kept in ``namespace``."""

    def __getattr__(name: str) -> Any:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later lookups no longer reach __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(sources))

    return __getattr__, __dir__

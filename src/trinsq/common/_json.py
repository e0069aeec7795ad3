"""JSON at the HTTP edge: one cattrs converter for every model, and Go's encoding rules.

nsqd's and nsqlookupd's JSON comes from Go's encoding/json: compact, keys in struct order,
``omitempty`` on a few fields, and ``<``, ``>``, ``&``, U+2028 and U+2029 escaped in strings.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import cattrs

from ._gojson import go_json_plain

__all__ = ["converter", "go_json", "omit_when_empty"]

converter: Final = cattrs.Converter()


def omit_when_empty(cls: type[Any], *names: str) -> None:
    """Unstructure ``cls`` in field order, leaving out ``names`` while they hold their default
    (Go's omitempty keeps struct order; cattrs' omit_if_default would move them last)."""
    fields = attrs.fields(cls)
    omit: dict[str, Any] = {}
    for field in fields:
        if field.name in names:
            factory = getattr(field.default, "factory", None)
            omit[field.name] = factory() if callable(factory) else field.default

    def unstructure(value: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for field in fields:
            item = getattr(value, field.name)
            if field.name in omit and item == omit[field.name]:
                continue
            result[field.name] = converter.unstructure(item)
        return result

    converter.register_unstructure_hook(cls, unstructure)


def go_json(value: Any) -> bytes:
    """Encode a model (or plain data) as Go's json.Marshal would."""
    return go_json_plain(converter.unstructure(value))

"""Go's encoding/json rules for plain data (dicts, lists, strings, numbers), without cattrs.

What the fast lane's answers need; models go through :func:`trinsq.common._json.go_json`,
whose converter (cattrs) is imported only when something needs it.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["go_json_plain"]

_GO_ESCAPES: Final = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json_plain(data: Any) -> bytes:
    """Encode already plain data as Go's json.Marshal would: compact, and ``<``, ``>``,
    ``&``, U+2028 and U+2029 escaped."""
    # Those characters can only occur inside strings in JSON text, so a plain translate is safe.
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False).translate(_GO_ESCAPES)
    return text.encode("utf-8", "surrogateescape")

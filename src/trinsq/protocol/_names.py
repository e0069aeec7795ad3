"""Topic and channel names (internal/protocol/names.go)."""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "EPHEMERAL_SUFFIX",
    "MAX_NAME_LENGTH",
    "NAME_PATTERN",
    "is_ephemeral",
    "is_valid_channel_name",
    "is_valid_name_bytes",
    "is_valid_topic_name",
]

EPHEMERAL_SUFFIX: Final = "#ephemeral"
MAX_NAME_LENGTH: Final = 64
# The rule as a pattern, for documents that state it (the OpenAPI schema).
NAME_PATTERN: Final = r"[.a-zA-Z0-9_-]+(?:#ephemeral)?"
_NAME_RE: Final = re.compile(NAME_PATTERN.encode())


def is_valid_name_bytes(raw: bytes) -> bool:
    """The shared rule for topic and channel names, on the bytes as they came off the wire."""
    return 0 < len(raw) <= MAX_NAME_LENGTH and _NAME_RE.fullmatch(raw) is not None


def _is_valid_name(name: str) -> bool:
    return name.isascii() and is_valid_name_bytes(name.encode("ascii"))


def is_valid_topic_name(name: str) -> bool:
    """Return whether ``name`` is a legal topic name: 1..64 of ``[.a-zA-Z0-9_-]``,
    optionally ending in ``#ephemeral`` (which counts toward the 64)."""
    return _is_valid_name(name)


def is_valid_channel_name(name: str) -> bool:
    """Return whether ``name`` is a legal channel name (same rule as topics)."""
    return _is_valid_name(name)


def is_ephemeral(name: str) -> bool:
    """Return whether a topic or channel name marks it ephemeral."""
    return name.endswith(EPHEMERAL_SUFFIX)

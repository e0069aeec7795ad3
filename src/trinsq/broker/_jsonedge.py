"""The broker's models on the shared JSON converter: nsqd's omitempty fields."""

from __future__ import annotations

from .._json import converter, go_json, omit_when_empty
from ._stats import ClientStats, StatsDocument

# Import the converter from here, not from trinsq._json, so these hooks are registered first.
__all__ = ["converter", "go_json"]

omit_when_empty(ClientStats, "authed", "auth_identity", "auth_identity_url", "pub_counts")
omit_when_empty(StatsDocument, "memory")

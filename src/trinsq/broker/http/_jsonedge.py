"""The broker's models on the shared JSON converter: nsqd's omitempty fields."""

from __future__ import annotations

from typing import Any

from ...common._json import converter, go_json, omit_when_empty
from ..core._quantile import E2eLatency
from ..core._stats import ClientStats, StatsDocument

# Import the converter from here, not from trinsq.common._json, so these hooks are registered first.
__all__ = ["converter", "go_json"]

omit_when_empty(ClientStats, "authed", "auth_identity", "auth_identity_url", "pub_counts")
omit_when_empty(StatsDocument, "memory")


def _go_float(value: float) -> float:
    # Go's encoding/json writes an integral float64 without a fraction: 1, not 1.0. Below 2**53
    # the integer's digits are exactly what Go prints.
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _e2e_latency(latency: E2eLatency) -> dict[str, Any]:
    percentiles = latency.percentiles
    return {
        "count": latency.count,
        "percentiles": None
        if percentiles is None
        else [{key: _go_float(value) for key, value in item.items()} for item in percentiles],
    }


converter.register_unstructure_hook(E2eLatency, _e2e_latency)

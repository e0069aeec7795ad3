"""The consumer's RDY options in ClientConfig (go-nsq's names, bounds and defaults)."""

from __future__ import annotations

import pytest

from trinsq.client import ClientConfig
from trinsq.client._backoff import BackoffStrategy


def test_defaults_are_go_nsqs() -> None:
    config = ClientConfig()
    assert config.backoff_strategy is BackoffStrategy.EXPONENTIAL
    assert (
        config.rdy_redistribute_interval,
        config.low_rdy_idle_timeout,
        config.low_rdy_timeout,
    ) == (5.0, 10.0, 30.0)


def test_backoff_strategy_by_name() -> None:
    config = ClientConfig(backoff_strategy="full_jitter")
    assert config.backoff_strategy is BackoffStrategy.FULL_JITTER
    with pytest.raises(ValueError, match="not a valid BackoffStrategy"):
        ClientConfig(backoff_strategy="linear")


@pytest.mark.parametrize(
    "option",
    [
        {"rdy_redistribute_interval": 0.0},
        {"rdy_redistribute_interval": 6.0},
        {"low_rdy_idle_timeout": 0.5},
        {"low_rdy_timeout": 301.0},
    ],
)
def test_out_of_bounds(option: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(option))):
        ClientConfig(**option)  # type: ignore[arg-type]

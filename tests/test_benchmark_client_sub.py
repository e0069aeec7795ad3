"""The client-sub benchmark runs every client's consumer against a started broker, each
draining its own pre-filled channel to the last message (the run fails if any is left), and
reports each one's rate and trinsq's ratio (it asserts no speed)."""

from __future__ import annotations

import pytest
from benchmarks._clientsub import CLIENTS, client_sub
from benchmarks._target import started_broker


@pytest.mark.slow
@pytest.mark.interop
def test_client_sub_reports_every_client_side_by_side() -> None:
    with started_broker() as target:
        report = client_sub(target, messages=3000, rdy=100)
    for name in CLIENTS:
        assert report.metrics[f"{name}_msgs_per_s"] > 0, name
    assert report.metrics["trinsq_ratio_to_fastest_other"] > 0
    assert len(report.lines) == len(CLIENTS) + 1

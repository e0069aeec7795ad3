"""The client-pub benchmark runs every client's producer against a started broker and reports
each one's rate and trinsq's ratio (it asserts no speed)."""

from __future__ import annotations

import pytest
from benchmarks._clientpub import CLIENTS, client_pub
from benchmarks._target import started_broker


@pytest.mark.slow
@pytest.mark.interop
def test_client_pub_reports_every_client_side_by_side() -> None:
    with started_broker() as target:
        report = client_pub(target, duration=0.3, callers=20)
    for name in CLIENTS:
        assert report.metrics[f"{name}_msgs_per_s"] > 0, name
    assert report.metrics["trinsq_ratio_to_fastest_other"] > 0
    assert len(report.lines) == len(CLIENTS) + 1

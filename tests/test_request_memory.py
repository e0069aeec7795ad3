"""What one large request costs the broker process in memory, and that deleting its topic
gives it back (issue 13.2), read from the process's /proc like the mem-request benchmark."""

from __future__ import annotations

import json

import pytest
from benchmarks._memrequest import http_mpub, reset_peak, status_kib
from benchmarks._target import http_get, http_post, started_broker

MIB = 1024 * 1024
MESSAGES = 1_000_000
HOUR_MS = 3_600_000


@pytest.mark.slow
def test_a_deferred_mpub_costs_little_and_deleting_its_topic_gives_it_back() -> None:
    """A million one-byte lines deferred an hour: a Message object and its indexes per
    message came to ~350 MiB here; their frames are ~35 MiB."""
    with started_broker(["--mem-queue-size=10000000"]) as target:
        assert target.pid is not None
        assert target.http is not None
        pid, http = target.pid, target.http
        http_post(http, "/topic/create?topic=m")
        http_post(http, "/channel/create?topic=m&channel=c")
        before = status_kib(pid, "VmRSS") * 1024
        peak_reset = reset_peak(pid)
        http_mpub(http, "m", MESSAGES, HOUR_MS)
        peak = status_kib(pid, "VmHWM") * 1024
        stats = json.loads(http_get(http, "/stats?format=json&topic=m"))
        deferred = stats["topics"][0]["channels"][0]["deferred_count"]
        http_post(http, "/topic/delete?topic=m")
        after = status_kib(pid, "VmRSS") * 1024
    assert deferred == MESSAGES
    # Without a reset the peak counts from the start, which is below ``before``.
    assert (peak - before) / MIB < 120, peak_reset
    assert (after - before) / MIB < 20

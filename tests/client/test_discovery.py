"""Lookup URLs, /lookup answers and the poll schedule of a consumer using registries."""

from __future__ import annotations

import random
from typing import Any

import pytest

from trinsq.client._discovery import (
    DiscoveryError,
    LookupPoller,
    join_host_port,
    lookup_url,
    parse_lookup_answer,
)


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("127.0.0.1:4161", "http://127.0.0.1:4161/lookup?topic=t"),
        ("http://h:4161", "http://h:4161/lookup?topic=t"),
        ("http://h:4161/", "http://h:4161/lookup?topic=t"),
        ("https://h:4161/custom?x=1", "https://h:4161/custom?topic=t&x=1"),
        ("[::1]:4161", "http://[::1]:4161/lookup?topic=t"),
    ],
)
def test_lookup_url(address: str, url: str) -> None:
    assert lookup_url(address, "t") == url


@pytest.mark.parametrize("address", ["127.0.0.1", "http://h/", "h:notaport"])
def test_lookup_url_refuses_an_address_without_a_port(address: str) -> None:
    with pytest.raises(DiscoveryError, match="lookupd address"):
        lookup_url(address, "t")


def _producer(host: str, port: int) -> dict[str, Any]:
    return {
        "remote_address": f"{host}:5555",
        "hostname": "h",
        "broadcast_address": host,
        "tcp_port": port,
        "http_port": port + 1,
        "version": "1.3.0",
    }


def test_parse_v1_answer() -> None:
    answer = {"channels": ["c"], "producers": [_producer("10.0.0.1", 4150), _producer("b", 4152)]}
    assert parse_lookup_answer(answer) == ["10.0.0.1:4150", "b:4152"]


def test_parse_legacy_wrapped_answer() -> None:
    answer = {"status_code": 200, "status_txt": "OK", "data": {"producers": [_producer("a", 1)]}}
    assert parse_lookup_answer(answer) == ["a:1"]


def test_parse_ipv6_and_repeats() -> None:
    answer = {"producers": [_producer("::1", 4150), _producer("::1", 4150)]}
    assert parse_lookup_answer(answer) == ["[::1]:4150"]


def test_parse_no_producers() -> None:
    assert parse_lookup_answer({"channels": [], "producers": None}) == []


@pytest.mark.parametrize(
    "answer",
    [
        [],
        {"producers": {}},
        {"producers": ["x"]},
        {"producers": [{"broadcast_address": "a"}]},
        {"producers": [{"broadcast_address": "a", "tcp_port": True}]},
        {"producers": [{"broadcast_address": "a", "tcp_port": 70000}]},
        {"producers": [{"broadcast_address": "", "tcp_port": 1}]},
    ],
)
def test_parse_refuses_malformed_answers(answer: Any) -> None:
    with pytest.raises(DiscoveryError):
        parse_lookup_answer(answer)


def test_join_host_port() -> None:
    assert join_host_port("a", 1) == "a:1"
    assert join_host_port("fe80::1", 2) == "[fe80::1]:2"


def test_registries_are_asked_in_turn_up_to_three_per_poll() -> None:
    poller = LookupPoller(["a:1", "b:2", "c:3", "d:4"], "t", interval=60, jitter=0.3, now=0)
    hosts = [url.split("/")[2] for url in poller.next_urls()]
    assert hosts == ["a:1", "b:2", "c:3"]
    assert poller.next_urls()[0].split("/")[2] == "d:4"


def test_one_registry_is_asked_once_per_poll() -> None:
    poller = LookupPoller(["a:1", "a:1"], "t", interval=60, jitter=0.3, now=0)
    assert poller.next_urls() == ["http://a:1/lookup?topic=t"]


def test_poll_schedule_first_now_then_interval_plus_jitter_then_interval() -> None:
    rng = random.Random(5)
    expected_jitter = random.Random(5).random() * 0.3 * 60
    poller = LookupPoller(["a:1"], "t", interval=60, jitter=0.3, now=100.0, rng=rng)
    assert poller.deadline() == 100.0
    poller.polled(100.5)
    assert poller.deadline() == pytest.approx(160.5 + expected_jitter)
    poller.polled(200.0)
    assert poller.deadline() == 260.0
    poller.recheck(210.0)
    assert poller.deadline() == 210.0


def test_jitter_spreads_consumers() -> None:
    deadlines = set()
    for seed in range(50):
        poller = LookupPoller(["a:1"], "t", interval=10, jitter=0.5, now=0, rng=random.Random(seed))
        poller.polled(0)
        deadlines.add(poller.deadline())
    assert all(10 <= d <= 15 for d in deadlines)
    assert len(deadlines) == 50


def test_found_connects_new_and_drops_vanished_producers() -> None:
    poller = LookupPoller(["a:1"], "t", interval=60, jitter=0, now=0)
    changes = poller.found(["n1:1", "n2:2"], connected=[])
    assert (changes.connect, changes.drop) == (["n1:1", "n2:2"], [])
    changes = poller.found(["n2:2", "n3:3"], connected=["n1:1", "n2:2"])
    assert (changes.connect, changes.drop) == (["n3:3"], ["n1:1"])
    assert poller.discovered == {"n2:2", "n3:3"}


@pytest.mark.parametrize(("interval", "jitter"), [(0, 0.3), (1, -0.1), (1, 1.5)])
def test_bad_poll_settings(interval: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="lookupd poll"):
        LookupPoller(["a:1"], "t", interval=interval, jitter=jitter, now=0)

"""Finding producers and summing a channel over nodes, from known /lookup and /stats documents,
with clusterinfo's error rules and words."""

from __future__ import annotations

import pytest

from trinsq.tools.stat._clusterinfo import (
    ClusterInfoError,
    Failure,
    channel_stats_target,
    channel_totals,
    http_address,
    https_port,
    lookup_producers,
    lookup_target,
    nsqd_producer,
    nsqd_producers,
    status_error_text,
    topic_in_stats,
    topic_stats_target,
)
from trinsq.tools.stat._report import ChannelTotals


def _channel(name: str, **counts: int) -> dict[str, object]:
    document: dict[str, object] = {
        "channel_name": name,
        "depth": 0,
        "backend_depth": 0,
        "in_flight_count": 0,
        "deferred_count": 0,
        "message_count": 0,
        "requeue_count": 0,
        "timeout_count": 0,
        "client_count": 0,
        "clients": None,
        "paused": False,
        "e2e_processing_latency": {"count": 0, "percentiles": None},
    }
    document.update(counts)
    return document


def _stats(*topics: tuple[str, list[dict[str, object]]]) -> dict[str, object]:
    """An nsqd v1.3.0 /stats?format=json document (V1 framing: no data envelope)."""
    return {
        "version": "1.3.0",
        "health": "OK",
        "start_time": 1796227132,
        "topics": [
            {
                "topic_name": name,
                "channels": channels,
                "depth": 0,
                "backend_depth": 0,
                "message_count": 0,
                "message_bytes": 0,
                "paused": False,
                "e2e_processing_latency": {"count": 0, "percentiles": None},
            }
            for name, channels in topics
        ],
        "memory": {"heap_objects": 1},
        "producers": None,
    }


def _producer(host: str, http_port: int) -> dict[str, object]:
    return {
        "remote_address": f"{host}:50000",
        "hostname": "box",
        "broadcast_address": host,
        "tcp_port": 4150,
        "http_port": http_port,
        "version": "1.3.0",
    }


def test_targets_are_the_ones_nsq_stat_requests() -> None:
    assert lookup_target("a b") == "/lookup?topic=a+b"
    assert topic_stats_target("t") == "/stats?format=json&topic=t&include_clients=false"
    assert (
        channel_stats_target("t", "c#ephemeral")
        == "/stats?format=json&topic=t&channel=c%23ephemeral&include_clients=false"
    )


def test_channel_is_summed_over_nodes_with_memory_depth_derived() -> None:
    first = _stats(
        (
            "t",
            [
                _channel("c", depth=10, backend_depth=4, message_count=100, client_count=1),
                _channel("other", depth=999),
            ],
        ),
        ("u", [_channel("c", depth=555)]),  # same channel name, another topic: not counted
    )
    second = _stats(
        (
            "t",
            [
                _channel(
                    "c",
                    depth=5,
                    in_flight_count=2,
                    deferred_count=1,
                    requeue_count=3,
                    timeout_count=4,
                    message_count=50,
                    client_count=2,
                )
            ],
        ),
    )
    assert channel_totals([first, second], "t", "c") == ChannelTotals(
        depth=15,
        memory_depth=11,
        backend_depth=4,
        in_flight_count=2,
        deferred_count=1,
        requeue_count=3,
        timeout_count=4,
        message_count=150,
        client_count=3,
    )


def test_missing_channel_is_none() -> None:
    assert channel_totals([_stats(("t", [_channel("c")]))], "t", "d") is None
    assert channel_totals([_stats()], "t", "c") is None


def test_no_producers_is_clusterinfos_empty_failure() -> None:
    with pytest.raises(ClusterInfoError) as raised:
        channel_totals([], "t", "c")
    assert str(raised.value) == "failed to query any nsqd: "


def test_one_failed_node_of_two_is_still_an_error() -> None:
    good = _stats(("t", [_channel("c", depth=1)]))
    with pytest.raises(ClusterInfoError) as raised:
        channel_totals([good, Failure('got response 500 Internal Server Error "x"')], "t", "c")
    assert str(raised.value) == 'got response 500 Internal Server Error "x"'


def test_every_node_failing_lists_each_error_on_its_own_line() -> None:
    with pytest.raises(ClusterInfoError) as raised:
        channel_totals([Failure("one"), Failure("two")], "t", "c")
    assert str(raised.value) == "failed to query any nsqd: one\ntwo"


def test_an_answer_go_could_not_decode_counts_as_a_failed_node() -> None:
    channel = _channel("c")
    channel["depth"] = "7"
    bad = {"topics": [{"topic_name": "t", "channels": [channel]}]}
    with pytest.raises(ClusterInfoError) as raised:
        channel_totals([bad], "t", "c")
    assert str(raised.value).startswith("failed to query any nsqd: json: cannot unmarshal string")


def test_lookup_producers_are_deduplicated_by_http_address() -> None:
    first = {"channels": ["c"], "producers": [_producer("10.0.0.1", 4151), _producer("::1", 4151)]}
    second = {
        "channels": [],
        "producers": [_producer("10.0.0.1", 4151), _producer("10.0.0.2", 4151)],
    }
    assert lookup_producers([first, second]) == ["10.0.0.1:4151", "[::1]:4151", "10.0.0.2:4151"]


def test_lookup_failures() -> None:
    not_found = Failure(status_error_text(404, "Not Found", b'{"message":"TOPIC_NOT_FOUND"}'))
    with pytest.raises(ClusterInfoError) as raised:
        lookup_producers([not_found])
    assert str(raised.value) == (
        "failed to query any nsqlookupd: got response 404 Not Found "
        '"{\\"message\\":\\"TOPIC_NOT_FOUND\\"}"'
    )
    with pytest.raises(ClusterInfoError) as raised:
        lookup_producers([{"producers": [_producer("h", 1)]}, Failure("down")])
    assert str(raised.value) == "down"
    with pytest.raises(ClusterInfoError, match="cannot unmarshal array"):
        lookup_producers([[]])


def test_nsqd_discovery() -> None:
    document = _stats(("t", []), ("u", []))
    assert topic_in_stats(document, "t")
    assert not topic_in_stats(document, "v")
    info = {
        "version": "1.3.0",
        "broadcast_address": "box.local",
        "hostname": "box",
        "http_port": 4151,
        "tcp_port": 4150,
    }
    assert nsqd_producer(info, "127.0.0.1:9999") == "box.local:4151"
    # an nsqd too old to say: the queried address stands in
    assert nsqd_producer({"version": "0.2.0"}, "[::1]:9999") == "[::1]:9999"
    assert nsqd_producers(["a:1", None, "b:2"]) == ["a:1", "b:2"]
    assert nsqd_producers([None]) == []
    with pytest.raises(ClusterInfoError) as raised:
        nsqd_producers([Failure("refused")])
    assert str(raised.value) == "failed to query any nsqd: refused"
    with pytest.raises(ClusterInfoError):
        topic_in_stats({"topics": "t"}, "t")


def test_status_errors_quote_the_body_as_go_does() -> None:
    assert status_error_text(500, "Internal Server Error", b"a\tb\xff") == (
        'got response 500 Internal Server Error "a\\tb\\xff"'
    )


def test_http_address_brackets_ipv6() -> None:
    assert http_address("::1", 4151) == "[::1]:4151"
    assert http_address("box", 4151) == "box:4151"


def test_https_port_of_a_tls_required_answer() -> None:
    assert https_port(b'{"message": "TLS_REQUIRED", "https_port": 4152}') == 4152
    assert https_port(b'{"message": "FORBIDDEN"}') == 0  # Go's zero value
    assert isinstance(https_port(b"not json"), Failure)
    assert isinstance(https_port(b'{"https_port": "4152"}'), Failure)

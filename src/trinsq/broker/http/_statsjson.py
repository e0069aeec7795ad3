"""``GET /stats?format=json`` written straight from the graph, a topic at a time.

The general path (core._stats' attrs models unstructured by cattrs, then json.dumps) took
about 140 ms of the event loop at 1,000 topics x 10 channels, in one piece. This writes the
same bytes (tests/broker/http/test_statsjson.py holds the two equal) with one %-format per
channel, and yields after each topic so the handler can let other tasks run in between.
Topics and channels change between steps as they would under nsqd's per-topic locks: each
topic is read whole when its turn comes, and one deleted meanwhile is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from ..core._channel import Channel
from ..core._client import Client
from ..core._quantile import aggregate
from ..core._stats import client_stats, memory_stats
from ..core._topic import Topic
from ._jsonedge import go_json

__all__ = ["stats_json"]

# Valid topic and channel names are [.a-zA-Z0-9_-] with an optional "#ephemeral": nothing in
# them needs escaping, so they go into the %-formats as they are.
_CHANNEL: Final = (
    '{"channel_name":"%s","depth":%d,"backend_depth":%d,"in_flight_count":%d,'
    '"deferred_count":%d,"message_count":%d,"requeue_count":%d,"timeout_count":%d,'
    '"client_count":%d,"clients":%s,"paused":%s,"e2e_processing_latency":%s}'
)
_TOPIC: Final = (
    '{"topic_name":"%s","channels":[%s],"depth":%d,"backend_depth":%d,"message_count":%d,'
    '"message_bytes":%d,"paused":%s,"e2e_processing_latency":%s}'
)
_NO_LATENCY: Final = '{"count":0,"percentiles":null}'  # E2eLatency() as go_json writes it
_BOOL: Final = ("false", "true")


def _json(value: object) -> str:
    # go_json's bytes back to text; surrogateescape keeps what a client sent undecodable
    return go_json(value).decode("utf-8", "surrogateescape")


def _clients(channel: Channel, topic_filter: str) -> str:
    if not channel.clients:
        return "[]"
    stats = [
        client_stats(consumer, topic_filter)
        for consumer in channel.clients.values()
        if isinstance(consumer, Client)
    ]
    return _json(stats)


def _channel(channel: Channel, include_clients: bool, topic_filter: str) -> str:
    backend_depth = channel.backend.depth
    e2e = channel.e2e
    return _CHANNEL % (
        channel.name,
        channel.queued + backend_depth,
        backend_depth,
        len(channel.in_flight),
        len(channel.deferred),
        channel.message_count,
        channel.requeue_count,
        channel.timeout_count,
        len(channel.clients),
        _clients(channel, topic_filter) if include_clients else "null",
        _BOOL[channel.paused],
        _NO_LATENCY if e2e is None else _json(e2e.result()),
    )


def _topic(topic: Topic, channel_filter: str, include_clients: bool, topic_filter: str) -> str:
    channels = topic.channels
    if channel_filter:
        chosen = [channels[channel_filter]]
    else:
        chosen = [channels[name] for name in sorted(channels)]
    # all of the topic's channels, whatever the channel filter (as nsqd)
    streams = [channel.e2e for channel in channels.values() if channel.e2e is not None]
    latency = _json(aggregate(streams)) if streams else _NO_LATENCY
    backend_depth = topic.backend.depth
    return _TOPIC % (
        topic.name,
        ",".join([_channel(c, include_clients, topic_filter) for c in chosen]),
        topic.queued + backend_depth,
        backend_depth,
        topic.message_count,
        topic.message_bytes,
        _BOOL[topic.paused],
        latency,
    )


def stats_json(
    topics: dict[str, Topic],
    clients: Iterable[Client],
    *,
    version: str,
    health: str,
    start_time: float,
    topic: str = "",
    channel: str = "",
    include_clients: bool = True,
    include_mem: bool = True,
) -> Iterator[tuple[str, int]]:
    """The document in pieces, each with the number of channels it took (to pace the
    caller); their concatenation is ``go_json`` of core._stats' StatsDocument."""
    head = f'{{"version":{_json(version)},"health":{_json(health)},'
    yield head + f'"start_time":{int(start_time)},"topics":', 0
    found = True
    if topic:
        found = topic in topics
        chosen = [topics[topic]] if found else []
    else:
        chosen = [topics[name] for name in sorted(topics)]
    if found:
        yield "[", 0
        first = True
        for each in chosen:
            if topics.get(each.name) is not each:
                continue  # deleted (or replaced) while earlier topics were written
            if channel and channel not in each.channels:
                continue
            piece = _topic(each, channel, include_clients, topic)
            yield piece if first else "," + piece, len(each.channels)
            first = False
        yield "]", 0
    else:
        yield "null", 0
    if include_mem:
        yield ',"memory":' + _json(memory_stats()), 0
    producers = None
    if found and include_clients:
        producers = [client_stats(c, topic) for c in clients if c.pub_counts] or None
    yield ',"producers":' + _json(producers) + "}", 0

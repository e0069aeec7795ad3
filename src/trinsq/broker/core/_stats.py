"""What /stats reports, as attrs models built from the live graph (nsqd/stats.go).

Field names and order are nsqd's JSON keys; trinsq/broker/_jsonedge.py turns these models into
JSON. No trio, no HTTP here.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import deque
from collections.abc import Iterable
from typing import Final

import attrs

from ..._version import NSQ_COMPAT_VERSION
from ._channel import Channel
from ._client import Client
from ._quantile import E2eLatency, aggregate
from ._topic import Topic

__all__ = [
    "ChannelStats",
    "ClientStats",
    "E2eLatency",
    "InfoDocument",
    "MemoryStats",
    "PubCount",
    "StatsDocument",
    "TopicStats",
    "collect_stats",
    "memory_stats",
]


@attrs.frozen
class PubCount:
    topic: str
    count: int


@attrs.frozen
class ClientStats:
    client_id: str
    hostname: str
    version: str
    remote_address: str
    state: int
    ready_count: int
    in_flight_count: int
    message_count: int
    finish_count: int
    requeue_count: int
    connect_ts: int
    sample_rate: int
    deflate: bool
    snappy: bool
    user_agent: str
    # omitted from the JSON when empty, as nsqd's omitempty does
    authed: bool = False
    auth_identity: str = ""
    auth_identity_url: str = ""
    pub_counts: list[PubCount] = attrs.field(factory=list)
    tls: bool = False
    tls_cipher_suite: str = ""
    tls_version: str = ""
    tls_negotiated_protocol: str = ""
    tls_negotiated_protocol_is_mutual: bool = False


@attrs.frozen
class ChannelStats:
    channel_name: str
    depth: int
    backend_depth: int
    in_flight_count: int
    deferred_count: int
    message_count: int
    requeue_count: int
    timeout_count: int
    client_count: int
    clients: list[ClientStats] | None  # None when include_clients=false
    paused: bool
    e2e_processing_latency: E2eLatency


@attrs.frozen
class TopicStats:
    topic_name: str
    channels: list[ChannelStats]
    depth: int
    backend_depth: int
    message_count: int
    message_bytes: int
    paused: bool
    e2e_processing_latency: E2eLatency


@attrs.frozen
class MemoryStats:
    """nsqd reports Go runtime numbers; these are the nearest Python ones."""

    heap_objects: int  # live allocated blocks (sys.getallocatedblocks)
    heap_idle_bytes: int
    heap_in_use_bytes: int  # resident set size
    heap_released_bytes: int
    gc_pause_usec_100: int
    gc_pause_usec_99: int
    gc_pause_usec_95: int
    next_gc_bytes: int
    gc_total_runs: int


@attrs.frozen
class InfoDocument:
    """/info (nsqd/http.go doInfo); durations in nanoseconds as Go writes them."""

    version: str
    broadcast_address: str
    hostname: str
    http_port: int
    tcp_port: int
    start_time: int
    max_heartbeat_interval: int
    max_output_buffer_size: int
    max_output_buffer_timeout: int
    max_deflate_level: int


@attrs.frozen
class StatsDocument:
    version: str
    health: str
    start_time: int
    topics: list[TopicStats] | None = None  # None when a topic filter matched nothing
    memory: MemoryStats | None = None  # left out of the JSON when include_mem=false
    producers: list[ClientStats] | None = None


# -- gc pauses -------------------------------------------------------------------------------

_PAUSES: Final[deque[int]] = deque(maxlen=256)  # like Go's MemStats.PauseNs ring
_gc_started: list[float] = []


def _record_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        _PAUSES.append(round((time.perf_counter() - _gc_started[0]) * 1_000_000))


gc.callbacks.append(_record_gc)


def _percentile(ordered: list[int], fraction: float) -> int:
    if not ordered:
        return 0
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096
    except (OSError, ValueError, IndexError):
        return 0


def memory_stats() -> MemoryStats:
    pauses = sorted(_PAUSES)
    return MemoryStats(
        heap_objects=sys.getallocatedblocks(),
        heap_idle_bytes=0,
        heap_in_use_bytes=_resident_bytes(),
        heap_released_bytes=0,
        gc_pause_usec_100=pauses[-1] if pauses else 0,
        gc_pause_usec_99=_percentile(pauses, 0.99),
        gc_pause_usec_95=_percentile(pauses, 0.95),
        next_gc_bytes=0,
        gc_total_runs=sum(generation["collections"] for generation in gc.get_stats()),
    )


# -- building --------------------------------------------------------------------------------


def client_stats(client: Client, topic_filter: str) -> ClientStats:
    pub_counts = [
        PubCount(topic, count)
        for topic, count in client.pub_counts.items()
        if not topic_filter or topic == topic_filter
    ]
    return ClientStats(
        client_id=client.client_id,
        hostname=client.hostname,
        version="V2",
        remote_address=client.remote_address,
        state=int(client.state),
        ready_count=client.ready_count,
        in_flight_count=client.in_flight_count,
        message_count=client.message_count,
        finish_count=client.finish_count,
        requeue_count=client.requeue_count,
        connect_ts=int(client.connect_time),
        sample_rate=client.settings.sample_rate,
        deflate=client.deflate,
        snappy=client.snappy,
        user_agent=client.user_agent,
        # nsqd lists at most one topic here (a `break` in clientV2.Stats); tools expect that.
        pub_counts=pub_counts[:1],
        authed=bool(client.auth and client.auth.authorizations),
        auth_identity=client.auth.identity if client.auth else "",
        auth_identity_url=client.auth.identity_url if client.auth else "",
        tls=client.tls,
        tls_cipher_suite=client.tls_cipher_suite,
        tls_version=client.tls_version,
    )


def _channel_stats(channel: Channel, include_clients: bool, topic_filter: str) -> ChannelStats:
    clients: list[ClientStats] | None = None
    if include_clients:
        clients = [
            client_stats(consumer, topic_filter)
            for consumer in channel.clients.values()
            if isinstance(consumer, Client)
        ]
    return ChannelStats(
        channel_name=channel.name,
        depth=channel.depth,
        backend_depth=channel.backend_depth,
        in_flight_count=len(channel.in_flight),
        deferred_count=len(channel.deferred),
        message_count=channel.message_count,
        requeue_count=channel.requeue_count,
        timeout_count=channel.timeout_count,
        client_count=len(channel.clients),
        clients=clients,
        paused=channel.paused,
        e2e_processing_latency=E2eLatency() if channel.e2e is None else channel.e2e.result(),
    )


def collect_stats(
    topics: dict[str, Topic],
    clients: Iterable[Client],
    *,
    topic: str = "",
    channel: str = "",
    include_clients: bool = True,
) -> tuple[list[TopicStats] | None, list[ClientStats] | None]:
    """nsqd's GetStats: topics sorted by name (channels too), filtered by topic and channel;
    producers are the clients that have published."""
    if topic:
        if topic not in topics:
            return None, None
        chosen = [topics[topic]]
    else:
        chosen = [topics[name] for name in sorted(topics)]
    topic_stats: list[TopicStats] = []
    for each in chosen:
        if channel:
            if channel not in each.channels:
                continue
            channels = [each.channels[channel]]
        else:
            channels = [each.channels[name] for name in sorted(each.channels)]
        topic_stats.append(
            TopicStats(
                topic_name=each.name,
                channels=[_channel_stats(c, include_clients, topic) for c in channels],
                depth=each.depth,
                backend_depth=each.backend_depth,
                message_count=each.message_count,
                message_bytes=each.message_bytes,
                paused=each.paused,
                # all of the topic's channels, whatever the channel filter (as nsqd)
                e2e_processing_latency=aggregate(c.e2e for c in each.channels.values()),
            )
        )
    producers: list[ClientStats] | None = None
    if include_clients:
        producers = [client_stats(c, topic) for c in clients if c.pub_counts] or None
    return topic_stats, producers


def stats_document(
    health: str,
    start_time: float,
    topics: list[TopicStats] | None,
    producers: list[ClientStats] | None,
    include_mem: bool,
) -> StatsDocument:
    return StatsDocument(
        version=NSQ_COMPAT_VERSION,
        health=health,
        start_time=int(start_time),
        topics=topics,
        memory=memory_stats() if include_mem else None,
        producers=producers,
    )

"""/stats without format=json: nsqd's human-readable layout (nsqd/http.go printStats)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..._version import NSQ_COMPAT_VERSION, __version__
from ...common._durations import format_go_duration
from ..core._stats import ClientStats, E2eLatency, StatsDocument

__all__ = ["render_text_stats"]


def _nanoseconds_to_human(value: float) -> str:
    """nsqd's stringy.NanoSecondToHuman: one decimal in the largest unit the value exceeds."""
    for scale, suffix in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
        if value > scale:
            return f"{value / scale:.1f}{suffix}"
    return f"{value:.1f}ns"


def _e2e(latency: E2eLatency) -> str:
    values = [item.get("value", 0.0) for item in latency.percentiles or []]
    return ", ".join(_nanoseconds_to_human(value) for value in values)


def _client_line(client: ClientStats, now: float) -> str:
    """clientV2Stats.String(): a producer line when it has published, else a consumer line."""
    connected = format_go_duration(max(int(now) - client.connect_ts, 0))
    port = client.remote_address.rpartition(":")[2]
    identity = f"{client.hostname}:{port} {client.user_agent}"
    if client.pub_counts:
        total = sum(count.count for count in client.pub_counts)
        topics = ",".join(f"{count.topic}={count.count}" for count in client.pub_counts)
        return (
            f"[{client.version} {identity:<21}] msgs: {total:<8} topics: {topics} "
            f"connected: {connected}"
        )
    return (
        f"[{client.version} {identity:<21}] state: {client.state} "
        f"inflt: {client.in_flight_count:<4} rdy: {client.ready_count:<4} "
        f"fin: {client.finish_count:<8} re-q: {client.requeue_count:<8} "
        f"msgs: {client.message_count:<8} connected: {connected}"
    )


def render_text_stats(document: StatsDocument, start_time: float, now: float | None = None) -> str:
    now = time.time() if now is None else now
    started = datetime.fromtimestamp(start_time, UTC).astimezone()
    lines = [
        f"nsqd v{NSQ_COMPAT_VERSION} (built w/trinsq {__version__})",
        f"start_time {started.isoformat(timespec='seconds').replace('+00:00', 'Z')}",
        f"uptime {format_go_duration(now - start_time)}",
        "",
        f"Health: {document.health}",
    ]
    memory = document.memory
    if memory is not None:
        lines += ["", "Memory:"]
        for name, value in (
            ("heap_objects", memory.heap_objects),
            ("heap_idle_bytes", memory.heap_idle_bytes),
            ("heap_in_use_bytes", memory.heap_in_use_bytes),
            ("heap_released_bytes", memory.heap_released_bytes),
            ("gc_pause_usec_100", memory.gc_pause_usec_100),
            ("gc_pause_usec_99", memory.gc_pause_usec_99),
            ("gc_pause_usec_95", memory.gc_pause_usec_95),
            ("next_gc_bytes", memory.next_gc_bytes),
            ("gc_total_runs", memory.gc_total_runs),
        ):
            lines.append(f"   {name:<25}\t{value}")
    topics = document.topics or []
    lines += ["", "Topics: None"] if not topics else ["", "Topics:"]
    for index, topic in enumerate(topics):
        paused = "*P " if topic.paused else "   "
        # nsqd starts each topic on a new line: blank lines fall between topics only.
        lines += [""] if index else []
        lines += [
            f"{paused}[{topic.topic_name:<15}] depth: {topic.depth:<5} "
            f"be-depth: {topic.backend_depth:<5} msgs: {topic.message_count:<8} "
            f"e2e%: {_e2e(topic.e2e_processing_latency)}",
        ]
        for channel in topic.channels:
            paused = "   *P " if channel.paused else "      "
            lines.append(
                f"{paused}[{channel.channel_name:<25}] depth: {channel.depth:<5} "
                f"be-depth: {channel.backend_depth:<5} inflt: {channel.in_flight_count:<4} "
                f"def: {channel.deferred_count:<4} re-q: {channel.requeue_count:<5} "
                f"timeout: {channel.timeout_count:<5} msgs: {channel.message_count:<8} "
                f"e2e%: {_e2e(channel.e2e_processing_latency)}"
            )
            lines += [f"        {_client_line(c, now)}" for c in channel.clients or []]
    producers = document.producers or []
    lines += ["", "Producers: None"] if not producers else ["", "Producers:"]
    lines += [f"   {_client_line(p, now)}" for p in producers]
    return "\n".join(lines) + "\n"

"""GET /metrics: the broker's numbers in Prometheus text exposition format 0.0.4.

trinsq's own endpoint (nsqd has none). Topic and channel numbers come from the same attrs
models as /stats (collect_stats), so both endpoints agree by construction.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Final

from ..core._services import BrokerServices
from ..core._stats import ChannelStats, E2eLatency, TopicStats, memory_stats

__all__ = ["CONTENT_TYPE", "escape_label_value", "render_metrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# (name, type, help, value); a counter's name ends in _total, as its samples are named.
_TOPIC_FAMILIES: Final[list[tuple[str, str, str, Callable[[TopicStats], int]]]] = [
    ("nsq_topic_depth", "gauge", "Messages queued (memory and disk).", lambda t: t.depth),
    ("nsq_topic_memory_depth", "gauge", "Messages queued in memory.",
     lambda t: t.depth - t.backend_depth),
    ("nsq_topic_backend_depth", "gauge", "Messages queued on disk.", lambda t: t.backend_depth),
    ("nsq_topic_messages_total", "counter", "Messages published.", lambda t: t.message_count),
    ("nsq_topic_message_bytes_total", "counter", "Message body bytes published.",
     lambda t: t.message_bytes),
    ("nsq_topic_paused", "gauge", "1 while the topic is paused.", lambda t: int(t.paused)),
]  # fmt: skip
_CHANNEL_FAMILIES: Final[list[tuple[str, str, str, Callable[[ChannelStats], int]]]] = [
    ("nsq_channel_depth", "gauge", "Messages queued (memory and disk).", lambda c: c.depth),
    ("nsq_channel_memory_depth", "gauge", "Messages queued in memory.",
     lambda c: c.depth - c.backend_depth),
    ("nsq_channel_backend_depth", "gauge", "Messages queued on disk.", lambda c: c.backend_depth),
    ("nsq_channel_in_flight", "gauge", "Messages sent to a consumer and not yet finished.",
     lambda c: c.in_flight_count),
    ("nsq_channel_deferred", "gauge", "Messages deferred (DPUB, REQ with a delay).",
     lambda c: c.deferred_count),
    ("nsq_channel_messages_total", "counter", "Messages put on the channel.",
     lambda c: c.message_count),
    ("nsq_channel_requeued_total", "counter", "Messages requeued.", lambda c: c.requeue_count),
    ("nsq_channel_timed_out_total", "counter", "In-flight messages that timed out.",
     lambda c: c.timeout_count),
    ("nsq_channel_clients", "gauge", "Consumers subscribed.", lambda c: c.client_count),
    ("nsq_channel_paused", "gauge", "1 while the channel is paused.", lambda c: int(c.paused)),
]  # fmt: skip

_LABEL_ESCAPES: Final = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})

Sample = tuple[dict[str, str], float]


def escape_label_value(text: str) -> str:
    """A label value as the exposition format writes it: backslash, quote and newline escaped."""
    return text.translate(_LABEL_ESCAPES)


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        # The HELP texts are fixed ASCII without backslashes or newlines: nothing to escape.
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            pairs = ",".join(f'{key}="{escape_label_value(v)}"' for key, v in labels.items())
            self.lines.append(f"{name}{{{pairs}}} {value}" if pairs else f"{name} {value}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _latency_samples(labels: dict[str, str], latency: E2eLatency) -> list[Sample]:
    """One sample per configured quantile, in seconds (/stats has them in ns)."""
    return [
        ({**labels, "quantile": repr(float(item["quantile"]))}, item["value"] / 1e9)
        for item in latency.percentiles or []
    ]


def render_metrics(server: BrokerServices) -> str:
    """The exposition text for ``server`` now."""
    topics = server.core.stats(include_clients=False)[0] or []
    channels = [(t.topic_name, c) for t in topics for c in t.channels]
    out = _Exposition()
    for name, kind, help_text, topic_value in _TOPIC_FAMILIES:
        samples = [({"topic": t.topic_name}, topic_value(t)) for t in topics]
        out.family(name, kind, help_text, samples)
    for name, kind, help_text, channel_value in _CHANNEL_FAMILIES:
        samples = [
            ({"topic": topic, "channel": c.channel_name}, channel_value(c)) for topic, c in channels
        ]
        out.family(name, kind, help_text, samples)
    latency_help = "End-to-end processing latency quantiles over the e2e window."
    out.family(
        "nsq_topic_e2e_processing_latency_seconds",
        "gauge",
        latency_help,
        [
            sample
            for t in topics
            for sample in _latency_samples({"topic": t.topic_name}, t.e2e_processing_latency)
        ],
    )
    out.family(
        "nsq_channel_e2e_processing_latency_seconds",
        "gauge",
        latency_help,
        [
            sample
            for topic, c in channels
            for sample in _latency_samples(
                {"topic": topic, "channel": c.channel_name}, c.e2e_processing_latency
            )
        ],
    )

    clients = server.core.clients.values()
    queues = sorted(server.storage.queues.items())
    gc_runs = [({"generation": str(n)}, s["collections"]) for n, s in enumerate(gc.get_stats())]
    broker: list[tuple[str, str, str, list[Sample]]] = [
        ("nsq_topics", "gauge", "Topics.", [({}, len(topics))]),
        ("nsq_channels", "gauge", "Channels.", [({}, len(channels))]),
        ("nsq_clients", "gauge", "TCP connections.", [({}, len(clients))]),
        # /stats lists these clients as producers
        ("nsq_producers", "gauge", "TCP connections that have published.",
         [({}, sum(1 for c in clients if c.pub_counts))]),
        ("nsq_disk_queue_bad_files", "gauge", "Unreadable files a disk queue has set aside.",
         [({"queue": name}, q.bad_files) for name, q in queues]),
        ("nsq_disk_bad_files", "gauge", "Unreadable files all disk queues have set aside.",
         [({}, sum(q.bad_files for _, q in queues))]),
        ("nsq_healthy", "gauge", "1 while healthy (the health /ping and /stats report).",
         [({}, int(server.storage.health_error is None))]),
        ("nsq_start_time_seconds", "gauge", "Broker start time, Unix seconds.",
         [({}, int(server.start_time))]),
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         [({}, memory_stats().heap_in_use_bytes)]),
        ("python_gc_collections_total", "counter", "Garbage collector runs.", gc_runs),
    ]  # fmt: skip
    for name, kind, help_text, broker_samples in broker:
        out.family(name, kind, help_text, broker_samples)
    return out.text()

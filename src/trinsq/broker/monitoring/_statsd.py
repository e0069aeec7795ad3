"""Pushing the broker's numbers to statsd over UDP (nsqd/statsd.go, internal/statsd,
internal/writers).

Every --statsd-interval nsqd opens a UDP socket, takes a snapshot of its stats (without
clients) and writes ``<prefix><name>:<value>|c`` (counters, as the change since the last
push) and ``|g`` (gauges) lines, packed into datagrams of at most --statsd-udp-packet-size
bytes and spread evenly over ``interval - 1s``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import trio

from ...protocol import is_ephemeral
from ..config._options import split_host_port
from ..core._services import BrokerServices
from ..core._stats import E2eLatency, MemoryStats, TopicStats, memory_stats

__all__ = ["StatsdLines", "pack_datagrams", "run_statsd", "statsd_lines", "statsd_prefix"]

log = logging.getLogger("trinsq.broker")

_SPREAD_MARGIN = 1.0  # nsqd spreads the datagrams over the interval less one second


def statsd_prefix(template: str, broadcast_address: str, http_port: int) -> str:
    """--statsd-prefix with ``%s`` replaced by the host key (``host_port``, dots and colons
    made underscores), ending in a dot; empty stays empty, as in nsqd's New()."""
    if not template:
        return ""
    # net.JoinHostPort brackets an IPv6 address.
    host = f"[{broadcast_address}]" if ":" in broadcast_address else broadcast_address
    key = f"{host}:{http_port}".replace(".", "_").replace(":", "_")
    prefix = template.replace("%s", key)
    return prefix if prefix.endswith(".") else prefix + "."


class StatsdLines:
    """One push's lines. Counters carry cumulative totals and are sent as the change since
    ``previous`` (the last push's :attr:`totals`); a name not seen before counts from 0."""

    def __init__(self, prefix: str, previous: Mapping[str, int]) -> None:
        self.prefix = prefix
        self.previous = previous
        self.totals: dict[str, int] = {}
        self.lines: list[bytes] = []

    def counter(self, stat: str, total: int) -> None:
        self.totals[stat] = total
        self._add(stat, total - self.previous.get(stat, 0), "c")

    def gauge(self, stat: str, value: int) -> None:
        self._add(stat, value, "g")

    def latency(self, stat: str, latency: E2eLatency) -> None:
        for item in latency.percentiles or []:
            # %.0f of the quantile in percent (0.999 and 1 both give _100, as in nsqd); the
            # value is truncated to whole ns like Go's int64().
            self.gauge(f"{stat}_{item['quantile'] * 100:.0f}", int(item["value"]))

    def _add(self, stat: str, value: int, kind: str) -> None:
        self.lines.append(f"{self.prefix}{stat}:{value}|{kind}\n".encode())


def statsd_lines(
    lines: StatsdLines,
    topics: list[TopicStats],
    memory: MemoryStats | None,
    exclude_ephemeral: bool = False,
) -> None:
    """Add nsqd's metrics for ``topics`` (and ``memory`` when given) to ``lines``, in nsqd's
    order."""
    for topic in topics:
        if exclude_ephemeral and is_ephemeral(topic.topic_name):
            continue
        t = f"topic.{topic.topic_name}"
        lines.counter(f"{t}.message_count", topic.message_count)
        lines.counter(f"{t}.message_bytes", topic.message_bytes)
        lines.gauge(f"{t}.depth", topic.depth)
        lines.gauge(f"{t}.backend_depth", topic.backend_depth)
        lines.latency(f"{t}.e2e_processing_latency", topic.e2e_processing_latency)
        for channel in topic.channels:
            if exclude_ephemeral and is_ephemeral(channel.channel_name):
                continue
            c = f"{t}.channel.{channel.channel_name}"
            lines.counter(f"{c}.message_count", channel.message_count)
            lines.gauge(f"{c}.depth", channel.depth)
            lines.gauge(f"{c}.backend_depth", channel.backend_depth)
            lines.gauge(f"{c}.in_flight_count", channel.in_flight_count)
            lines.gauge(f"{c}.deferred_count", channel.deferred_count)
            lines.counter(f"{c}.requeue_count", channel.requeue_count)
            lines.counter(f"{c}.timeout_count", channel.timeout_count)
            lines.gauge(f"{c}.clients", channel.client_count)
            lines.latency(f"{c}.e2e_processing_latency", channel.e2e_processing_latency)
    if memory is not None:
        lines.gauge("mem.heap_objects", memory.heap_objects)
        lines.gauge("mem.heap_idle_bytes", memory.heap_idle_bytes)
        lines.gauge("mem.heap_in_use_bytes", memory.heap_in_use_bytes)
        lines.gauge("mem.heap_released_bytes", memory.heap_released_bytes)
        lines.gauge("mem.gc_pause_usec_100", memory.gc_pause_usec_100)
        lines.gauge("mem.gc_pause_usec_99", memory.gc_pause_usec_99)
        lines.gauge("mem.gc_pause_usec_95", memory.gc_pause_usec_95)
        lines.gauge("mem.next_gc_bytes", memory.next_gc_bytes)
        lines.counter("mem.gc_runs", memory.gc_total_runs)


def pack_datagrams(lines: list[bytes], size: int) -> list[bytes]:
    """Whole lines packed greedily into datagrams of at most ``size`` bytes, as nsqd's
    BoundaryBufferedWriter does; a line longer than ``size`` goes alone, unsplit."""
    datagrams: list[bytes] = []
    current = bytearray()
    for line in lines:
        if current and len(current) + len(line) > size:
            datagrams.append(bytes(current))
            current.clear()
        if not current and len(line) > size:
            datagrams.append(line)
            continue
        current += line
    if current:
        datagrams.append(bytes(current))
    return datagrams


async def _open_socket(address: str) -> trio.socket.SocketType:
    host, port = split_host_port(address, "statsd_address")
    family, kind, proto, _, sockaddr = (
        await trio.socket.getaddrinfo(host or None, port, type=trio.socket.SOCK_DGRAM)
    )[0]
    sock = trio.socket.socket(family, kind, proto)
    try:
        await sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


async def _send_spread(sock: trio.socket.SocketType, datagrams: list[bytes], spread: float) -> None:
    """Send evenly over ``spread`` seconds, the first at once (all at once when ``spread`` is
    not positive, where nsqd's ticker would panic)."""
    start = trio.current_time()
    step = spread / len(datagrams) if datagrams and spread > 0 else 0.0
    for index, datagram in enumerate(datagrams):
        await trio.sleep_until(start + index * step)
        try:
            await sock.send(datagram)
        except OSError as error:  # nsqd ignores write errors too (no listener, too large)
            log.debug("STATSD: send failed: %s", error)


async def _push(
    server: BrokerServices, sock: trio.socket.SocketType, previous: Mapping[str, int], spread: float
) -> dict[str, int]:
    """Snapshot the stats, send them, and return the counter totals sent."""
    options = server.options
    addresses = server.addresses
    http_port = options.broadcast_http_port or (
        addresses.http[1] if addresses and addresses.http else 0
    )
    lines = StatsdLines(
        statsd_prefix(options.statsd_prefix, options.broadcast_address, http_port), previous
    )
    topics = server.core.stats(include_clients=False)[0] or []
    memory = memory_stats() if options.statsd_mem_stats else None
    statsd_lines(lines, topics, memory, options.statsd_exclude_ephemeral)
    await _send_spread(sock, pack_datagrams(lines.lines, options.statsd_udp_packet_size), spread)
    return lines.totals


async def run_statsd(server: BrokerServices) -> None:
    """Push to --statsd-address every --statsd-interval (read once, as nsqd does).

    Cancellation: the only way this returns.
    Error handling: an address that cannot be resolved or connected is logged and tried again
    at the next interval (the counters then cover both intervals); send errors are ignored.
    """
    interval = server.options.statsd_interval
    previous: dict[str, int] = {}
    due = trio.current_time() + interval
    while True:
        await trio.sleep_until(due)
        address = server.options.statsd_address
        try:
            sock = await _open_socket(address)
        except (OSError, ValueError) as error:
            log.error("failed to create UDP socket to statsd(%s): %s", address, error)
        else:
            with sock:
                log.info("STATSD: pushing stats to %s", address)
                previous = await _push(server, sock, previous, interval - _SPREAD_MARGIN)
        # Like a Go ticker: ticks missed while busy are dropped, not made up.
        now = trio.current_time()
        due += interval
        while due <= now:
            due += interval

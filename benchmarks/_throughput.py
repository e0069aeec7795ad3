"""Throughput scenarios: bench_writer, bench_reader, bench.sh's pair, unbatched PUB, consumers."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks import _pub, _sub
from benchmarks._common import CPUS, MIB, BrokerCpu, delete_topic, rate_lines, report_cpu, unique
from benchmarks._procs import run_workers, shared_counter, split
from benchmarks._report import Report, nsq_line, window
from benchmarks._target import Target

# -- bench_writer / bench_reader ------------------------------------------------------------------


def writer(
    target: Target,
    procs: int = CPUS,
    size: int = 200,
    batch_size: int = 200,
    duration: float = 10.0,
    topic: str = "sub_bench",
    name: str = "writer",
    messages: int = 0,
) -> Report:
    """bench_writer: one MPUB connection per process, waiting for each OK.

    Runs for ``duration`` seconds, or (``messages`` > 0) until that many are published.
    """
    report = Report(name)
    kwargs = [
        dict(
            address=target.tcp,
            topic=topic,
            size=size,
            batch_size=batch_size,
            duration=duration,
            messages=share,
        )
        for share in ([s for s in split(messages, procs) if s] if messages else [0] * procs)
    ]
    meter = BrokerCpu(target)
    results = run_workers(_pub.writer, kwargs, timeout=duration + 600, on_start=meter.begin)
    rate_lines(report, "writer", results)
    count, seconds = window(results)
    report.add(f"PUB: {nsq_line(count, seconds, size)}")
    report_cpu(report, results, meter)
    report.metrics.update(
        procs=procs,
        size=size,
        batch_size=batch_size,
        count=count,
        seconds=round(seconds, 3),
        msgs_per_s=round(count / seconds),
        mb_per_s=round(count * size / seconds / MIB, 3),
    )
    return report


def reader(
    target: Target,
    procs: int = CPUS,
    size: int = 200,
    rdy: int = 2500,
    duration: float = 10.0,
    topic: str = "sub_bench",
    channel: str = "ch",
    expected: int = 0,
    idle_timeout: float = 2.0,
    name: str = "reader",
) -> Report:
    """bench_reader: one SUB connection per process with RDY ``rdy``, FINning every message."""
    report = Report(name)
    counter = shared_counter()
    kwargs = dict(
        address=target.tcp,
        topic=topic,
        channel=channel,
        connections=1,
        rdy=rdy,
        duration=duration,
        idle_timeout=idle_timeout,
        expected=expected,
        counter=counter,
    )
    meter = BrokerCpu(target)
    results = run_workers(
        _sub.consumer, [kwargs] * procs, timeout=duration + 120, on_start=meter.begin
    )
    rate_lines(report, "reader", results)
    count, seconds = window(results)
    report.add(f"SUB: {nsq_line(count, seconds, size)}")
    report_cpu(report, results, meter)
    report.metrics.update(
        procs=procs,
        rdy=rdy,
        count=count,
        seconds=round(seconds, 3),
        msgs_per_s=round(count / seconds) if count else 0,
        mb_per_s=round(count * size / seconds / MIB, 3),
        drained=bool(expected) and count >= expected,
    )
    return report


def pair(
    target: Target,
    procs: int = CPUS,
    size: int = 200,
    batch_size: int = 200,
    rdy: int = 2500,
    duration: float = 10.0,
    topic: str = "sub_bench",
    channel: str = "ch",
    messages: int = 0,
) -> list[Report]:
    """bench.sh: the writer for ``duration`` (or ``messages``), then the reader until it has
    them all or ``duration`` passed."""
    _pub.ensure_channel(target.tcp, topic, channel)
    wrote = writer(target, procs, size, batch_size, duration, topic, messages=messages)
    read = reader(
        target, procs, size, rdy, duration, topic, channel, expected=wrote.metrics["count"]
    )
    return [wrote, read]


# -- unbatched PUB and many consumers -------------------------------------------------------------


def pub(
    target: Target,
    size: int = 200,
    duration: float = 10.0,
    in_flight: Sequence[int] = (1,),
    topic: str = "",
    name: str = "pub",
) -> Report:
    """PUB one message per command from one process: waiting for each OK, or ``k`` in flight."""
    report = Report(name)
    topic = topic or unique("pub_bench")
    for k in in_flight:
        kwargs = dict(address=target.tcp, topic=topic, size=size, duration=duration, in_flight=k)
        meter = BrokerCpu(target)
        results = run_workers(
            _pub.publisher, [kwargs], timeout=duration + 120, on_start=meter.begin
        )
        count, seconds = window(results)
        report.add(f"PUB in flight {k}: {nsq_line(count, seconds, size)}")
        report.metrics[f"in_flight_{k}_msgs_per_s"] = round(count / seconds)
        report_cpu(report, results, meter, key=f"in_flight_{k}_")
    delete_topic(target, topic)
    return report


def fill(
    target: Target, topic: str, messages: int, procs: int, size: int, batch_size: int
) -> float:
    """Publish exactly ``messages`` messages with MPUB from ``procs`` processes; return seconds."""
    shares = [s for s in split(messages, procs) if s]
    kwargs = [
        dict(
            address=target.tcp,
            topic=topic,
            size=size,
            batch_size=batch_size,
            duration=0.0,
            messages=share,
        )
        for share in shares
    ]
    results = run_workers(_pub.writer, kwargs, timeout=600)
    count, seconds = window(results)
    if count != messages:
        raise RuntimeError(f"published {count} of {messages} messages")
    return seconds


def consumers(
    target: Target,
    counts: Sequence[int] = (1, 10, 100),
    messages: int = 500_000,
    procs: int = CPUS,
    size: int = 200,
    batch_size: int = 200,
    max_in_flight: int = 2500,
    rdy: int = 0,
    duration: float = 60.0,
) -> Report:
    """Drain a pre-filled topic through ``n`` consumers on one channel, for each n in counts.

    Each consumer gets RDY ``max_in_flight // n`` (at least 1), like a go-nsq consumer spreading
    its max-in-flight over connections, unless ``rdy`` fixes it per consumer.
    """
    report = Report("consumers")
    for n in counts:
        topic = unique(f"consumers{n}")
        _pub.ensure_channel(target.tcp, topic, "ch")
        fill(target, topic, messages, procs, size, batch_size)
        per_consumer = rdy or max(1, max_in_flight // n)
        counter = shared_counter()
        workers = min(n, procs)
        kwargs = [
            dict(
                address=target.tcp,
                topic=topic,
                channel="ch",
                connections=share,
                rdy=per_consumer,
                duration=duration,
                idle_timeout=5.0,
                expected=messages,
                counter=counter,
            )
            for share in split(n, workers)
        ]
        meter = BrokerCpu(target)
        results = run_workers(_sub.consumer, kwargs, timeout=duration + 120, on_start=meter.begin)
        count, seconds = window(results)
        each = [c for r in results for c in r["per_connection"]]
        report.add(
            f"{n} consumers (RDY {per_consumer} each, {workers} processes): "
            f"{nsq_line(count, seconds, size)}; per consumer {min(each)}..{max(each)}"
        )
        report.metrics[f"c{n}_msgs_per_s"] = round(count / seconds) if count else 0
        report.metrics[f"c{n}_drained"] = count >= messages
        report_cpu(report, results, meter, key=f"c{n}_")
        delete_topic(target, topic)
    report.metrics.update(messages=messages, max_in_flight=max_in_flight)
    return report

"""The generators alone, each against a trivial server in another process (``_fake``)."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks import _fake, _sub
from benchmarks._common import CPUS, BrokerCpu, report_cpu
from benchmarks._latency import latency
from benchmarks._procs import run_workers, shared_counter, split
from benchmarks._report import Report, nsq_line, window
from benchmarks._target import Target
from benchmarks._throughput import pub, reader, writer


def generator_check(
    procs: int = CPUS,
    size: int = 200,
    batch_size: int = 200,
    rdy: int = 2500,
    duration: float = 5.0,
    in_flight: Sequence[int] = (1,),
    consumer_count: int = 100,
    rate: float = 10_000,
    warmup: float = 1.0,
) -> list[Report]:
    """Each generator against a trivial server in another process: their ceilings."""
    reports = []
    with _fake.fake_server("sink", size) as sink:
        fake = Target(tcp=sink)
        reports.append(writer(fake, procs, size, batch_size, duration, name="gen-writer"))
        reports.append(pub(fake, size, duration, in_flight, name="gen-pub"))
    with _fake.fake_server("source", size) as source:
        fake = Target(tcp=source)
        reports.append(reader(fake, procs, size, rdy, duration, name="gen-reader"))
        report = Report("gen-consumers")
        counter = shared_counter()
        workers = min(consumer_count, procs)
        kwargs = [
            dict(
                address=source,
                topic="t",
                channel="ch",
                connections=share,
                rdy=max(1, rdy // consumer_count),
                duration=duration,
                counter=counter,
            )
            for share in split(consumer_count, workers)
        ]
        results = run_workers(_sub.consumer, kwargs, timeout=duration + 120)
        count, seconds = window(results)
        report.add(f"{consumer_count} consumers: {nsq_line(count, seconds, size)}")
        report.metrics[f"c{consumer_count}_msgs_per_s"] = round(count / seconds)
        report_cpu(report, results, BrokerCpu(fake))
        reports.append(report)
    with _fake.fake_server("relay", size) as relay:
        reports.append(latency(Target(tcp=relay), rate, size, warmup, duration, name="gen-latency"))
    return reports

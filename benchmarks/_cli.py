"""``python -m benchmarks <scenario> [options]``: see docs/benchmarks.md."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks import _scenarios as sc
from benchmarks._report import Report
from benchmarks._target import Target, machine, started_broker, started_registry
from benchmarks._wire import parse_address

NEEDS_PID = {"rss-queued", "idle", "mem-request"}


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Load generators for any NSQ-compatible nsqd (Go nsqd or trinsq broker).",
    )
    subs = parser.add_subparsers(dest="scenario", required=True, metavar="scenario")

    def scenario(name: str, help: str, *, broker: bool = True) -> argparse.ArgumentParser:
        p = subs.add_parser(name, help=help, description=help)
        if broker:
            p.add_argument("--address", default="127.0.0.1:4150", help="nsqd TCP host:port")
            p.add_argument("--http-address", help="nsqd HTTP host:port (depth checks, cleanup)")
            p.add_argument("--broker-pid", type=int, help="PID of the broker, to read its /proc")
            p.add_argument(
                "--start-broker",
                action="store_true",
                help="start 'python -m trinsq broker' on free 127.0.0.1 ports and stop it after",
            )
            p.add_argument(
                "--broker-command",
                default="",
                metavar="COMMAND",
                help="with --start-broker: start this instead of 'python -m trinsq broker', "
                "e.g. /path/to/nsqd (split like a shell would)",
            )
            p.add_argument(
                "--broker-arg",
                action="append",
                default=[],
                metavar="FLAG",
                help="extra flag for the started broker, e.g. --broker-arg=--mem-queue-size=1000",
            )
        p.add_argument("--json", metavar="FILE", help="append one JSON line per report to FILE")
        p.add_argument("--procs", type=int, default=sc.CPUS, help="generator processes")
        p.add_argument("--size", type=int, default=200, help="message size in bytes")
        return p

    def batch(p: argparse.ArgumentParser) -> None:
        p.add_argument("--batch-size", type=int, default=200, help="messages per MPUB")

    def duration(p: argparse.ArgumentParser, default: float) -> None:
        p.add_argument("--duration", type=float, default=default, help="seconds")

    p = scenario("writer", "bench_writer: MPUB batches, one connection per process")
    batch(p)
    duration(p, 10)
    p.add_argument("--topic", default="sub_bench")
    p.add_argument("--messages", type=int, default=0, help="publish this many, not for --duration")

    p = scenario("reader", "bench_reader: SUB, RDY, FIN everything; one connection per process")
    duration(p, 10)
    p.add_argument("--rdy", type=int, default=2500)
    p.add_argument("--topic", default="sub_bench")
    p.add_argument("--channel", default="ch")
    p.add_argument("--idle-timeout", type=float, default=2.0, help="stop when drained this long")

    p = scenario("pair", "bench.sh: the writer, then the reader draining what it wrote")
    batch(p)
    duration(p, 10)
    p.add_argument("--rdy", type=int, default=2500)
    p.add_argument("--messages", type=int, default=0, help="publish this many, not for --duration")

    p = scenario("pub", "unbatched PUB from one process")
    duration(p, 10)
    p.add_argument(
        "--in-flight", type=_ints, default=[1], help="PUBs kept unanswered, e.g. 1,16 (1: wait)"
    )

    p = scenario("http-pub", "one message per HTTP POST /pub, each waiting for its OK")
    duration(p, 10)
    p.add_argument(
        "--connections", type=_ints, default=[1], help="keep-alive connections, e.g. 1,8"
    )

    p = scenario(
        "client-pub",
        "one producer per Python NSQ client (trinsq.client, pynsq, gnsq, ansq), one message per "
        "call from many concurrent callers, side by side",
    )
    duration(p, 5)
    p.add_argument("--callers", type=int, default=1000, help="concurrent publishing callers")
    p.add_argument("--rounds", type=int, default=1, help="runs per client, order rotated")
    p.add_argument(
        "--clients",
        type=lambda text: tuple(text.split(",")),
        default=sc.PUB_CLIENTS,
        help="comma-separated, of " + ",".join(sc.PUB_CLIENTS),
    )

    p = scenario(
        "client-sub",
        "one consumer per Python NSQ client (trinsq.client, pynsq, gnsq, ansq), max in flight "
        "2500, draining a pre-filled channel and finishing every message, side by side",
    )
    p.add_argument("--messages", type=int, default=200_000, help="messages pre-filled per run")
    p.add_argument("--rdy", type=int, default=2500, help="the consumer's max in flight")
    p.add_argument("--rounds", type=int, default=1, help="runs per client, order rotated")
    p.add_argument(
        "--clients",
        type=lambda text: tuple(text.split(",")),
        default=sc.SUB_CLIENTS,
        help="comma-separated, of " + ",".join(sc.SUB_CLIENTS),
    )

    p = scenario("consumers", "drain a pre-filled topic with 1, 10, 100 consumers on one channel")
    batch(p)
    duration(p, 60)
    p.add_argument("--counts", type=_ints, default=[1, 10, 100])
    p.add_argument("--messages", type=int, default=500_000, help="messages pre-filled per run")
    p.add_argument("--max-in-flight", type=int, default=2500, help="RDY spread over consumers")
    p.add_argument("--rdy", type=int, default=0, help="fixed RDY per consumer instead")

    p = scenario("latency", "publish-to-receive percentiles at a fixed offered rate")
    duration(p, 10)
    p.add_argument("--rate", type=float, default=10_000, help="messages per second offered")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds not measured")
    p.add_argument("--rdy", type=int, default=1000)
    p.add_argument(
        "--output-buffer-size",
        type=int,
        default=-1,
        help="IDENTIFY output_buffer_size (-1 unbuffered, 0 server default)",
    )

    p = scenario("rss-queued", "broker RSS with N messages queued and no consumers")
    batch(p)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--channels", type=int, default=1, help="channels on the topic")

    p = scenario(
        "mem-request",
        "broker RSS at peak and after the topic's deletion for the largest MPUB and /mpub",
    )
    p.add_argument(
        "--cases",
        type=lambda text: tuple(text.split(",")),
        default=sc.MEM_REQUEST_CASES,
        help="comma-separated, of " + ",".join(sc.MEM_REQUEST_CASES),
    )
    p.add_argument("--channels", type=int, default=1, help="channels made on each topic first")
    p.add_argument("--settle", type=float, default=5.0, help="seconds waited after the delete")
    p.add_argument("--messages", type=int, default=0, help="per request (0: the most allowed)")

    p = scenario("idle", "broker RSS and CPU while holding idle, heartbeating connections")
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--heartbeat-interval", type=int, default=5000, help="milliseconds")
    p.add_argument("--hold", type=float, default=30.0, help="seconds held and measured")
    p.set_defaults(procs=4)

    p = scenario(
        "fairness",
        "a PUB's round trip and 1 s-heartbeat clients while others send a max MPUB and a "
        "deflate NOP bomb, again and again",
    )
    duration(p, 10)
    p.add_argument("--mpub-count", type=int, default=1_048_575, help="one-byte messages per MPUB")
    p.add_argument("--bomb-bytes", type=int, default=1 << 20, help="NOPs per deflate bomb")
    p.add_argument("--heartbeat-clients", type=int, default=20)
    p.add_argument("--heartbeat-interval", type=int, default=1000, help="milliseconds")
    p.add_argument("--probe-interval", type=float, default=0.005, help="seconds between PUBs")

    p = scenario(
        "topics",
        "many topics x channels: creation rate, PUB round trips spread over them, GET /stats",
    )
    duration(p, 10)
    p.add_argument("--topics", type=_ints, default=[100, 1000], help="topic counts, grown in turn")
    p.add_argument("--channels", type=int, default=10, help="channels per topic")
    p.add_argument("--stats-requests", type=int, default=5, help="GET /stats?format=json timed")

    p = scenario("generator-check", "the generators alone against trivial servers", broker=False)
    batch(p)
    duration(p, 5)
    p.add_argument("--rdy", type=int, default=2500)
    p.add_argument("--in-flight", type=_ints, default=[1, 16])
    p.add_argument("--rate", type=float, default=10_000)

    p = scenario(
        "startup",
        "time --version, --help and launch to the first /ping OK (broker and registry)",
        broker=False,
    )
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--broker-command", help="default: trinsq broker (e.g. /path/to/nsqd)")
    p.add_argument("--registry-command", help="default: trinsq registry (e.g. nsqlookupd)")

    p = scenario(
        "lookup",
        "registry: time GET /lookup, /nodes, /topics, /channels with many producers registered",
        broker=False,
    )
    p.add_argument("--lookupd-tcp-address", default="127.0.0.1:4160", help="nsqlookupd TCP")
    p.add_argument("--lookupd-http-address", default="127.0.0.1:4161", help="nsqlookupd HTTP")
    p.add_argument("--registry-pid", type=int, help="PID of the registry, for its CPU figures")
    p.add_argument(
        "--start-registry",
        action="store_true",
        help="start 'python -m trinsq registry' (or --registry-command) on free 127.0.0.1 ports "
        "and stop it after",
    )
    p.add_argument("--registry-command", help="what --start-registry runs, e.g. /path/nsqlookupd")
    p.add_argument(
        "--registry-arg", action="append", default=[], metavar="FLAG", help="extra flag for it"
    )
    p.add_argument("--producers", type=int, default=500, help="fake nsqd registered")
    p.add_argument("--topics", type=int, default=1, help="topics each producer registers")
    p.add_argument("--channels", type=int, default=2, help="channels per topic")
    p.add_argument("--requests", type=int, default=1000, help="timed GETs per endpoint")
    p.add_argument("--warmup", type=int, default=50, help="untimed GETs per endpoint first")
    p.add_argument(
        "--endpoints",
        type=lambda text: tuple(text.split(",")),
        default=sc.LOOKUP_ENDPOINTS,
        help="comma-separated, of " + ",".join(sc.LOOKUP_ENDPOINTS),
    )

    p = scenario(
        "smoke", "every scenario for about a second against a started broker", broker=False
    )

    help = (
        "run a scenario alternately against two started brokers (this trinsq and, say, a Go "
        "nsqd binary) and print both sides' figures and their ratios"
    )
    p = subs.add_parser("compare", help=help, description=help)
    p.add_argument(
        "--reference",
        required=True,
        action="append",
        metavar="COMMAND",
        help="e.g. /path/to/nsqd (Go's); repeat to compare with several",
    )
    p.add_argument(
        "--subject",
        default="",
        metavar="COMMAND",
        help="default: python -m trinsq broker of this Python",
    )
    p.add_argument("--rounds", type=int, default=3, help="alternating runs per side")
    p.add_argument("--json", metavar="FILE", help="append one JSON line per figure to FILE")
    p.add_argument(
        "scenario_argv",
        nargs=argparse.REMAINDER,
        metavar="scenario [options]",
        help="the scenario to run and its options (--start-broker is added)",
    )
    return parser


@contextlib.contextmanager
def _registry(args: argparse.Namespace) -> Iterator[Target]:
    if args.start_registry or args.registry_command:
        command = shlex.split(args.registry_command or "")
        with started_registry(args.registry_arg, command=command) as target:
            print(f"# {target.describe()}", flush=True)
            yield target
        return
    target = Target(
        tcp=parse_address(args.lookupd_tcp_address),
        http=parse_address(args.lookupd_http_address),
        pid=args.registry_pid,
        role="registry",
    )
    print(f"# {target.describe()}", flush=True)
    yield target


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[Target]:
    if args.start_broker:
        command = shlex.split(args.broker_command)
        with started_broker(args.broker_arg, command=command) as target:
            print(f"# {target.describe()}", flush=True)
            yield target
        return
    http = parse_address(args.http_address) if args.http_address else None
    target = Target(tcp=parse_address(args.address), http=http, pid=args.broker_pid)
    print(f"# {target.describe()}", flush=True)
    yield target


def _run(args: argparse.Namespace, target: Target) -> list[Report]:
    a = args
    runs: dict[str, Callable[[], Report | list[Report]]] = {
        "writer": lambda: sc.writer(
            target, a.procs, a.size, a.batch_size, a.duration, a.topic, messages=a.messages
        ),
        "reader": lambda: sc.reader(
            target, a.procs, a.size, a.rdy, a.duration, a.topic, a.channel, 0, a.idle_timeout
        ),
        "pair": lambda: sc.pair(
            target, a.procs, a.size, a.batch_size, a.rdy, a.duration, messages=a.messages
        ),
        "pub": lambda: sc.pub(target, a.size, a.duration, a.in_flight),
        "http-pub": lambda: sc.http_pub(target, a.size, a.duration, a.connections),
        "client-pub": lambda: sc.client_pub(
            target, a.size, a.duration, a.callers, a.rounds, a.clients
        ),
        "client-sub": lambda: sc.client_sub(target, a.size, a.messages, a.rdy, a.rounds, a.clients),
        "consumers": lambda: sc.consumers(
            target,
            a.counts,
            a.messages,
            a.procs,
            a.size,
            a.batch_size,
            a.max_in_flight,
            a.rdy,
            a.duration,
        ),
        "latency": lambda: sc.latency(
            target, a.rate, a.size, a.warmup, a.duration, a.rdy, a.output_buffer_size
        ),
        "rss-queued": lambda: sc.rss_queued(
            target, a.messages, a.size, a.batch_size, a.procs, channels=a.channels
        ),
        "mem-request": lambda: sc.mem_request(
            target, a.cases, a.channels, a.settle, messages=a.messages
        ),
        "idle": lambda: sc.idle(target, a.connections, a.procs, a.heartbeat_interval, a.hold),
        "topics": lambda: sc.topics(
            target, a.topics, a.channels, a.size, a.duration, a.stats_requests
        ),
        "fairness": lambda: sc.fairness(
            target,
            a.duration,
            a.mpub_count,
            a.bomb_bytes,
            a.heartbeat_clients,
            a.heartbeat_interval,
            a.probe_interval,
        ),
    }
    out = runs[a.scenario]()
    return out if isinstance(out, list) else [out]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.scenario == "compare":
        from benchmarks._compare import compare

        return compare(args.scenario_argv, args.reference, args.subject, args.rounds, args.json)
    if args.scenario == "smoke":
        from benchmarks._smoke import smoke

        return smoke()
    info = machine()
    print("# " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    if args.scenario == "startup":
        from benchmarks._startup import startup

        reports = [startup(args.runs, args.broker_command, args.registry_command)]
    elif args.scenario == "lookup":
        with _registry(args) as target:
            reports = [
                sc.lookup(
                    target,
                    args.producers,
                    args.requests,
                    args.topics,
                    args.channels,
                    args.warmup,
                    args.endpoints,
                )
            ]
    elif args.scenario == "generator-check":
        reports = sc.generator_check(
            args.procs,
            args.size,
            args.batch_size,
            args.rdy,
            args.duration,
            args.in_flight,
            rate=args.rate,
        )
    else:
        with _target(args) as target:
            reports = _run(args, target)
    if args.json:
        with open(args.json, "a") as out:
            for report in reports:
                record: dict[str, Any] = {"scenario": report.scenario, **report.metrics}
                out.write(json.dumps(record, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

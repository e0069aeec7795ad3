"""``trinsq stat`` as a process against a running cluster: nsq_stat's table, exit statuses and
error lines."""

from __future__ import annotations

import itertools
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import trinsq
from tests.support import RawClient, run_trinsq, unused_port
from tests.tlsutil import make_certificates
from trinsq.common._httpclient import get

TOPIC, CHANNEL = "clicks", "counter"
HEADER = [
    "------rate------+----------------depth----------------+--------------metadata---------------",
    "ingress  egress |   total     mem    disk inflt   def |     req     t-o         msgs clients",
]
# 3 + 4 published, 2 of them in flight to the one subscriber, nothing moving between polls
STILL_ROW = (
    "      0       0 |       5       5       0     2     0 |       0       0            7       1"
)
LOG_LINE = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "


async def _stat(
    *flags: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return await run_trinsq("stat", *flags, timeout=timeout, env=env)


@asynccontextmanager
async def _busy_cluster() -> AsyncIterator[trinsq.RunningCluster]:
    """Two brokers carrying the channel: 3 messages on one, 4 on the other, and a subscriber
    on the first holding 2 in flight."""
    async with trinsq.open_cluster(brokers=2) as cluster:
        first, second = cluster.brokers
        subscriber = await RawClient.connect(first)
        publisher = await RawClient.connect(second)
        try:
            await subscriber.subscribe(TOPIC, CHANNEL)
            await publisher.subscribe(TOPIC, CHANNEL)  # makes the channel on the second
            for index in range(3):
                await subscriber.publish(TOPIC, b"first %d" % index)
            await subscriber.send(b"RDY 2\n")
            for _ in range(2):
                await subscriber.read_message()
            second_publisher = await RawClient.connect(second)
            for index in range(4):
                await second_publisher.publish(TOPIC, b"second %d" % index)
            await second_publisher.aclose()
            await publisher.aclose()  # the second broker keeps its channel, with no client
            await _registered(cluster)
            yield cluster
        finally:
            await subscriber.aclose()
            await publisher.aclose()


async def _registered(cluster: trinsq.RunningCluster) -> None:
    """Until the registry lists every broker as a producer of the topic (they register in the
    background)."""
    host, port = cluster.lookupd_http_addresses[0].rsplit(":", 1)
    with trio.fail_after(30):
        while True:
            answer = await get(host, int(port), f"/lookup?topic={TOPIC}")
            if answer.status == 200 and answer.body.count(b"http_port") == len(cluster.brokers):
                return
            await trio.sleep(0.02)


def _flags(*more: str) -> list[str]:
    return [f"--topic={TOPIC}", f"--channel={CHANNEL}", "--interval=200ms", *more]


async def test_stat_via_lookupd_prints_nsq_stats_table_then_exits_after_count() -> None:
    async with _busy_cluster() as cluster:
        lookupd = cluster.lookupd_http_addresses[0]
        result = await _stat(*_flags(f"--lookupd-http-address={lookupd}", "--count=2"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert result.stdout.decode().splitlines() == [*HEADER, STILL_ROW, STILL_ROW]


async def test_stat_via_nsqd_addresses_sums_the_nodes_that_carry_the_topic() -> None:
    # the bystander has no such topic: not a producer
    async with _busy_cluster() as cluster, trinsq.open_broker() as bystander:
        addresses = [broker.http_address for broker in [*cluster.brokers, bystander]]
        flags = [f"--nsqd-http-address={address}" for address in addresses]
        result = await _stat(*_flags(*flags, "--count=1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [*HEADER, STILL_ROW]


async def test_rates_follow_the_traffic_between_polls() -> None:
    """Live traffic: each row's ingress is its message count's growth over --interval."""
    async with trinsq.open_cluster(brokers=1) as cluster:
        client = await RawClient.connect(cluster.brokers[0])
        await client.subscribe(TOPIC, CHANNEL)
        await _registered(cluster)
        stat_done = trio.Event()

        async def publish_until_done() -> None:
            while not stat_done.is_set():
                await client.publish(TOPIC, b"tick")
                await trio.sleep(0.005)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish_until_done)
            flags = _flags(
                "--interval=300ms",
                f"--lookupd-http-address={cluster.lookupd_http_addresses[0]}",
                "--count=3",
            )
            result = await _stat(*flags)
            stat_done.set()
        await client.aclose()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[:2] == HEADER
    rows = [[int(field) for field in line.replace("|", " ").split()] for line in lines[2:]]
    assert len(rows) == 3
    message_counts = [row[9] for row in rows]
    assert message_counts == sorted(message_counts)
    assert message_counts[-1] > message_counts[0]
    for previous, row in itertools.pairwise(rows):
        grew = row[9] - previous[9]
        assert row[0] == int(grew / 0.3)  # ingress
        assert row[1] == int((grew - (row[2] - previous[2])) / 0.3)  # egress
    assert any(row[0] > 0 for row in rows)
    assert all(row[10] == 1 for row in rows)  # the one subscriber


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
async def test_stat_runs_until_a_signal_then_exits_0(stop_signal: signal.Signals) -> None:
    async with _busy_cluster() as cluster:
        flags = _flags(f"--lookupd-http-address={cluster.lookupd_http_addresses[0]}")
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "trinsq", "stat", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            with trio.fail_after(60):
                printed = b""
                while printed.count(b"\n") < 3:  # the header and a first row
                    chunk = await process.stdout.receive_some(4096)
                    assert chunk, "trinsq stat exited early"
                    printed += chunk
                process.send_signal(stop_signal)
                assert await process.wait() == 0
                assert await process.stderr.receive_some(4096) == b""
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdout.aclose()
            await process.stderr.aclose()
    assert printed.decode().splitlines()[:3] == [*HEADER, STILL_ROW]


async def test_missing_channel_is_fatal_as_in_nsq_stat() -> None:
    async with _busy_cluster() as cluster:
        lookupd = cluster.lookupd_http_addresses[0]
        result = await _stat(
            f"--topic={TOPIC}", "--channel=nope", f"--lookupd-http-address={lookupd}"
        )
    assert result.returncode == 1
    assert result.stdout == b""
    expected = (
        rf"{LOG_LINE}ERROR: failed to find channel\(nope\) in stats metadata for topic\({TOPIC}\)\n"
    )
    assert re.fullmatch(expected, result.stderr.decode())


async def test_unknown_topic_reports_the_registrys_answer() -> None:
    async with trinsq.open_registry() as registry:
        result = await _stat(
            "--topic=nope", "--channel=c", f"--lookupd-http-address={registry.http_address}"
        )
    assert result.returncode == 1
    expected = (
        rf"{LOG_LINE}ERROR: failed to get topic producers - failed to query any nsqlookupd: "
        r'got response 404 Not Found "\{\\"message\\":\\"TOPIC_NOT_FOUND\\"\}"' + "\n"
    )
    assert re.fullmatch(expected, result.stderr.decode()), result.stderr


async def test_topic_on_no_nsqd_reports_no_nsqd_answered() -> None:
    async with trinsq.open_broker() as broker:
        result = await _stat(
            "--topic=nope", "--channel=c", f"--nsqd-http-address={broker.http_address}"
        )
    assert result.returncode == 1
    expected = rf"{LOG_LINE}ERROR: failed to get nsqd stats - failed to query any nsqd: \n"
    assert re.fullmatch(expected, result.stderr.decode()), result.stderr


async def test_unreachable_registry_is_worded_as_gos_http_client_does() -> None:
    port = unused_port()
    result = await _stat("--topic=t", "--channel=c", f"--lookupd-http-address=127.0.0.1:{port}")
    assert result.returncode == 1
    expected = (
        rf"{LOG_LINE}ERROR: failed to get topic producers - failed to query any nsqlookupd: "
        rf'Get "http://127\.0\.0\.1:{port}/lookup\?topic=t": '
        rf"dial tcp 127\.0\.0\.1:{port}: connect: connection refused" + "\n"
    )
    assert re.fullmatch(expected, result.stderr.decode()), result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--topic=t"], "--topic and --channel are required"),
        (["--topic=t", "--channel=c", "--interval=0s"], "--interval should be positive"),
        (["--topic=t", "--channel=c", "--count=0"], "--count should be positive"),
        (["--topic=t", "--channel=c"], "--nsqd-http-address or --lookupd-http-address required"),
        (
            ["--topic=t", "--channel=c", "--nsqd-http-address=a:1", "--lookupd-http-address=b:2"],
            "use --nsqd-http-address or --lookupd-http-address not both",
        ),
        (
            ["--topic=t", "--channel=c", "--lookupd-http-address=http://b:2"],
            "--lookupd-http-address error - address should not contain scheme",
        ),
    ],
)
async def test_refused_values_are_nsq_stats_fatal_lines(flags: list[str], message: str) -> None:
    result = await _stat(*flags)
    assert result.returncode == 1
    assert re.fullmatch(f"{LOG_LINE}{re.escape(message)}\n", result.stderr.decode())


async def test_bad_flags_exit_2_and_version_exits_0() -> None:
    result = await _stat("--no-such-flag")
    assert (result.returncode, result.stderr) == (
        2,
        b"trinsq stat: flag provided but not defined: -no-such-flag\n",
    )
    result = await _stat("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(b"trinsq stat v")
    assert b"(nsq_stat v1.3.0 compatible)" in result.stdout


async def _https_post(
    address: tuple[str, int], target: str, data: bytes, context: ssl.SSLContext
) -> bytes:
    """One POST over HTTPS; the whole answer."""
    stream = await trio.open_ssl_over_tcp_stream(
        *address, ssl_context=context, https_compatible=True
    )
    async with stream:
        head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
        await stream.send_all(head.encode() + b"Connection: close\r\n\r\n" + data)
        answer = b""
        while chunk := await stream.receive_some(4096):
            answer += chunk
    return answer


async def test_a_broker_requiring_tls_is_asked_again_over_https(tmp_path: Path) -> None:
    """nsqd's 403 TLS_REQUIRED names its HTTPS port; nsq_stat's HTTP client follows it,
    trusting the system's roots (here the test CA, through SSL_CERT_FILE as Go reads it)."""
    certs = make_certificates(tmp_path)
    async with trinsq.open_broker(**certs.broker_options(tls_required="true")) as broker:
        https = broker.addresses.https
        assert https is not None
        target = f"/channel/create?topic={TOPIC}&channel={CHANNEL}"
        context = certs.client_context()
        with trio.fail_after(30):
            topic = f"/topic/create?topic={TOPIC}"
            assert b" 200 " in await _https_post(https, topic, b"", context)
            assert b" 200 " in await _https_post(https, target, b"", context)
            assert b" 200 " in await _https_post(https, f"/pub?topic={TOPIC}", b"x", context)
        flags = _flags(f"--nsqd-http-address={broker.http_address}", "--count=1")
        untrusted = await _stat(*flags)
        trusted = await _stat(*flags, env={"SSL_CERT_FILE": certs.ca_file})
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.decode().splitlines() == [
        *HEADER,
        "      0       0 |       1       1       0     0     0 |"
        "       0       0            1       0",
    ]
    assert untrusted.returncode == 1
    url = rf"https://127\.0\.0\.1:{https[1]}/stats\?format=json&topic={TOPIC}&include_clients=false"
    expected = (
        rf"{LOG_LINE}ERROR: failed to get topic producers - failed to query any nsqd: "
        rf'Get "{url}": tls: failed to verify certificate: .+\n'
    )
    assert re.fullmatch(expected, untrusted.stderr.decode()), untrusted.stderr

"""``trinsq tail`` as a process against running brokers: nsq_tail's output, -n, topics, lookupd
discovery, signals, and its flag errors and exit statuses."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

import trinsq
from tests.support import unused_port
from tests.tlsutil import make_certificates
from trinsq.client import open_producer
from trinsq.common._httpclient import get

TOPIC = "tailed"
LOG_LINE = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
TIMEOUT = 60  # generous: a busy shared machine


def _command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "trinsq", "tail", *flags]


async def _tail(*flags: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(TIMEOUT):
        return await trio.run_process(
            _command(*flags), capture_stdout=True, capture_stderr=True, check=False
        )


async def _publish(address: str, topic: str, bodies: Sequence[bytes]) -> None:
    async with open_producer(address) as producer:
        for body in bodies:
            await producer.publish(topic, body)


async def _stats(broker: trinsq.RunningBroker, topic: str) -> dict[str, Any]:
    """The topic's entry of the broker's /stats."""
    assert broker.http_address is not None
    host, port = broker.http_address.rsplit(":", 1)
    answer = await get(host, int(port), f"/stats?format=json&topic={topic}")
    assert answer.status == 200
    (entry,) = [t for t in json.loads(answer.body)["topics"] if t["topic_name"] == topic]
    return dict(entry)


async def _channel(broker: trinsq.RunningBroker, topic: str, channel: str) -> dict[str, Any]:
    channels = (await _stats(broker, topic))["channels"]
    (entry,) = [c for c in channels if c["channel_name"] == channel]
    return dict(entry)


class _Running:
    """A ``trinsq tail`` process whose stdout is read line by line."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    async def line(self) -> bytes:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            assert chunk, f"stdout ended; read so far: {self._buffer!r}"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    async def stop(self, signum: int) -> tuple[int, bytes]:
        """Send ``signum``; the exit status and the rest of stdout."""
        assert self.process.stdout is not None
        self.process.send_signal(signum)
        rest = self._buffer
        while chunk := await self.process.stdout.receive_some(65536):
            rest += chunk
        return await self.process.wait(), rest


async def _start(*flags: str) -> _Running:
    process = await trio.lowlevel.open_process(
        _command(*flags), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    return _Running(process)


async def test_n_shows_exactly_n_bodies_verbatim_finishes_them_and_exits_0() -> None:
    bodies = [b"caf\xc3\xa9 \x00raw\tbytes", b"second", b"with\nnewline", b"fourth", b"fifth"]
    async with trinsq.open_broker() as broker:
        await _publish(broker.tcp_address, TOPIC, bodies)
        result = await _tail(
            f"--topic={TOPIC}",
            "--channel=keep",
            f"--nsqd-tcp-address={broker.tcp_address}",
            "-n",
            "3",
        )
        channel = await _channel(broker, TOPIC, "keep")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"".join(body + b"\n" for body in bodies[:3])
    # the three shown were finished; the two not shown wait in the channel
    assert (channel["depth"], channel["in_flight_count"], channel["timeout_count"]) == (2, 0, 0)
    assert re.search(rb"Adding consumer for topic: tailed\n", result.stderr)


async def test_print_topic_prefixes_each_line_with_the_topic() -> None:
    async with trinsq.open_broker() as broker:
        await _publish(broker.tcp_address, TOPIC, [b"one", b"two"])
        result = await _tail(
            f"--topic={TOPIC}", f"--nsqd-tcp-address={broker.tcp_address}", "--n=2", "--print-topic"
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"tailed | one\ntailed | two\n"


async def test_two_topics_one_consumer_each_on_the_same_ephemeral_channel() -> None:
    async with trinsq.open_broker() as broker:
        await _publish(broker.tcp_address, "left", [b"from left"])
        await _publish(broker.tcp_address, "right", [b"from right"])
        tail = await _start(
            "--topic=left",
            "--topic=right",
            f"--nsqd-tcp-address={broker.tcp_address}",
            "--print-topic",
        )
        with trio.fail_after(TIMEOUT):
            lines = {await tail.line(), await tail.line()}
            left = (await _stats(broker, "left"))["channels"]
            right = (await _stats(broker, "right"))["channels"]
            status, rest = await tail.stop(signal.SIGTERM)
    assert lines == {b"left | from left", b"right | from right"}
    assert (status, rest) == (0, b"")
    # nsq_tail's default channel: tail + six digits, ephemeral, the same for every topic
    assert [c["channel_name"] for c in left] == [c["channel_name"] for c in right]
    assert re.fullmatch(r"tail\d{6}#ephemeral", left[0]["channel_name"])
    assert [c["client_count"] for c in left + right] == [1, 1]


async def test_lookupd_discovers_every_broker_carrying_the_topic() -> None:
    async with trinsq.open_cluster(brokers=2) as cluster:
        for index, broker in enumerate(cluster.brokers):
            await _publish(broker.tcp_address, TOPIC, [b"from broker %d" % index])
        await _registered(cluster, TOPIC)
        result = await _tail(
            f"--topic={TOPIC}",
            f"--lookupd-http-address={cluster.lookupd_http_addresses[0]}",
            "-n=2",
        )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [b"from broker 0", b"from broker 1"]


async def _registered(cluster: trinsq.RunningCluster, topic: str) -> None:
    """Until the registry lists every broker as a producer of ``topic``."""
    host, port = cluster.lookupd_http_addresses[0].rsplit(":", 1)
    with trio.fail_after(TIMEOUT):
        while True:
            answer = await get(host, int(port), f"/lookup?topic={topic}")
            if answer.status == 200 and answer.body.count(b"http_port") == len(cluster.brokers):
                return
            await trio.sleep(0.02)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_exits_0_with_what_was_shown_finished(stop_signal: signal.Signals) -> None:
    async with trinsq.open_broker() as broker:
        await _publish(broker.tcp_address, TOPIC, [b"only"])
        tail = await _start(
            f"--topic={TOPIC}", "--channel=keep", f"--nsqd-tcp-address={broker.tcp_address}"
        )
        with trio.fail_after(TIMEOUT):
            assert await tail.line() == b"only"
            status, rest = await tail.stop(stop_signal)
        channel = await _channel(broker, TOPIC, "keep")
    assert (status, rest) == (0, b"")
    assert (channel["depth"], channel["in_flight_count"], channel["requeue_count"]) == (0, 0, 0)
    assert channel["clients"] == []


async def test_consumer_opt_reaches_identify_and_user_agent_is_nsq_tails() -> None:
    async with trinsq.open_broker() as broker:
        await _publish(broker.tcp_address, TOPIC, [b"x"])
        tail = await _start(
            f"--topic={TOPIC}",
            "--channel=keep",
            f"--nsqd-tcp-address={broker.tcp_address}",
            "--consumer-opt=snappy",
            "--consumer-opt=client_id,tailer",
            "--consumer-opt=max_in_flight,7",  # --max-in-flight wins, as in nsq_tail
            "--max-in-flight=3",
        )
        with trio.fail_after(TIMEOUT):
            assert await tail.line() == b"x"
            (client,) = (await _channel(broker, TOPIC, "keep"))["clients"]
            status, _ = await tail.stop(signal.SIGTERM)
    assert status == 0
    assert (client["client_id"], client["snappy"], client["ready_count"]) == ("tailer", True, 3)
    assert client["user_agent"].startswith("nsq_tail/1.3.0 ")


async def test_an_unreachable_nsqd_is_fatal_with_status_1() -> None:
    result = await _tail(f"--topic={TOPIC}", f"--nsqd-tcp-address=127.0.0.1:{unused_port()}")
    assert result.returncode == 1
    assert result.stdout == b""
    assert re.fullmatch(
        LOG_LINE + r"Adding consumer for topic: tailed\n" + LOG_LINE + r".*127\.0\.0\.1:\d+.*\n",
        result.stderr.decode(),
    )


@pytest.mark.parametrize(
    ("flags", "status", "error"),
    [
        ([], 1, LOG_LINE + "--nsqd-tcp-address or --lookupd-http-address required"),
        (
            ["--nsqd-tcp-address=a:1", "--lookupd-http-address=b:2"],
            1,
            LOG_LINE + "use --nsqd-tcp-address or --lookupd-http-address not both",
        ),
        (["--nsqd-tcp-address=a:1"], 1, LOG_LINE + "--topic required"),
        (["--nsqd-tcp-address=a:1", "--topic=a,b"], 1, LOG_LINE + "invalid topic name"),
        (
            ["--nsqd-tcp-address=a:1", "--topic=t", "--channel=no good"],
            1,
            LOG_LINE + "invalid channel name",
        ),
        (
            ["--nsqd-tcp-address=a:1", "--topic=t", "--max-in-flight=-1"],
            1,
            LOG_LINE + r"invalid MaxInFlight ! -1 < 0",
        ),
        (
            ["--consumer-opt=bogus,1"],
            2,
            r'trinsq tail: invalid value "bogus,1" for flag -consumer-opt: invalid option bogus',
        ),
        (
            ["--consumer-opt=read_timeout,10ms"],
            2,
            r'trinsq tail: invalid value "read_timeout,10ms" for flag -consumer-opt: '
            r"invalid read_timeout ! 10ms < 100ms",
        ),
        (
            ["--consumer-opt=deflate_level,x"],
            2,
            r'trinsq tail: invalid value "deflate_level,x" for flag -consumer-opt: '
            r'failed to coerce option deflate_level \(x\) - strconv.ParseInt: parsing "x": '
            r"invalid syntax",
        ),
        (
            ["--consumer-opt=local_addr,127.0.0.1:0"],
            2,
            r'trinsq tail: invalid value "local_addr,127.0.0.1:0" for flag -consumer-opt: '
            r"option local_addr is not supported by trinsq",
        ),
        (["--n=x"], 2, r'trinsq tail: invalid value "x" for flag -n: parse error'),
        (["--bogus"], 2, r"trinsq tail: flag provided but not defined: -bogus"),
    ],
)
async def test_flag_errors_have_nsq_tails_words_and_status(
    flags: list[str], status: int, error: str
) -> None:
    result = await _tail(*flags)
    assert result.returncode == status
    assert result.stdout == b""
    assert re.fullmatch(error + r"\n", result.stderr.decode()), result.stderr


async def test_version() -> None:
    result = await _tail("--version")
    assert result.returncode == 0
    assert re.fullmatch(rb"trinsq tail v\S+ \(nsq_tail v1\.3\.0 compatible\)\n", result.stdout), (
        result.stdout
    )


async def test_a_closed_stdout_is_fatal_and_the_unshown_message_requeued() -> None:
    async with trinsq.open_broker() as broker:
        await _publish(broker.tcp_address, TOPIC, [b"first"])
        process = await trio.lowlevel.open_process(
            _command(
                f"--topic={TOPIC}", "--channel=keep", f"--nsqd-tcp-address={broker.tcp_address}"
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        tail = _Running(process)
        with trio.fail_after(TIMEOUT):
            assert await tail.line() == b"first"
            assert process.stdout is not None
            assert process.stderr is not None
            await process.stdout.aclose()  # the reader goes away, as `| head -1` does
            await _publish(broker.tcp_address, TOPIC, [b"second"])
            errors = b""
            while chunk := await process.stderr.receive_some(65536):
                errors += chunk
            status = await process.wait()
        channel = await _channel(broker, TOPIC, "keep")
    assert status == 1
    assert re.search(
        LOG_LINE + r"ERROR: failed to write to os.Stdout - write /dev/stdout: broken pipe\n",
        errors.decode(),
    )
    assert (channel["depth"], channel["in_flight_count"], channel["requeue_count"]) == (1, 0, 1)


async def test_tls_through_consumer_opt(tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path)
    async with trinsq.open_broker(**certificates.broker_options()) as broker:
        await _publish(broker.tcp_address, TOPIC, [b"secret"])
        tail = await _start(
            f"--topic={TOPIC}",
            "--channel=keep",
            f"--nsqd-tcp-address={broker.tcp_address}",
            "--consumer-opt=tls_v1",
            f"--consumer-opt=tls_root_ca_file,{certificates.ca_file}",
        )
        with trio.fail_after(TIMEOUT):
            assert await tail.line() == b"secret"
            (client,) = (await _channel(broker, TOPIC, "keep"))["clients"]
            status, _ = await tail.stop(signal.SIGTERM)
    assert status == 0
    assert client["tls"] is True

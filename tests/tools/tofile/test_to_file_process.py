"""``trinsq to-file`` as a process against a running broker or cluster: nsq_to_file's file names
and contents (plain and gzip), rotation by size, by time while idle and on SIGHUP, the exit on
SIGTERM with every message finished once and on disk, topic discovery through a registry."""

from __future__ import annotations

import gzip
import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

import trinsq
from tests.support import RawClient
from trinsq.common._httpclient import get_json

HOST = socket.gethostname().split(".")[0]
LOG_LINE = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
HOUR = r"\d{4}-\d\d-\d\d_\d\d"


class ToFile:
    """A running ``trinsq to-file`` and the file its stderr goes to."""

    def __init__(self, process: trio.Process, log: Path) -> None:
        self.process = process
        self.log = log

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        with trio.fail_after(40):
            return await self.process.wait()

    @property
    def stderr(self) -> str:
        return self.log.read_text()


@asynccontextmanager
async def _to_file(tmp_path: Path, *flags: str) -> AsyncIterator[ToFile]:
    log = tmp_path / "to_file.log"
    with log.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "trinsq", "to-file", *flags], stderr=stderr
        )
    try:
        yield ToFile(process, log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _until(condition: Callable[[], Any], what: str, timeout: float = 40) -> None:
    """Poll ``condition`` (sync or async) until true: the process's progress shows only in the
    broker's stats and on disk. ``what`` names the wait in a timeout's message."""
    with trio.move_on_after(timeout):
        while True:
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await trio.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {what}")


async def _channel(http_address: str, topic: str) -> Mapping[str, Any] | None:
    """The nsq_to_file channel's stats on one broker, None while it does not exist."""
    host, port = http_address.rsplit(":", 1)
    stats = await get_json(host, int(port), f"/stats?format=json&topic={topic}")
    for topic_stats in stats["topics"]:
        for channel in topic_stats["channels"]:
            if channel["channel_name"] == "nsq_to_file":
                return channel  # type: ignore[no-any-return]
    return None


def _all_delivered(http_address: str, topic: str) -> Callable[[], Any]:
    async def check() -> bool:
        channel = await _channel(http_address, topic)
        return channel is not None and channel["depth"] == 0 and channel["client_count"] == 1

    return check


def _all_finished(http_address: str, topic: str) -> Callable[[], Any]:
    async def check() -> bool:
        channel = await _channel(http_address, topic)
        return channel is not None and (channel["depth"], channel["in_flight_count"]) == (0, 0)

    return check


async def _publish(broker: trinsq.RunningBroker, topic: str, bodies: list[bytes]) -> None:
    client = await RawClient.connect(broker)
    try:
        for data in bodies:
            await client.publish(topic, data)
    finally:
        await client.aclose()


async def _finished_once(http_address: str, topic: str, count: int) -> None:
    """Every message of ``topic`` was finished once: none left, none in flight, none requeued
    or timed out (a second FIN of one message would have been refused, not counted)."""
    channel = await _channel(http_address, topic)
    assert channel is not None
    fields = ("message_count", "depth", "in_flight_count", "requeue_count", "timeout_count")
    assert [channel[field] for field in fields] == [count, 0, 0, 0, 0]


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.is_file())


def _written(directory: Path) -> list[tuple[str, bytes]]:
    """Each file's name (its hour as HOUR) and contents."""
    return [
        (re.sub(HOUR, "HOUR", name), (directory / name).read_bytes()) for name in _files(directory)
    ]


def _lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


async def test_each_topic_goes_to_its_file_and_sigterm_finishes_every_message_once(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    clicks = [b"click %d" % index for index in range(50)]
    views = [b"view %d" % index for index in range(20)]
    async with trinsq.open_broker() as broker:
        http = broker.http_address
        assert http is not None
        await _publish(broker, "clicks", clicks)
        await _publish(broker, "views", views)
        flags = ["--topic=clicks", "--topic", "views", f"--nsqd-tcp-address={broker.tcp_address}"]
        async with _to_file(tmp_path, *flags, f"--output-dir={out}") as to_file:
            # the default --max-in-flight (200) and --sync-interval (30s): held until the stop
            await _until(_all_delivered(http, "clicks"), "clicks delivered")
            await _until(_all_delivered(http, "views"), "views delivered")
            assert await to_file.stop() == 0, to_file.stderr
        await _finished_once(http, "clicks", len(clicks))
        await _finished_once(http, "views", len(views))
    names = _files(out)
    assert [re.sub(HOUR, "HOUR", name) for name in names] == [
        f"clicks.{HOST}.HOUR.log",
        f"views.{HOST}.HOUR.log",
    ]
    assert Counter(_lines((out / names[0]).read_bytes())) == Counter(clicks)
    assert Counter(_lines((out / names[1]).read_bytes())) == Counter(views)
    log = to_file.stderr
    assert f"INFO: [clicks/nsq_to_file] opening {out / names[0]}\n" in log
    assert re.search(r"^\[nsq_to_file\] " + LOG_LINE[:-1] + r"\.\d{6} INFO: ", log, re.M)
    assert "Traceback" not in log


async def test_gzip_rotates_by_size_moves_from_the_work_dir_and_sighup_closes_the_file(
    tmp_path: Path,
) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    bodies = [b"message number %03d" % index for index in range(60)]  # 20 bytes with "\n"
    async with trinsq.open_broker() as broker:
        http = broker.http_address
        assert http is not None
        await _publish(broker, "clicks", bodies)
        flags = [
            "--topic=clicks",
            f"--nsqd-tcp-address={broker.tcp_address}",
            f"--output-dir={out}",
            f"--work-dir={work}",
            "--gzip",
            "--rotate-size=200",
            "--max-in-flight=10",
            "--sync-interval=200ms",
            "--skip-empty-files",
        ]
        async with _to_file(tmp_path, *flags) as to_file:
            await _until(_all_finished(http, "clicks"), "all finished")
            # 11 messages pass 200 bytes: 5 full files moved out, the 6th still being written
            assert len(_files(out)) == 5
            assert len(_files(work)) == 1
            to_file.process.send_signal(signal.SIGHUP)
            await _until(lambda: not _files(work), "the file closed and moved on SIGHUP")
            assert len(_files(out)) == 6
            assert await to_file.stop() == 0, to_file.stderr
        await _finished_once(http, "clicks", len(bodies))
    names = _files(out)
    assert [re.sub(HOUR, "HOUR", name) for name in names] == [
        f"clicks.{HOST}-{rev:06d}.HOUR.log.gz" for rev in range(6)
    ]
    contents = [gzip.decompress((out / name).read_bytes()) for name in names]
    assert [len(_lines(content)) for content in contents] == [11, 11, 11, 11, 11, 5]
    assert Counter(line for content in contents for line in _lines(content)) == Counter(bodies)
    assert _files(work) == []


async def test_rotate_interval_closes_an_idle_file_and_the_next_message_opens_the_next(
    tmp_path: Path,
) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    async with trinsq.open_broker() as broker:
        flags = [
            "--topic=clicks",
            f"--nsqd-tcp-address={broker.tcp_address}",
            f"--output-dir={out}",
            f"--work-dir={work}",
            "--rotate-interval=500ms",
            "--sync-interval=100ms",
            "--skip-empty-files",
        ]
        async with _to_file(tmp_path, *flags) as to_file:
            await _publish(broker, "clicks", [b"first"])
            await _until(lambda: out.exists() and len(_files(out)) == 1, "rotated while idle")
            await _publish(broker, "clicks", [b"second"])
            await _until(lambda: len(_files(out)) == 2, "the second file rotated")
            assert _files(work) == []  # --skip-empty-files: no empty file opened meanwhile
            assert await to_file.stop() == 0, to_file.stderr
    assert _written(out) == [
        (f"clicks.{HOST}-000000.HOUR.log", b"first\n"),
        (f"clicks.{HOST}-000001.HOUR.log", b"second\n"),
    ]
    assert "since last open, rotating..." in to_file.stderr


async def test_topic_pattern_discovers_matching_topics_through_the_registry(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    async with trinsq.open_cluster(brokers=1) as cluster:
        broker = cluster.brokers[0]
        http = broker.http_address
        assert http is not None
        for topic in ("t1", "t2", "other"):
            await _publish(broker, topic, [f"{topic} message".encode()])
        registry = cluster.lookupd_http_addresses[0]
        host, port = registry.rsplit(":", 1)

        async def registered() -> bool:
            answer = await get_json(host, int(port), "/topics")
            return sorted(answer["topics"]) == ["other", "t1", "t2"]

        await _until(registered, "the topics registered")
        flags = [
            f"--lookupd-http-address={registry}",
            "--topic-pattern=^t[0-9]",
            "--topic-refresh=200ms",
            f"--output-dir={out}",
        ]
        async with _to_file(tmp_path, *flags) as to_file:
            await _until(_all_delivered(http, "t1"), "t1 delivered")
            await _until(_all_delivered(http, "t2"), "t2 delivered")
            assert await to_file.stop(signal.SIGINT) == 0, to_file.stderr
        await _finished_once(http, "t1", 1)
        await _finished_once(http, "t2", 1)
        assert await _channel(http, "other") is None
    assert _written(out) == [
        (f"t1.{HOST}.HOUR.log", b"t1 message\n"),
        (f"t2.{HOST}.HOUR.log", b"t2 message\n"),
    ]
    assert "WARN: skipping topic other (doesn't match pattern ^t[0-9])\n" in to_file.stderr


async def test_a_disk_failure_is_fatal_and_leaves_the_message_unfinished(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    async with trinsq.open_broker() as broker:
        http = broker.http_address
        assert http is not None
        await _publish(broker, "clicks", [b"lost?"])
        flags = ["--topic=clicks", f"--nsqd-tcp-address={broker.tcp_address}"]
        async with _to_file(tmp_path, *flags, f"--output-dir={blocker}/out") as to_file:
            with trio.fail_after(40):
                assert await to_file.process.wait() == 1
        channel = await _channel(http, "clicks")
        assert channel is not None
        # never finished: still in flight until nsqd's timeout gives it to another consumer
        assert (channel["depth"], channel["in_flight_count"]) == (0, 1)
    assert re.search(
        r" FATAL: \[clicks/nsq_to_file\] writing message to disk: .*Not a directory",
        to_file.stderr,
    )
    assert "Traceback" not in to_file.stderr


async def test_a_topic_that_cannot_start_is_logged_and_left_out(tmp_path: Path) -> None:
    # go-nsq refuses the config: nsq_to_file logs it and runs on until told to stop
    flags = ["--topic=clicks", "--nsqd-tcp-address=127.0.0.1:4150", "--max-in-flight=-1"]
    async with _to_file(tmp_path, *flags, f"--output-dir={tmp_path}") as to_file:
        await _until(lambda: "couldn't create logger" in to_file.stderr, "the refusal logged")
        assert await to_file.stop() == 0, to_file.stderr
    assert re.search(
        r" ERROR: couldn't create logger for new topic clicks: max_in_flight must be in ",
        to_file.stderr,
    )
    assert "Traceback" not in to_file.stderr


async def _run(*flags: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(40):
        return await trio.run_process(
            [sys.executable, "-m", "trinsq", "to-file", *flags],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ},
        )


async def test_refusals_are_nsq_to_files_fatal_lines_and_bad_flags_usage_errors() -> None:
    result = await _run("--topic=clicks")
    assert result.returncode == 1
    assert re.fullmatch(
        LOG_LINE + r"--nsqd-tcp-address or --lookupd-http-address required\.\n",
        result.stderr.decode(),
    )
    result = await _run("--nsqd-tcp-address=127.0.0.1:4150", "--gzip-level=10", "--topic=a")
    assert result.returncode == 1
    assert result.stderr.decode().endswith(" invalid --gzip-level value (10), should be 1-9\n")
    result = await _run("--nsqd-tcp-address=127.0.0.1:4150", "--topic=a", "--sync-interval=0s")
    assert result.returncode == 1
    assert result.stderr.decode().endswith(" --sync-interval should be positive\n")
    result = await _run("--rotate-size=big")
    assert result.returncode == 2
    assert result.stderr.decode().startswith('trinsq to-file: invalid value "big" for flag')
    result = await _run("--version")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("trinsq to-file v")

"""``trinsq pub`` as a process (``python -m trinsq pub``), stdin piped, against trinsq's broker
in-process: what each broker got, exit statuses, error lines, signals, --rate."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.support import run_trinsq, unused_port
from tests.tlsutil import make_certificates
from tests.tools.pub.support import TOPIC, received
from trinsq import open_broker

LOG_LINE = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "


async def _pub(*flags: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return await run_trinsq("pub", *flags, stdin=stdin)


async def test_every_line_reaches_every_broker_exactly_once() -> None:
    lines = [b"line %d" % index for index in range(500)]
    stdin = b"\n".join(lines[:250]) + b"\n\n\n" + b"\n".join(lines[250:])  # no final newline
    async with (
        open_broker() as first,
        open_broker() as second,
        received(first) as got_first,
        received(second) as got_second,
    ):
        done = await _pub(
            f"--topic={TOPIC}",
            f"--nsqd-tcp-address={first.tcp_address},{second.tcp_address}",
            "--nsqd-tcp-address",
            first.tcp_address,  # given twice: still one producer, as to_nsq's map of them
            stdin=stdin,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
        for got in (got_first, got_second):
            assert await got.bodies(len(lines)) == lines
            await got.nothing_else()


async def test_delimiter_and_binary_bodies() -> None:
    async with open_broker() as broker, received(broker) as got:
        done = await _pub(
            "-topic",
            TOPIC,
            "-nsqd-tcp-address",
            broker.tcp_address,
            "-delimiter=,",
            "--producer-opt=snappy",
            stdin=b"one,two\nstill two,\xff\x00,,",
        )
        assert (done.returncode, done.stderr) == (0, b"")
        assert await got.bodies(3) == [b"one", b"two\nstill two", b"\xff\x00"]
        await got.nothing_else()


async def test_empty_input_publishes_nothing_and_exits_0() -> None:
    async with open_broker() as broker, received(broker) as got:
        done = await _pub(f"--topic={TOPIC}", f"--nsqd-tcp-address={broker.tcp_address}", stdin=b"")
        assert (done.returncode, done.stderr) == (0, b"")
        await got.nothing_else()


async def test_a_refused_publish_is_a_fatal_log_line_with_status_1() -> None:
    async with open_broker() as broker:
        done = await _pub(
            "--topic=bad topic!", f"--nsqd-tcp-address={broker.tcp_address}", stdin=b"x\n"
        )
    assert done.returncode == 1
    err = done.stderr.decode()
    assert re.fullmatch(LOG_LINE + r"E_BAD_TOPIC .*bad topic!.*\n", err), err


async def test_an_unreachable_nsqd_is_a_fatal_log_line_with_status_1() -> None:
    address = f"127.0.0.1:{unused_port()}"
    done = await _pub("--topic=t", f"--nsqd-tcp-address={address}", stdin=b"x\n")
    assert done.returncode == 1
    err = done.stderr.decode()
    assert re.fullmatch(LOG_LINE + r"no nsqd reachable: " + re.escape(address) + r".*\n", err), err


async def test_a_bad_flag_exits_2_before_reading() -> None:
    done = await _pub("--topic=t", "--producer-opt=bogus,1", stdin=b"x\n")
    assert done.returncode == 2
    assert done.stderr == (
        b'trinsq pub: invalid value "bogus,1" for flag -producer-opt: invalid option bogus\n'
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_ends_it_cleanly_after_publishing_what_it_read(signum: int) -> None:
    async with open_broker() as broker, received(broker) as got:
        process = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "trinsq",
                "pub",
                f"--topic={TOPIC}",
                f"--nsqd-tcp-address={broker.tcp_address}",
            ],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stderr is not None
        try:
            await process.stdin.send_all(b"first\nsecond\nhalf a li")
            assert await got.bodies(2) == [b"first", b"second"]
            process.send_signal(signum)  # stdin stays open: only the signal ends it
            with trio.fail_after(30):
                status = await process.wait()
            err = await process.stderr.receive_some(65536)
        finally:
            if process.returncode is None:
                process.kill()
            await process.stdin.aclose()
        assert (status, err) == (0, b"")
        await got.nothing_else()


async def test_rate_throttles_publishing() -> None:
    count, rate = 9, 4
    async with open_broker() as broker, received(broker) as got:
        done = await _pub(
            f"--topic={TOPIC}",
            f"--nsqd-tcp-address={broker.tcp_address}",
            f"--rate={rate}",
            stdin=b"".join(b"m%d\n" % index for index in range(count)),
        )
        assert done.returncode == 0
        assert re.fullmatch(
            LOG_LINE + rf"Throttling messages rate to max:{rate}/second\n", done.stderr.decode()
        )
        stamps = []
        for _ in range(count):
            timestamp, _, message_id, _ = await got.client.read_message(30)
            await got.client.send(b"FIN " + message_id + b"\n")
            stamps.append(timestamp)
    # the first goes at once, each of the other 8 a quarter of a second after the one before
    spread = (stamps[-1] - stamps[0]) / 1e9
    assert spread >= (count - 1) / rate * 0.9, spread


def test_a_closed_stdin_is_a_fatal_log_line_with_status_1() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trinsq", "pub", "--topic=t", "--nsqd-tcp-address=127.0.0.1:1"],
        preexec_fn=lambda: os.close(0),  # the child's stdin, before exec
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    err = done.stderr.decode()
    assert re.fullmatch(LOG_LINE + "read /dev/stdin: bad file descriptor\n", err), err


async def test_producer_opts_negotiate_tls_and_deflate_with_a_broker_requiring_tls(
    tmp_path: Path,
) -> None:
    certs = make_certificates(tmp_path)
    async with open_broker(**certs.broker_options(tls_required="true")) as broker:
        flags = [f"--topic={TOPIC}", f"--nsqd-tcp-address={broker.tcp_address}"]
        plain = await _pub(*flags, stdin=b"refused\n")
        done = await _pub(
            *flags,
            "--producer-opt=tls_v1",
            f"--producer-opt=tls_root_ca_file,{certs.ca_file}",
            "--producer-opt=deflate",
            "--producer-opt=deflate_level,9",
            stdin=b"a\nb\nc\n",
        )
        assert broker.topics[TOPIC].message_count == 3
    assert plain.returncode == 1
    assert re.fullmatch(LOG_LINE + r"E_INVALID .*TLS.*\n", plain.stderr.decode()), plain.stderr
    assert (done.returncode, done.stderr) == (0, b"")

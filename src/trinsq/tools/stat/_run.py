"""``trinsq stat``'s I/O: polls the nodes over HTTP on trio, prints the table, stops on a signal.

Everything decided is decided sans-IO (:mod:`._clusterinfo`, :mod:`._report`); this layer only
asks every address at once, words transport failures as Go's HTTP client does, sleeps
``--interval`` between polls as nsq_stat does (so a poll's own time adds to the period), and
exits 0 on SIGHUP, SIGINT or SIGTERM, or after ``--count`` rows. A failed poll is fatal, as in
nsq_stat: a timestamped line on stderr and exit status 1.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO, TypeVar
from urllib.parse import urlsplit

import trio

from trinsq.common._httpclient import HttpClientError, HttpTransportError, get
from trinsq.protocol import JsonError, decode_json
from trinsq.tools._golog import go_log_line
from trinsq.tools.stat._clusterinfo import (
    INFO_TARGET,
    ClusterInfoError,
    Failure,
    channel_stats_target,
    channel_totals,
    http_address,
    https_port,
    lookup_producers,
    lookup_target,
    nsqd_producer,
    nsqd_producers,
    status_error_text,
    topic_in_stats,
    topic_stats_target,
)
from trinsq.tools.stat._flags import StatOptions
from trinsq.tools.stat._report import ChannelTotals, StatReport

__all__ = ["run_stat"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def _errno_of(error: BaseException) -> int | None:
    """The errno behind an error, looking through trio's "all attempts failed" group."""
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno
    cause = error.__cause__
    if isinstance(cause, BaseExceptionGroup):
        for member in cause.exceptions:
            found = _errno_of(member)
            if found is not None:
                return found
    return None


def _transport_text(error: HttpTransportError, host: str, port: int) -> str:
    """What Go's net/http says after ``Get "url": `` for the same failure."""
    cause = error.error
    if error.stage == "dial":
        if isinstance(cause, socket.gaierror):
            return f"dial tcp: lookup {host}: no such host"
        if isinstance(cause, trio.TooSlowError):
            return f"dial tcp {host}:{port}: i/o timeout"
        refusal = cause.__cause__
        if isinstance(refusal, ssl.SSLCertVerificationError):
            return f"tls: failed to verify certificate: {refusal.verify_message}"
        if isinstance(refusal, ssl.SSLError):
            return f"remote error: tls: {refusal.reason or refusal}"
        code = _errno_of(cause)
        reason = os.strerror(code).lower() if code is not None else "connection failed"
        return f"dial tcp {host}:{port}: connect: {reason}"
    if isinstance(cause, trio.TooSlowError):
        return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    code = _errno_of(cause)
    if code is not None and code != errno.EPIPE:
        return f"read tcp {host}:{port}: {os.strerror(code).lower()}"
    return "EOF"  # closed before a complete answer


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """What Go's HTTP client trusts with no TLS config: the system's roots (and, as in Go,
    the certificate file named by ``SSL_CERT_FILE``)."""
    return ssl.create_default_context()


async def _ask(address: str, target: str, options: StatOptions) -> object:
    """GET ``target`` from ``address``: the decoded document, or the :class:`Failure`.

    A 403 naming an ``https_port`` (nsqd's TLS_REQUIRED) is asked again over HTTPS there, as
    nsq's http_api client does.
    """
    scheme = "http"
    while True:
        url = f"{scheme}://{address}{target}"
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            return Failure(f'parse "{url}": invalid port after host')
        try:
            response = await get(
                host,
                port,
                target,
                connect_timeout=options.http_client_connect_timeout,
                request_timeout=options.http_client_request_timeout,
                tls=_tls_context() if scheme == "https" else None,
            )
        except HttpTransportError as error:
            return Failure(f'Get "{url}": {_transport_text(error, host, port)}')
        except HttpClientError as error:  # an answer too large to hold
            return Failure(str(error))
        if response.status == 403 and scheme == "http":
            secure_port = https_port(response.body)
            if isinstance(secure_port, Failure):
                return secure_port
            scheme, address = "https", http_address(host, secure_port)
            continue
        if response.status != 200:
            return Failure(status_error_text(response.status, response.reason, response.body))
        try:
            return decode_json(response.body)
        except JsonError as error:
            return Failure(str(error))


async def _each(items: Sequence[_T], ask: Callable[[_T], Awaitable[_R]]) -> list[_R]:
    """``ask`` about every item at once; the answers in the items' order."""
    answers: dict[int, _R] = {}

    async def one(index: int, item: _T) -> None:
        answers[index] = await ask(item)

    async with trio.open_nursery() as nursery:
        for index, item in enumerate(items):
            nursery.start_soon(one, index, item)
    return [answers[index] for index in range(len(items))]


async def _nsqd_outcome(address: str, options: StatOptions) -> str | Failure | None:
    """Whether one nsqd carries the topic, and its producer address if so."""
    stats = await _ask(address, topic_stats_target(options.topic), options)
    if isinstance(stats, Failure):
        return stats
    try:
        if not topic_in_stats(stats, options.topic):
            return None
        info = await _ask(address, INFO_TARGET, options)
        return info if isinstance(info, Failure) else nsqd_producer(info, address)
    except ClusterInfoError as error:
        return Failure(str(error))


async def _producers(options: StatOptions) -> list[str]:
    if options.lookupd_http_address:
        target = lookup_target(options.topic)
        answers = await _each(
            options.lookupd_http_address, lambda address: _ask(address, target, options)
        )
        return lookup_producers(answers)
    outcomes = await _each(
        options.nsqd_http_address, lambda address: _nsqd_outcome(address, options)
    )
    return nsqd_producers(outcomes)


async def _poll(options: StatOptions) -> ChannelTotals | str:
    """The channel's totals now, or nsq_stat's fatal error text."""
    try:
        producers = await _producers(options)
    except ClusterInfoError as error:
        return f"ERROR: failed to get topic producers - {error}"
    target = channel_stats_target(options.topic, options.channel)
    answers = await _each(producers, lambda address: _ask(address, target, options))
    try:
        totals = channel_totals(answers, options.topic, options.channel)
    except ClusterInfoError as error:
        return f"ERROR: failed to get nsqd stats - {error}"
    if totals is None:
        return (
            f"ERROR: failed to find channel({options.channel}) in stats metadata for "
            f"topic({options.topic})"
        )
    return totals


def _write(stream: TextIO, text: str) -> bool:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # a broken pipe or a closed stream
        return False
    return True


async def _stat_loop(options: StatOptions, out: TextIO, err: TextIO) -> int:
    report = StatReport(options.interval)
    polls = 0
    # nsq_stat's loop runs count + 1 polls: the first only sets the baseline
    while options.count is None or polls <= options.count:
        totals = await _poll(options)
        if isinstance(totals, str):
            _write(err, go_log_line(totals) + "\n")
            return 1
        if not _write(out, report.poll(totals)):
            return 1  # the reader of the table went away: nothing more to say
        polls += 1
        await trio.sleep(options.interval)
    return 0


async def _main(options: StatOptions, out: TextIO, err: TextIO) -> int:
    status = 0
    with trio.open_signal_receiver(signal.SIGHUP, signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
            status = await _stat_loop(options, out, err)
            nursery.cancel_scope.cancel()
    return status


def run_stat(options: StatOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print nsq_stat's table until a signal or ``--count`` reports; the exit status.

    Returns:
        0 after a signal or the last report, 1 when a poll fails (reported on ``err``).
    """
    return trio.run(_main, options, out or sys.stdout, err or sys.stderr)

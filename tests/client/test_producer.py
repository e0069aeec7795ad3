"""The producer (trinsq/client/_producer.py) over real sockets against trinsq's broker: each
command, typed errors per call, pipelining of many concurrent publishers on one connection,
failover between brokers, reconnect with backoff, and the negotiated layers."""

from __future__ import annotations

import errno
import os
import socket
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import nsq
import pytest
import trio

from tests.broker.tcp.test_auth import PUBLISH_P, AuthServer, grant
from tests.client.support import fake_nsqd, mutual_tls, until
from tests.interop.pynsq_harness import Session, pynsq_against
from tests.tlsutil import CLIENT_COMMON_NAME, Certificates
from trinsq import RunningBroker, open_broker
from trinsq.client import (
    AuthFailedError,
    BadBodyError,
    BadMessageError,
    BadTopicError,
    ClientConfig,
    ConnectError,
    ConnectionClosedError,
    DPubFailedError,
    InvalidError,
    MPubFailedError,
    Producer,
    PubFailedError,
    UnauthorizedError,
    open_producer,
)
from trinsq.client._connection import WRITE_BUFFER_LIMIT, open_connection
from trinsq.client._protocol import (
    Event,
    MessageFrame,
    encode_fin,
    encode_rdy,
    encode_sub,
)
from trinsq.protocol import OK_FRAME, encode_error
from trinsq.protocol import ProtocolError as ServerError


def fast_retry(**options: Any) -> ClientConfig:
    """A config that tries again after 0.05 s, then at most every 0.2 s."""
    return ClientConfig(backoff_multiplier=0.05, max_backoff_duration=0.2, **options)


async def consume(broker: RunningBroker, topic: str, count: int) -> list[bytes]:
    """Subscribe a fresh channel to ``topic`` and return the bodies of ``count`` messages."""
    bodies: list[bytes] = []
    got_all = trio.Event()

    def on_event(event: Event) -> None:
        if isinstance(event, MessageFrame):
            bodies.append(event.body)
            conn.send_nowait(encode_fin(event.id))
            if len(bodies) >= count:
                got_all.set()

    async with open_connection(broker.tcp_address, ClientConfig(), on_event) as conn:
        conn.send_nowait(encode_sub(topic, "check"))
        conn.send_nowait(encode_rdy(2500))
        with trio.fail_after(30):
            await got_all.wait()
    return bodies


def topic_count(broker: RunningBroker, topic: str) -> int:
    found = broker.topics.get(topic)
    return 0 if found is None else int(found.message_count)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def publish_or_record(producer: Producer, body: bytes, failures: list[BaseException]) -> None:
    """Publish ``body`` to "t"; a ConnectionClosedError is recorded in ``failures``."""
    try:
        await producer.publish("t", body)
    except ConnectionClosedError as error:
        failures.append(error)


def connection_of(producer: Producer) -> Any:
    link = producer._link
    assert link is not None
    return link.connection


async def test_publish_multi_publish_and_deferred_publish() -> None:
    async with open_broker() as broker, open_producer(broker.tcp_address) as producer:
        await producer.publish("t", b"one")
        await producer.multi_publish("t", [b"two", b"three", b"four"])
        await producer.deferred_publish("t", b"later", 0.2)
        assert topic_count(broker, "t") == 5
        assert sorted(await consume(broker, "t", 5)) == sorted(
            [b"one", b"two", b"three", b"four", b"later"]
        )
        assert producer.address == broker.tcp_address
        assert producer.connects == 1


async def test_errors_found_before_sending_leave_the_connection_alone() -> None:
    async with open_broker() as broker, open_producer(broker.tcp_address) as producer:
        await producer.publish("t", b"first")
        with pytest.raises(BadTopicError, match="E_BAD_TOPIC PUB topic name"):
            await producer.publish("no spaces", b"x")
        with pytest.raises(BadMessageError, match="E_BAD_MESSAGE"):
            await producer.publish("t", b"")
        with pytest.raises(BadBodyError, match="message count 0"):
            await producer.multi_publish("t", [])
        with pytest.raises(InvalidError, match="DPUB timeout"):
            await producer.deferred_publish("t", b"x", -1)
        await producer.publish("t", b"second")
        assert producer.connects == 1
        assert topic_count(broker, "t") == 2


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (
            lambda p: p.publish("t", b"x" * 200),
            BadMessageError,
            "E_BAD_MESSAGE PUB message too big",
        ),
        (
            lambda p: p.multi_publish("t", [b"x" * 90] * 20),
            BadBodyError,
            "E_BAD_BODY MPUB body too big",
        ),
        (lambda p: p.deferred_publish("t", b"x", 7200), InvalidError, "E_INVALID DPUB timeout"),
    ],
)
async def test_errors_from_nsqd_fail_their_call_and_the_producer_reconnects(
    call: Any, error: type[Exception], text: str
) -> None:
    async with (
        open_broker(max_msg_size=100, max_body_size=1000) as broker,
        open_producer(broker.tcp_address) as producer,
    ):
        with pytest.raises(error) as raised:
            await call(producer)
        assert str(raised.value).startswith(text)
        # nsqd closed the connection after the fatal error; the next call gets a new one.
        await producer.publish("t", b"fine")
        assert producer.connects == 2
        assert topic_count(broker, "t") == 1


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda p: p.publish("t", b"x"), PubFailedError, "E_PUB_FAILED PUB failed"),
        (lambda p: p.multi_publish("t", [b"x"]), MPubFailedError, "E_MPUB_FAILED MPUB failed"),
        (lambda p: p.deferred_publish("t", b"x", 1), DPubFailedError, "E_DPUB_FAILED DPUB"),
    ],
)
async def test_storage_failures_are_typed_per_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: Any, error: type[Exception], text: str
) -> None:
    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "no space left on device")

    async with (
        open_broker(data_path=str(tmp_path), mem_queue_size=0) as broker,
        open_producer(broker.tcp_address) as producer,
    ):
        await producer.publish("t", b"stored")
        monkeypatch.setattr(os, "write", disk_full)  # the broker's disk queue writes
        with pytest.raises(error) as raised:
            await call(producer)
        assert str(raised.value).startswith(text)
        assert isinstance(raised.value, PubFailedError)
        monkeypatch.undo()
        await producer.publish("t", b"stored again")
        assert await consume(broker, "t", 2) == [b"stored", b"stored again"]
        assert broker.topics["t"].channels["check"].depth == 0


async def test_a_fatal_error_fails_its_call_and_the_calls_behind_it_see_the_loss() -> None:
    answers = [OK_FRAME, encode_error(ServerError("E_BAD_MESSAGE", "PUB message too big 200"))]
    async with fake_nsqd(answers, after=3, close=True) as nsqd, open_producer(nsqd.address) as p:
        results: dict[int, BaseException | None] = {}

        async def publish(index: int) -> None:
            try:
                await p.publish("t", b"message %d" % index)
            except Exception as error:
                results[index] = error
            else:
                results[index] = None

        async with trio.open_nursery() as nursery:
            for index in range(3):
                nursery.start_soon(publish, index)
        # nsqd answers in order: each answer went to the call it belongs to.
        order = [int(command.body.split()[1]) for command in nsqd.commands]  # type: ignore[union-attr]
        first, second, third = order
        assert results[first] is None
        assert isinstance(results[second], BadMessageError)
        assert str(results[second]) == "E_BAD_MESSAGE PUB message too big 200"
        assert type(results[third]) is ConnectionClosedError
        assert str(results[third]) == f"{nsqd.address}: closed after E_BAD_MESSAGE"


async def test_a_cancelled_call_keeps_the_answers_in_line() -> None:
    answers = [OK_FRAME, encode_error(ServerError("E_BAD_MESSAGE", "for the second call"))]
    async with fake_nsqd(answers, after=2, close=False) as nsqd, open_producer(nsqd.address) as p:
        await p.ping()
        with trio.move_on_after(30) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(p.publish, "t", b"given up")
                await nsqd.received.wait()
                nursery.cancel_scope.cancel()  # the first call gives up before its answer
        assert not scope.cancelled_caught
        # The first answer still belongs to the abandoned call, the second to this one.
        with pytest.raises(BadMessageError, match="for the second call"):
            await p.publish("t", b"second")
        assert [c.body for c in nsqd.commands] == [b"given up", b"second"]  # type: ignore[union-attr]


async def test_leaving_the_block_fails_calls_still_waiting() -> None:
    async with fake_nsqd([], after=1, close=False) as nsqd:
        failures: list[BaseException] = []
        async with trio.open_nursery() as nursery, open_producer(nsqd.address) as producer:
            nursery.start_soon(publish_or_record, producer, b"never answered", failures)
            await nsqd.received.wait()
        assert len(failures) == 1


async def test_a_thousand_concurrent_publishers_share_one_connection() -> None:
    count = 1000
    async with open_broker() as broker, open_producer(broker.tcp_address) as producer:
        await producer.publish("warm", b"up")
        writes_before = connection_of(producer).writes
        answered = 0

        async def publish(index: int) -> None:
            nonlocal answered
            await producer.publish("t", b"message %d" % index)
            answered += 1

        async with trio.open_nursery() as nursery:
            for index in range(count):
                nursery.start_soon(publish, index)
        assert answered == count
        assert producer.connects == 1
        writes = connection_of(producer).writes - writes_before
        assert writes < count // 10, f"{writes} writes for {count} concurrent publishes"
        assert topic_count(broker, "t") == count
        (client,) = broker.server.clients.values()
        assert client.pub_counts == {"warm": 1, "t": count}
        bodies = await consume(broker, "t", count)
        assert sorted(bodies) == sorted(b"message %d" % index for index in range(count))


async def test_failover_when_a_broker_stops() -> None:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(open_broker())
        second = await stack.enter_async_context(open_broker())
        addresses = [first.tcp_address, second.tcp_address]
        config = fast_retry()
        producer = await stack.enter_async_context(open_producer(addresses, config))
        await producer.publish("t", b"to the first")
        assert producer.address == first.tcp_address
        first.request_shutdown()
        await until(second, lambda: producer.address == second.tcp_address, what="failover")
        await producer.publish("t", b"to the second")
        assert topic_count(first, "t") == 1
        assert topic_count(second, "t") == 1
        assert producer.connects == 2


async def test_addresses_are_checked_when_the_producer_opens() -> None:
    with pytest.raises(ValueError, match="host:port"):
        async with open_producer(["127.0.0.1:4150", "no-port"]):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="at least one"):
        async with open_producer([]):
            pass  # pragma: no cover


async def test_an_unreachable_first_address_is_skipped() -> None:
    down = f"127.0.0.1:{free_port()}"
    async with open_broker() as broker, open_producer([down, broker.tcp_address]) as producer:
        await producer.publish("t", b"x")
        assert producer.address == broker.tcp_address
        assert topic_count(broker, "t") == 1


async def test_reconnect_with_backoff_after_a_broker_restart() -> None:
    address = f"127.0.0.1:{free_port()}"
    config = fast_retry()
    async with open_producer(address, config) as producer:
        with pytest.raises(ConnectError, match="no nsqd reachable"):
            await producer.ping()
        with pytest.raises(ConnectError):  # backing off: fails at once
            await producer.publish("t", b"nobody there")
        async with open_broker(tcp_address=address) as broker:
            await until(broker, lambda: producer.address == address, what="the reconnect")
            await producer.publish("t", b"there now")
            assert topic_count(broker, "t") == 1
        await until(broker, lambda: producer.address is None, what="the loss")
        async with open_broker(tcp_address=address) as broker:
            await until(broker, lambda: producer.address == address, what="the reconnect")
            await producer.multi_publish("t", [b"back", b"again"])
            assert topic_count(broker, "t") == 2
        assert producer.connects == 2


@pytest.mark.parametrize(
    ("options", "layers"),
    [
        ({"snappy": True}, (False, True, False)),
        ({"deflate": True}, (False, False, True)),
    ],
)
async def test_compressed_producer(options: dict[str, Any], layers: tuple[bool, ...]) -> None:
    async with (
        open_broker() as broker,
        open_producer(broker.tcp_address, ClientConfig(**options)) as producer,
    ):
        await producer.publish("t", b"x" * 10_000)
        await producer.multi_publish("t", [b"y" * 1000] * 50)
        (client,) = broker.server.clients.values()
        assert (client.tls, client.snappy, client.deflate) == layers
        assert sorted(await consume(broker, "t", 51)) == [b"x" * 10_000] + [b"y" * 1000] * 50


async def test_tls_producer_with_a_client_certificate(certs: Certificates) -> None:
    options, config = mutual_tls(certs)
    async with open_broker(**options) as broker, open_producer(broker.tcp_address, config) as p:
        await p.publish("t", b"secret")
        (client,) = broker.server.clients.values()
        assert (client.tls, client.tls_common_name) == (True, CLIENT_COMMON_NAME)
        assert topic_count(broker, "t") == 1
        # Without a client certificate the broker refuses the handshake.
        no_cert = ClientConfig(tls=True, tls_ca_file=certs.ca_file)
        async with open_producer(broker.tcp_address, no_cert) as refused:
            with pytest.raises(ConnectError):
                await refused.publish("t", b"x")


async def test_a_missing_certificate_file_fails_when_the_producer_opens(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    config = ClientConfig(tls=True, tls_cert_file=missing, tls_key_file=missing)
    with pytest.raises(FileNotFoundError):
        async with open_producer("127.0.0.1:4150", config):
            pass  # pragma: no cover


async def test_auth_producer(authd: AuthServer) -> None:
    authd.replies["s3cret"] = grant(PUBLISH_P)
    async with open_broker(auth_http_addresses=[authd.address]) as broker:
        config = fast_retry(auth_secret="s3cret")
        async with open_producer(broker.tcp_address, config) as producer:
            await producer.publish("p1", b"allowed")
            with pytest.raises(UnauthorizedError, match="E_UNAUTHORIZED"):
                await producer.publish("q", b"not allowed")
            await producer.publish("p2", b"allowed again")
            assert (topic_count(broker, "p1"), topic_count(broker, "p2")) == (1, 1)
            assert "q" not in broker.topics
        wrong = fast_retry(auth_secret="wrong")
        async with open_producer(broker.tcp_address, wrong) as producer:
            with pytest.raises(AuthFailedError, match="E_AUTH_FAILED"):
                await producer.ping()
            with pytest.raises(AuthFailedError):  # while backing off, at once
                await producer.publish("p1", b"x")


async def test_heartbeats_answered_by_a_producer() -> None:
    async with (
        open_broker() as broker,
        open_producer(broker.tcp_address, ClientConfig(heartbeat_interval=1)) as producer,
    ):
        await producer.publish("t", b"x")
        conn = connection_of(producer)
        await until(broker, lambda: conn.heartbeats >= 4, what="four heartbeats")
        await producer.publish("t", b"y")
        assert producer.connects == 1
        assert topic_count(broker, "t") == 2


async def test_leaving_the_block_fails_calls_waiting_for_a_connection() -> None:
    with socket.socket() as listener:  # a backlog that never completes a connection
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = "{}:{}".format(*listener.getsockname())
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(listener.getsockname())
            failures: list[BaseException] = []
            async with (
                trio.open_nursery() as nursery,
                open_producer(address, ClientConfig(dial_timeout=600)) as producer,
            ):
                nursery.start_soon(publish_or_record, producer, b"no connection yet", failures)
                await trio.testing.wait_all_tasks_blocked()
            assert [str(error) for error in failures] == ["the producer is closed"]
        finally:
            for filler in fillers:
                filler.close()


async def test_a_stalled_nsqd_holds_publishers_back_then_times_out() -> None:
    body = b"x" * 65536
    async with fake_nsqd([], after=0, close=False) as nsqd, open_producer(nsqd.address) as p:
        failures: list[BaseException] = []
        async with trio.open_nursery() as nursery:
            for _ in range(300):  # 19.7 MB: more than loopback's socket buffers hold
                nursery.start_soon(publish_or_record, p, body, failures)
            await trio.testing.wait_all_tasks_blocked()
            # The client holds at most the writer's batch and a queue of its limit (each
            # with the one command that crossed it); the other publishers wait to queue.
            link = p._link
            assert link is not None
            queued = len(link.pending) * (len(body) + 10)
            assert 0 < queued <= 2 * (WRITE_BUFFER_LIMIT + len(body) + 10)
            assert connection_of(p)._protocol.output_size <= WRITE_BUFFER_LIMIT + len(body) + 10
        # The writer could not finish within write_timeout: every call failed, none hung.
        # Calls still waiting to queue when a connection ended (nothing of theirs sent) were
        # tried once more on the next connection.
        assert len(failures) == 300
        assert any("write_timeout" in str(error) for error in failures)
        assert p.connects >= 2


@pytest.mark.interop
async def test_pynsq_reads_what_the_producer_published() -> None:
    bodies = [b"pub %d" % n for n in range(50)] + [b"mpub %d" % n for n in range(50)]
    async with open_broker() as broker:
        config = ClientConfig(deflate=True)
        async with (
            open_producer(broker.tcp_address, config) as producer,
            trio.open_nursery() as nursery,
        ):
            for body in bodies[:50]:
                nursery.start_soon(producer.publish, "cross", body)
            nursery.start_soon(producer.multi_publish, "cross", bodies[50:])

        async def scenario(s: Session) -> list[bytes]:
            got: list[bytes] = []

            def handler(message: nsq.Message) -> bool:
                got.append(message.body)
                s.notify()
                return True

            await s.subscribed(s.reader("cross", "c", handler))
            await s.until(lambda: len(got) >= len(bodies), what="every message")
            return got

        async with pynsq_against(broker) as pynsq:
            got = await pynsq.run(scenario)
    assert sorted(got) == sorted(bodies)

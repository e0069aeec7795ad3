"""Registering with nsqlookupd (Go or trinsq): the broker's lookup loop (nsqd/lookup.go).

One task per ``--lookupd-tcp-address``. Each connects, IDENTIFYs with the broker's addresses,
REGISTERs every topic and channel, then sends the graph's changes as they happen and a PING
every 15 s, reconnecting with backoff (and registering everything again) after any failure.
A registry that is down or slow only delays its own task: the broker never waits for it.

Beyond nsqd, each ping round also re-REGISTERs topics that saw traffic since the last round,
so a topic deleted on the registry while it is still live on this broker comes back within one
interval, and the registry never keeps a stale view for long (nsq issue #1009).

New topics: as nsqd does, a topic created at runtime holds its messages until every registry
this broker is connected to has been asked for the topic's channels (``GET /channels``) and
those channels exist, so no channel known elsewhere in the cluster misses a message.
"""

from __future__ import annotations

import logging
import math
import socket
from collections import deque
from typing import Any, Final

import trio

from ..._version import NSQ_COMPAT_VERSION
from ...common._httpclient import HttpClientError, get_json
from ...common._logging import error_text
from ...protocol import JsonError, decode_json, is_ephemeral
from ...protocol._v1 import (
    V1ResponseDecoder,
    encode_identify,
    encode_ping,
    encode_register,
    encode_unregister,
    v1_magic,
)
from ..config._options import split_host_port
from ..core._services import BrokerServices
from ..core._topic import Topic

__all__ = ["LookupService"]

log = logging.getLogger("trinsq.broker")

DIAL_TIMEOUT: Final = 1.0  # nsqd's lookup peers: 1 s to connect, 1 s per command
COMMAND_TIMEOUT: Final = 1.0
MAX_BACKOFF: Final = 15.0
# A peer that cannot keep up drops its backlog and re-registers everything instead.
MAX_QUEUED: Final = 10_000


class _LookupFailed(Exception):
    """The registry answered with an error or something unreadable."""


class LookupPeer:
    """The broker's connection to one registry."""

    def __init__(self, service: LookupService, address: str) -> None:
        self.service = service
        self.address = address
        self.host, self.port = split_host_port(address, "lookupd_tcp_address")
        self.info: dict[str, Any] | None = None  # the registry's IDENTIFY reply
        self.cancel_scope = trio.CancelScope()
        self._queue: deque[bytes] = deque()
        self._wakeup = trio.Event()
        self._resync = False
        self._published: dict[str, int] = {}  # topic -> message count at the last ping round

    @property
    def http_address(self) -> tuple[str, int] | None:
        """Where to ask this registry for channels (its broadcast address and HTTP port)."""
        if not self.info:
            return None
        host = self.info.get("broadcast_address") or self.host
        port = self.info.get("http_port")
        return (str(host), port) if isinstance(port, int) and port > 0 else None

    def send(self, command: bytes) -> None:
        """Queue a command for this registry (dropped while disconnected: a reconnect
        registers everything anyway)."""
        if self.info is None:
            return
        if len(self._queue) >= MAX_QUEUED:
            self._queue.clear()
            self._resync = True
        else:
            self._queue.append(command)
        self._wakeup.set()

    async def run(self) -> None:
        """Stay registered until cancelled.

        Cancellation: the only way this returns.
        """
        backoff = 1.0
        with self.cancel_scope:
            while True:
                try:
                    await self._session()
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as error:
                    log.error("LOOKUPD(%s): connection lost - %s", self.address, error_text(error))
                except trio.TooSlowError:
                    log.error("LOOKUPD(%s): timed out", self.address)
                except (_LookupFailed, ValueError) as error:
                    log.error("LOOKUPD(%s): %s", self.address, error_text(error))
                else:
                    backoff = 1.0
                if self.info is not None:
                    # The session was registered: this is a new outage, not a retry of one
                    # still failing, so its first retry comes soon again.
                    backoff = 1.0
                self.info = None
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _session(self) -> None:
        with trio.fail_after(DIAL_TIMEOUT):
            stream = await trio.open_tcp_stream(self.host, self.port)
        async with stream:
            decoder = V1ResponseDecoder(self.service.server.options.max_body_size)
            reply = await self._exchange(
                stream, decoder, [v1_magic() + encode_identify(self.service.identity())]
            )
            if reply[0] == b"E_INVALID":
                raise _LookupFailed("lookupd returned E_INVALID")
            try:
                info = decode_json(reply[0])
            except JsonError:
                info = None
            if not isinstance(info, dict):
                text = reply[0].decode("utf-8", "replace")
                raise _LookupFailed(f"parsing response - {text}")
            # nsqd's %+v of its peerInfo struct
            log.info(
                "LOOKUPD(%s): peer info {TCPPort:%s HTTPPort:%s Version:%s BroadcastAddress:%s}",
                self.address,
                info.get("tcp_port", 0),
                info.get("http_port", 0),
                info.get("version", ""),
                info.get("broadcast_address", ""),
            )
            self.info = info
            self._queue.clear()
            await self._exchange(stream, decoder, self.service.registrations())
            self._published = self.service.published_counts()
            interval = self.service.ping_interval
            next_ping = trio.current_time() + interval
            while True:
                if not self._queue and not self._resync:
                    with trio.move_on_at(next_ping):
                        await self._wakeup.wait()
                self._wakeup = trio.Event()
                if self._resync:
                    self._resync = False
                    self._queue.clear()
                    self._queue.extend(self.service.registrations())
                batch = list(self._queue)
                self._queue.clear()
                if trio.current_time() >= next_ping:
                    batch += self._refresh_active_topics()
                    batch.append(encode_ping())
                    next_ping = trio.current_time() + interval
                if batch:
                    await self._exchange(stream, decoder, batch)

    def _refresh_active_topics(self) -> list[bytes]:
        current = self.service.published_counts()
        active = [name for name, count in current.items() if self._published.get(name) != count]
        self._published = current
        return self.service.registrations(active)

    async def _exchange(
        self, stream: trio.SocketStream, decoder: V1ResponseDecoder, commands: list[bytes]
    ) -> list[bytes]:
        """Send commands together and read one response each; anything but OK (or the
        IDENTIFY JSON) is a failure, as nsqd treats it."""
        with trio.fail_after(COMMAND_TIMEOUT * max(1, len(commands) / 100)):
            await stream.send_all(b"".join(commands))
            replies: list[bytes] = []
            while len(replies) < len(commands):
                reply = decoder.next_response()
                if reply is None:
                    data = await stream.receive_some(65536)
                    if not data:
                        raise trio.BrokenResourceError("lookupd closed the connection")
                    decoder.feed(data)
                    continue
                if reply.startswith(b"E_") and reply != b"E_INVALID":
                    raise _LookupFailed(reply.decode("utf-8", "replace"))
                replies.append(reply)
        return replies


class LookupService:
    """Every registry connection of one broker, and the graph events they announce."""

    def __init__(self, server: BrokerServices) -> None:
        self.server = server
        self.peers: dict[str, LookupPeer] = {}
        self.ping_interval = server.options.lookup_ping_interval
        self._nursery: trio.Nursery | None = None

    # -- what the registries are told ------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """nsqd's IDENTIFY body (a Go map: keys come out sorted)."""
        options = self.server.options
        addresses = self.server.addresses
        tcp_port = options.broadcast_tcp_port or (addresses.tcp[1] if addresses else 0)
        http_port = options.broadcast_http_port or (
            addresses.http[1] if addresses and addresses.http else 0
        )
        return {
            "broadcast_address": options.broadcast_address,
            "hostname": socket.gethostname(),
            "http_port": http_port,
            "tcp_port": tcp_port,
            "version": NSQ_COMPAT_VERSION,
        }

    def registrations(self, names: list[str] | None = None) -> list[bytes]:
        """REGISTER commands for the given topics (default: all), a channel-less topic as
        ``REGISTER t`` and otherwise one ``REGISTER t c`` per channel, as nsqd sends them."""
        topics = self.server.core.topics
        commands: list[bytes] = []
        for name in topics if names is None else names:
            topic = topics.get(name)
            if topic is None:
                continue
            if not topic.channels:
                commands.append(encode_register(name))
            commands.extend(encode_register(name, channel) for channel in topic.channels)
        return commands

    def published_counts(self) -> dict[str, int]:
        return {name: topic.message_count for name, topic in self.server.core.topics.items()}

    def _broadcast(self, command: bytes) -> None:
        for peer in self.peers.values():
            peer.send(command)

    # -- GraphEvents -----------------------------------------------------------------------------

    def topic_created(self, topic: Topic) -> None:
        self._broadcast(encode_register(topic.name))
        if self._nursery is not None and any(p.http_address for p in self.peers.values()):
            topic.started = False  # held until the registries' channels exist (nsqd GetTopic)
            self._nursery.start_soon(self._precreate_channels, topic)

    def topic_deleted(self, topic_name: str) -> None:
        self._broadcast(encode_unregister(topic_name))

    def channel_created(self, topic_name: str, channel_name: str) -> None:
        self._broadcast(encode_register(topic_name, channel_name))

    def channel_deleted(self, topic_name: str, channel_name: str) -> None:
        self._broadcast(encode_unregister(topic_name, channel_name))

    async def _precreate_channels(self, topic: Topic) -> None:
        options = self.server.options
        addresses = [peer.http_address for peer in self.peers.values() if peer.http_address]
        found: set[str] = set()

        async def ask(host: str, port: int) -> None:
            try:
                reply = await get_json(
                    host,
                    port,
                    f"/channels?topic={topic.name}",
                    connect_timeout=options.http_client_connect_timeout,
                    request_timeout=options.http_client_request_timeout,
                )
            except HttpClientError as error:
                log.warning("failed to query nsqlookupd for channels of %s - %s", topic.name, error)
                return
            channels = reply.get("channels") if isinstance(reply, dict) else None
            found.update(c for c in channels or [] if isinstance(c, str))

        async with trio.open_nursery() as queries:
            for host, port in addresses:
                queries.start_soon(ask, host, port)
        self.server.core.add_channels(topic, (n for n in sorted(found) if not is_ephemeral(n)))

    # -- running -------------------------------------------------------------------------------

    def set_addresses(self, addresses: list[str]) -> None:
        """Connect to new registries and leave ones no longer listed (PUT /config)."""
        for address in list(self.peers):
            if address not in addresses:
                self.peers.pop(address).cancel_scope.cancel()
        for address in addresses:
            if address not in self.peers and self._nursery is not None:
                peer = LookupPeer(self, address)
                self.peers[address] = peer
                self._nursery.start_soon(peer.run)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve every configured registry until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.set_addresses(list(self.server.options.lookupd_tcp_addresses))
            task_status.started()
            await trio.sleep(math.inf)

"""The registration database of ``trinsq registry`` (nsqlookupd/registration_db.go).

A map from :class:`Registration` keys (``client``, ``topic`` or ``channel``) to the
producers registered under them, keyed by peer id (the nsqd connection's remote
``ip:port``). Every producer of one peer shares that peer's :class:`PeerInfo`, so a PING
refreshes it everywhere; tombstones belong to one (registration, producer) pair. Pure data:
no trio, no I/O; both clocks are injectable.

Semantics kept from nsqlookupd v1.3.0:

* ``add_producer`` is idempotent: an existing entry, and its tombstone, stays.
* ``remove_producer`` never deletes the key. A disconnect (``remove_peer``) leaves every
  key in place, even emptied ones.
* ``UNREGISTER`` deletes an ``#ephemeral`` channel (or topic) registration as soon as its
  last producer has gone (lookup_protocol_v1.go ``UNREGISTER``).
* ``*`` is a wildcard for key or subkey; wildcard producer finds dedup by peer id.
* The active filter hides a producer silent for more than the inactive timeout, or
  tombstoned less than the tombstone lifetime ago (``FilterByActive``).

trinsq's one departure (nsqlookupd keeps emptied keys forever, so ``/topics`` never forgets
a topic whose nsqd went away): a registration that emptied because its producers left,
by UNREGISTER or disconnect, is dropped by :meth:`RegistrationDB.expire_empty` once it has
stayed empty for more than the inactive-producer timeout; the server calls it periodically.
Registrations made by the HTTP create endpoints and never populated are operator intent
and kept, as nsqlookupd keeps them; re-creating an emptied one makes it kept again. A
topic key is kept while any of its channel keys remains, since ``/channel/create`` made
the two together.

``generation`` counts the changes to keys, producers and tombstones, so that encoded answers
can be cached until the next one (_views.py). A PING only moves a peer's clock, which does not
count: the cache judges time by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Final

import attrs

from ..protocol import is_ephemeral

__all__ = [
    "CLIENT",
    "GO_ZERO_TIME_NS",
    "WILDCARD",
    "DebugProducer",
    "LookupResult",
    "Node",
    "PeerAddress",
    "PeerInfo",
    "Producer",
    "Registration",
    "RegistrationDB",
]

# time.Time{}.UnixNano(): what /debug shows as tombstoned_at for a never-tombstoned producer.
GO_ZERO_TIME_NS: Final = -6795364578871345152
WILDCARD: Final = "*"


@attrs.frozen
class Registration:
    """A key: ``client`` (no key/subkey), ``topic`` (key) or ``channel`` (key, subkey)."""

    category: str
    key: str = ""
    subkey: str = ""

    def matches(self, category: str, key: str, subkey: str) -> bool:
        return (
            self.category == category
            and key in (WILDCARD, self.key)
            and subkey in (WILDCARD, self.subkey)
        )

    @property
    def debug_key(self) -> str:
        return f"{self.category}:{self.key}:{self.subkey}"

    @property
    def log_text(self) -> str:
        """The key as nsqlookupd's ``DB:`` log lines write it."""
        return f"category:{self.category} key:{self.key} subkey:{self.subkey}"


CLIENT: Final = Registration("client")


@attrs.define(eq=False)
class PeerInfo:
    """One identified nsqd connection.

    Attributes:
        id: the connection's remote ``ip:port``, which keys it in every registration.
        last_update: monotonic seconds of the IDENTIFY or latest PING.
        last_update_ns: the same instant in unix nanoseconds, for ``/debug``.
    """

    id: str
    remote_address: str
    hostname: str
    broadcast_address: str
    tcp_port: int
    http_port: int
    version: str
    last_update: float = 0.0
    last_update_ns: int = 0

    @property
    def node(self) -> str:
        """The ``node`` argument of ``/topic/tombstone`` that names this peer."""
        return f"{self.broadcast_address}:{self.http_port}"


@attrs.define(eq=False)
class Producer:
    """A peer's entry in one registration; the tombstone is per registration."""

    peer: PeerInfo
    tombstoned: bool = False
    tombstoned_at: float = 0.0
    tombstoned_at_ns: int = GO_ZERO_TIME_NS

    def is_tombstoned(self, now: float, lifetime: float) -> bool:
        return self.tombstoned and now - self.tombstoned_at < lifetime


@attrs.frozen
class PeerAddress:
    """A producer as ``/lookup`` lists it; field order is nsqlookupd's JSON key order."""

    remote_address: str
    hostname: str
    broadcast_address: str
    tcp_port: int
    http_port: int
    version: str

    @classmethod
    def of(cls, peer: PeerInfo) -> PeerAddress:
        return cls(
            peer.remote_address,
            peer.hostname,
            peer.broadcast_address,
            peer.tcp_port,
            peer.http_port,
            peer.version,
        )


@attrs.frozen
class Node(PeerAddress):
    """A ``/nodes`` entry. ``tombstones[i]`` is about ``topics[i]``: nsqadmin zips them."""

    tombstones: list[bool]
    topics: list[str]


@attrs.frozen
class LookupResult:
    channels: list[str]
    producers: list[PeerAddress]


@attrs.frozen
class DebugProducer:
    """A ``/debug`` entry; fields sorted because nsqlookupd encodes a Go map."""

    broadcast_address: str
    hostname: str
    http_port: int
    id: str
    last_update: int
    tcp_port: int
    tombstoned: bool
    tombstoned_at: int
    version: str


@attrs.define
class _Entry:
    producers: dict[str, Producer] = attrs.field(factory=dict)
    # Monotonic time the last producer left; None while populated or made by an operator.
    emptied_at: float | None = None


@attrs.define(eq=False)
class RegistrationDB:
    """Registrations and their producers (see the module docstring for the rules)."""

    clock: Callable[[], float] = time.monotonic
    wall_clock_ns: Callable[[], int] = time.time_ns
    _entries: dict[Registration, _Entry] = attrs.field(factory=dict, init=False)
    # Bumped by every change that can alter what an endpoint answers, PINGs excepted.
    generation: int = attrs.field(default=0, init=False)

    # -- the primitives of registration_db.go ------------------------------------------

    def _entry(self, registration: Registration) -> _Entry:
        """The key's entry, created if missing; an emptied one becomes kept again."""
        entry = self._entries.get(registration)
        if entry is None:
            entry = self._entries[registration] = _Entry()
            self.generation += 1
        entry.emptied_at = None
        return entry

    def add_registration(self, registration: Registration) -> None:
        """Create the key if missing; an emptied one becomes operator-kept again."""
        self._entry(registration)

    def add_producer(self, registration: Registration, producer: Producer) -> bool:
        """Add ``producer`` unless its peer is already there; return whether it was added."""
        entry = self._entry(registration)
        if producer.peer.id in entry.producers:
            return False
        entry.producers[producer.peer.id] = producer
        self.generation += 1
        return True

    def remove_producer(self, registration: Registration, peer_id: str) -> tuple[bool, int]:
        """Remove a peer from a registration: (was it there, producers left). Keeps the key."""
        entry = self._entries.get(registration)
        if entry is None:
            return False, 0
        removed = entry.producers.pop(peer_id, None) is not None
        if removed:
            self.generation += 1
            if not entry.producers:
                entry.emptied_at = self.clock()
        return removed, len(entry.producers)

    def remove_registration(self, registration: Registration) -> None:
        if self._entries.pop(registration, None) is not None:
            self.generation += 1

    def find_registrations(self, category: str, key: str, subkey: str) -> list[Registration]:
        if WILDCARD not in (key, subkey):
            exact = Registration(category, key, subkey)
            return [exact] if exact in self._entries else []
        return [r for r in self._entries if r.matches(category, key, subkey)]

    def find_producers(self, category: str, key: str, subkey: str) -> list[Producer]:
        """Producers of the matching registrations, one per peer when wildcards are used."""
        if WILDCARD not in (key, subkey):
            entry = self._entries.get(Registration(category, key, subkey))
            return [] if entry is None else list(entry.producers.values())
        found: dict[str, Producer] = {}
        for registration in self.find_registrations(category, key, subkey):
            for peer_id, producer in self._entries[registration].producers.items():
                found.setdefault(peer_id, producer)
        return list(found.values())

    def lookup_registrations(self, peer_id: str) -> list[Registration]:
        return [r for r, entry in self._entries.items() if peer_id in entry.producers]

    def active(
        self, producers: Iterable[Producer], *, inactive_timeout: float, tombstone_lifetime: float
    ) -> list[Producer]:
        """nsqlookupd's ``FilterByActive``: drop the silent and the freshly tombstoned."""
        now = self.clock()
        return [
            p
            for p in producers
            if now - p.peer.last_update <= inactive_timeout
            and not p.is_tombstoned(now, tombstone_lifetime)
        ]

    # -- what the TCP protocol does with it (lookup_protocol_v1.go) ----------------------

    def touch(self, peer: PeerInfo) -> None:
        """Record a sign of life (IDENTIFY, PING) on both clocks."""
        peer.last_update = self.clock()
        peer.last_update_ns = self.wall_clock_ns()

    def identify(self, peer: PeerInfo) -> bool:
        """Stamp a newly identified peer and register it as a ``client``."""
        self.touch(peer)
        return self.add_producer(CLIENT, Producer(peer))

    def register(self, peer: PeerInfo, topic: str, channel: str = "") -> list[Registration]:
        """REGISTER: the channel (if given) and always the topic; returns the new entries."""
        keys = [Registration("channel", topic, channel)] if channel else []
        keys.append(Registration("topic", topic))
        return [key for key in keys if self.add_producer(key, Producer(peer))]

    def unregister(self, peer_id: str, topic: str, channel: str = "") -> list[Registration]:
        """UNREGISTER; returns the registrations the peer was removed from.

        Without a channel the peer also leaves every channel of the topic (nsqd never
        relies on that, so a channel among the results is worth a warning).
        """
        removed_from: list[Registration] = []
        if channel:
            key = Registration("channel", topic, channel)
        else:
            key = Registration("topic", topic)
            removed_from = [
                r
                for r in self.find_registrations("channel", topic, WILDCARD)
                if self.remove_producer(r, peer_id)[0]
            ]
        removed, left = self.remove_producer(key, peer_id)
        if removed:
            removed_from.append(key)
        # Also when the key held no producer of this peer: nsqlookupd checks only the count.
        if left == 0 and is_ephemeral(channel or topic):
            self.remove_registration(key)
        return removed_from

    def remove_peer(self, peer_id: str) -> list[Registration]:
        """A disconnect: the peer leaves every registration, whose keys stay."""
        registrations = self.lookup_registrations(peer_id)
        for registration in registrations:
            self.remove_producer(registration, peer_id)
        return registrations

    # -- what the HTTP endpoints need (http.go) ------------------------------------------

    def topics(self) -> list[str]:
        return [r.key for r in self.find_registrations("topic", WILDCARD, "")]

    def channels(self, topic: str) -> list[str]:
        return [r.subkey for r in self.find_registrations("channel", topic, WILDCARD)]

    def lookup(
        self, topic: str, *, inactive_timeout: float, tombstone_lifetime: float
    ) -> LookupResult | None:
        """``/lookup``: all channel keys and the active producers; None without the topic."""
        if not self.find_registrations("topic", topic, ""):
            return None
        producers = self.active(
            self.find_producers("topic", topic, ""),
            inactive_timeout=inactive_timeout,
            tombstone_lifetime=tombstone_lifetime,
        )
        return LookupResult(self.channels(topic), [PeerAddress.of(p.peer) for p in producers])

    def nodes(self, *, inactive_timeout: float, tombstone_lifetime: float) -> list[Node]:
        """``/nodes``: clients active by timeout only, each topic with its tombstone state."""
        now = self.clock()
        clients = self.active(
            self.find_producers(CLIENT.category, CLIENT.key, CLIENT.subkey),
            inactive_timeout=inactive_timeout,
            tombstone_lifetime=0,  # nodes are listed even while tombstoned
        )
        nodes = []
        for client in clients:
            peer = client.peer
            topics = [r for r in self.lookup_registrations(peer.id) if r.category == "topic"]
            tombstones = [
                self._entries[r].producers[peer.id].is_tombstoned(now, tombstone_lifetime)
                for r in topics
            ]
            nodes.append(
                Node(
                    remote_address=peer.remote_address,
                    hostname=peer.hostname,
                    broadcast_address=peer.broadcast_address,
                    tcp_port=peer.tcp_port,
                    http_port=peer.http_port,
                    version=peer.version,
                    tombstones=tombstones,
                    topics=[r.key for r in topics],
                )
            )
        return nodes

    def tombstone(self, topic: str, node: str) -> int:
        """Tombstone the topic's producers whose peer is ``node``; returns how many.

        A wildcard topic tombstones the node in every topic, where nsqlookupd's deduped
        producer list would hit one topic picked by map order.
        """
        count = 0
        for registration in self.find_registrations("topic", topic, ""):
            for producer in self._entries[registration].producers.values():
                if producer.peer.node == node:
                    producer.tombstoned = True
                    producer.tombstoned_at = self.clock()
                    producer.tombstoned_at_ns = self.wall_clock_ns()
                    count += 1
        if count:
            self.generation += 1
        return count

    def create_topic(self, topic: str) -> None:
        self.add_registration(Registration("topic", topic))

    def delete_topic(self, topic: str) -> list[Registration]:
        """Remove the topic's channel keys, then the topic key; returns what went."""
        gone = self.find_registrations("channel", topic, WILDCARD)
        gone += self.find_registrations("topic", topic, "")
        for registration in gone:
            self.remove_registration(registration)
        return gone

    def create_channel(self, topic: str, channel: str) -> None:
        """Both keys: nsqd asks ``/channels`` when it creates the topic."""
        self.add_registration(Registration("channel", topic, channel))
        self.add_registration(Registration("topic", topic))

    def delete_channel(self, topic: str, channel: str) -> bool:
        """Remove the channel key; False (a 404) when there was none."""
        gone = self.find_registrations("channel", topic, channel)
        for registration in gone:
            self.remove_registration(registration)
        return bool(gone)

    def debug(self) -> dict[str, list[DebugProducer]]:
        """``/debug``: populated registrations by ``category:key:subkey``, keys sorted."""
        dump = {
            registration.debug_key: [
                DebugProducer(
                    broadcast_address=p.peer.broadcast_address,
                    hostname=p.peer.hostname,
                    http_port=p.peer.http_port,
                    id=p.peer.id,
                    last_update=p.peer.last_update_ns,
                    tcp_port=p.peer.tcp_port,
                    tombstoned=p.tombstoned,
                    tombstoned_at=p.tombstoned_at_ns,
                    version=p.peer.version,
                )
                for p in entry.producers.values()
            ]
            for registration, entry in self._entries.items()
            if entry.producers
        }
        return dict(sorted(dump.items()))

    # -- trinsq's expiry -----------------------------------------------------------------

    def expire_empty(self, now: float, inactive_timeout: float) -> list[Registration]:
        """Drop registrations emptied by departures more than ``inactive_timeout`` ago."""

        def due(entry: _Entry) -> bool:
            return entry.emptied_at is not None and now - entry.emptied_at > inactive_timeout

        expired = [r for r, e in self._entries.items() if r.category != "topic" and due(e)]
        for registration in expired:
            del self._entries[registration]
        # Topics last, so that channels expiring in this same pass no longer hold them.
        with_channels = {r.key for r in self._entries if r.category == "channel"}
        topics = [
            r
            for r, e in self._entries.items()
            if r.category == "topic" and due(e) and r.key not in with_channels
        ]
        for registration in topics:
            del self._entries[registration]
        if expired or topics:
            self.generation += 1
        return expired + topics

"""The read endpoints' JSON bodies (/lookup, /nodes, /topics, /channels), encoded once and
reused until they could differ. No trio, no I/O.

Consumers poll /lookup every few seconds each, while registrations change rarely (REGISTER,
UNREGISTER, a disconnect, a tombstone). Building the answer from the models and encoding it
through cattrs cost about 10 µs per producer per request, so each body is cached and kept
while all of these hold:

* the database's ``generation`` (bumped by every change to keys, producers or tombstones) is
  the one it was built at;
* the clock is before ``valid_until``: the first instant time alone could change it, when a
  listed producer would pass the inactive timeout or a hiding tombstone its lifetime;
* every producer it left out as silent is still silent: a PING revives one without changing
  the generation, so that PINGs of listed producers (each broker's, every 15 s) cost nothing.

The bodies are what the uncached path encodes (``go_json`` of the database's models), built
from a clock reading taken before the window is judged, so a cached body is byte for byte the
one a fresh build would give.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import attrs

from ..common._json import go_json
from ._db import CLIENT, WILDCARD, PeerInfo, Producer, RegistrationDB

__all__ = ["RegistryViews"]


@attrs.define
class _Cached:
    body: bytes | None
    valid_until: float = math.inf
    # Peers left out for silence, with the last_update they had: a change means a PING.
    silent: list[tuple[PeerInfo, float]] = attrs.field(factory=list)

    def fresh(self, now: float) -> bool:
        return now < self.valid_until and all(p.last_update == t for p, t in self.silent)


@attrs.define(eq=False)
class RegistryViews:
    """Cached bodies of the read endpoints of one registration database.

    Args:
        db: the registration database.
        inactive_timeout: seconds without a PING after which a producer is left out.
        tombstone_lifetime: seconds a tombstone hides a producer from /lookup.
    """

    db: RegistrationDB
    inactive_timeout: float
    tombstone_lifetime: float
    _generation: int = attrs.field(default=-1, init=False)
    _cache: dict[tuple[str, str], _Cached] = attrs.field(factory=dict, init=False)

    def lookup(self, topic: str) -> bytes | None:
        """``/lookup``'s body, or None when the topic has no registration (a 404)."""

        def build() -> bytes | None:
            result = self.db.lookup(topic, **self._limits())
            if result is None:
                return None
            return go_json({"channels": result.channels, "producers": result.producers})

        return self._get(("lookup", topic), build, self.db.find_producers("topic", topic, ""))

    def nodes(self) -> bytes:
        """``/nodes``' body."""

        def build() -> bytes:
            return go_json({"producers": self.db.nodes(**self._limits())})

        db = self.db
        clients = db.find_producers(CLIENT.category, CLIENT.key, CLIENT.subkey)
        # A node's tombstone flags are its entries' in each topic (not deduplicated by peer).
        entries = [
            producer
            for registration in db.find_registrations("topic", WILDCARD, "")
            for producer in db.find_producers("topic", registration.key, "")
        ]
        body = self._get(("nodes", ""), build, clients, entries)
        assert body is not None
        return body

    def topics(self) -> bytes:
        body = self._get(("topics", ""), lambda: go_json({"topics": self.db.topics()}))
        assert body is not None
        return body

    def channels(self, topic: str) -> bytes:
        body = self._get(
            ("channels", topic), lambda: go_json({"channels": self.db.channels(topic)})
        )
        assert body is not None
        return body

    def _limits(self) -> dict[str, float]:
        return {
            "inactive_timeout": self.inactive_timeout,
            "tombstone_lifetime": self.tombstone_lifetime,
        }

    def _get(
        self,
        key: tuple[str, str],
        build: Callable[[], bytes | None],
        listed: Sequence[Producer] = (),
        tombstoned: Sequence[Producer] | None = None,
    ) -> bytes | None:
        """The cached body for ``key``, rebuilt when stale; ``listed`` are the producers whose
        activity decides the body and ``tombstoned`` those whose tombstones do (``listed``
        when not given)."""
        now = self.db.clock()
        if self._generation != self.db.generation:
            # Any change may touch any body; dropping them all also bounds the cache by the
            # keys asked for since the last change.
            self._cache.clear()
            self._generation = self.db.generation
        cached = self._cache.get(key)
        if cached is not None and cached.fresh(now):
            return cached.body
        # The window is judged at ``now``, before the build reads the clock (later or the
        # same): a producer that lapses in between makes the entry stale at once, never wrong.
        cached = _Cached(None)
        for producer in listed:
            peer = producer.peer
            if now - peer.last_update > self.inactive_timeout:
                cached.silent.append((peer, peer.last_update))
            else:
                lapses = peer.last_update + self.inactive_timeout
                cached.valid_until = min(cached.valid_until, lapses)
        for producer in listed if tombstoned is None else tombstoned:
            if producer.is_tombstoned(now, self.tombstone_lifetime):
                ends = producer.tombstoned_at + self.tombstone_lifetime
                cached.valid_until = min(cached.valid_until, ends)
        cached.body = build()
        self._cache[key] = cached
        return cached.body

"""Finding a topic's nsqd producers through nsqlookupd (or trinsq registries), as go-nsq's
consumer does: the ``/lookup`` URL of each registry, the parsing of its answer, which registry
to ask next, when to poll, and which producers to connect to and to drop.

Sans-IO: the caller does the HTTP request and reads the clock.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

__all__ = [
    "DiscoveryError",
    "LookupPoller",
    "ProducerChanges",
    "join_host_port",
    "lookup_url",
    "parse_lookup_answer",
]

#: How many registries one poll asks before it gives up (go-nsq's ``queryLookupd``).
QUERY_ATTEMPTS: Final = 3


class DiscoveryError(ValueError):
    """A registry address or answer that cannot be used."""


def lookup_url(address: str, topic: str) -> str:
    """The URL that asks the registry at ``address`` for ``topic``'s producers.

    ``address`` is ``host:port`` or a URL; ``http://`` is assumed, a port is required, an empty
    path becomes ``/lookup``, and ``topic`` is added to the query (go-nsq's ``buildLookupAddr``).

    Raises:
        DiscoveryError: the address has no port or cannot be parsed.
    """
    text = address if "://" in address else "http://" + address
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise DiscoveryError(f"invalid lookupd address {address!r} - {error}") from None
    if port is None:
        raise DiscoveryError(f"invalid lookupd address {address!r} - missing port")
    path = "/lookup" if parts.path in ("", "/") else parts.path
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("topic", topic)]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(sorted(query)), ""))


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets (Go's ``net.JoinHostPort``)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def parse_lookup_answer(answer: Any) -> list[str]:
    """The nsqd TCP addresses (``broadcast_address:tcp_port``) in a decoded ``/lookup`` answer,
    in the order given, without repeats.

    Both shapes are accepted: nsqlookupd's V1 (``{"channels": [...], "producers": [...]}``)
    and the older one wrapped in ``{"status_code": 200, "data": {...}}``.

    Raises:
        DiscoveryError: the answer is not of either shape, or a producer has no usable address.
    """
    if not isinstance(answer, Mapping):
        raise DiscoveryError("lookup answer is not a JSON object")
    if "producers" not in answer and isinstance(answer.get("data"), Mapping):
        answer = answer["data"]
    producers = answer.get("producers")
    if producers is None:
        producers = []
    if not isinstance(producers, list):
        raise DiscoveryError("lookup answer's producers is not a list")
    addresses: list[str] = []
    for producer in producers:
        if not isinstance(producer, Mapping):
            raise DiscoveryError("lookup answer has a producer that is not an object")
        host = producer.get("broadcast_address")
        port = producer.get("tcp_port")
        if (
            not isinstance(host, str)
            or not host
            or not isinstance(port, int)
            or isinstance(port, bool)
            or not 0 < port < 65536
        ):
            raise DiscoveryError(f"lookup answer has a producer without an address: {producer!r}")
        address = join_host_port(host, port)
        if address not in addresses:
            addresses.append(address)
    return addresses


@attrs.frozen
class ProducerChanges:
    """What one lookup result asks of the consumer."""

    connect: list[str]
    drop: list[str]


class LookupPoller:
    """When to ask which registry, and what the answers change.

    The first poll is immediate; the next comes ``interval`` plus a random share of
    ``jitter * interval`` later (so consumers restarted together spread out), then one every
    ``interval``, plus one
    whenever :meth:`recheck` is called (a connection closed). Registries are asked in turn.
    """

    def __init__(
        self,
        addresses: Sequence[str],
        topic: str,
        *,
        interval: float,
        jitter: float,
        now: float,
        rng: random.Random | None = None,
    ) -> None:
        if not 0.0 <= jitter <= 1.0:
            raise ValueError("lookupd poll jitter must be between 0 and 1")
        if interval <= 0:
            raise ValueError("lookupd poll interval must be positive")
        urls: list[str] = []
        for address in addresses:
            url = lookup_url(address, topic)
            if url not in urls:
                urls.append(url)
        self.urls: Final = tuple(urls)
        self._interval = interval
        self._rng = rng or random.Random()
        self._index = 0
        self._next_poll = now
        self._jitter_delay = self._rng.random() * jitter * interval
        self._polled_once = False
        self._discovered: set[str] = set()

    @property
    def discovered(self) -> frozenset[str]:
        """The producers the last successful poll found."""
        return frozenset(self._discovered)

    def deadline(self) -> float:
        """When the next poll is due."""
        return self._next_poll

    def recheck(self, now: float) -> None:
        """Poll again as soon as possible (go-nsq does so when a connection closes)."""
        if self._polled_once:
            self._next_poll = min(self._next_poll, now)

    def next_urls(self) -> list[str]:
        """The registries to try for one poll, in order, until one answers: up to three,
        starting with the one after the last asked (go-nsq asks the next on each failure)."""
        urls = []
        for _ in range(min(QUERY_ATTEMPTS, len(self.urls))):
            urls.append(self.urls[self._index % len(self.urls)])
            self._index = (self._index + 1) % len(self.urls)
        return urls

    def polled(self, now: float) -> None:
        """A poll finished (whatever its outcome): schedule the next."""
        if not self._polled_once:
            self._polled_once = True
            self._next_poll = now + self._jitter_delay + self._interval
        else:
            self._next_poll = now + self._interval

    def found(self, producers: Iterable[str], connected: Iterable[str]) -> ProducerChanges:
        """A poll found ``producers``; ``connected`` are the discovered addresses the consumer
        is connected (or connecting) to. Returns the new ones to connect to and the vanished
        ones to drop. A failed poll must not call this: it changes nothing."""
        found = list(dict.fromkeys(producers))
        self._discovered = set(found)
        current = set(connected)
        return ProducerChanges(
            connect=[a for a in found if a not in current],
            drop=sorted(current - self._discovered),
        )

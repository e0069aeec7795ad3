"""A consumer's registry polling over HTTP: the Trio side of :mod:`._discovery` (go-nsq's
``lookupdLoop`` and ``queryLookupd``). Asks a registry at once, then every poll interval with
jitter, and whenever a connection is lost; connects the producers it finds and drops those
that vanished. A failed poll changes nothing."""

from __future__ import annotations

import logging
from typing import Protocol

import trio

from ..common._httpclient import HttpClientError, get_json_url
from ._config import ClientConfig
from ._discovery import DiscoveryError, LookupPoller, parse_lookup_answer

__all__ = ["Producers", "RegistryPoller"]

log = logging.getLogger("trinsq.client")


class Producers(Protocol):
    """The consumer, as the poller sees it."""

    def discovered(self) -> list[str]:
        """Addresses found by polls, connected or connecting."""
        ...

    def is_direct(self, address: str) -> bool:
        """Whether ``address`` was given directly (a poll never adds or drops it)."""
        ...

    async def add_producer(self, address: str) -> None:
        """Connect to a producer a poll found (returns once it is subscribed or failed)."""
        ...

    def drop_producer(self, address: str) -> None:
        """Close gracefully the connection to a producer that vanished."""
        ...


class RegistryPoller:
    """Runs the polls of one consumer (see the module docstring)."""

    def __init__(self, poller: LookupPoller, config: ClientConfig, producers: Producers) -> None:
        self._poller = poller
        self._config = config
        self._producers = producers
        self._wakeup = trio.Event()
        self._stopped = False

    def recheck(self) -> None:
        """Poll again now (a connection was lost)."""
        self._poller.recheck(trio.current_time())
        self._wakeup.set()

    def stop(self) -> None:
        self._stopped = True
        self._wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll until stopped; started once the first poll is done (as go-nsq's first query
        is made before ``ConnectToNSQLookupd`` returns)."""
        started = False
        while not self._stopped:
            if trio.current_time() >= self._poller.deadline():
                await self._poll()
                self._poller.polled(trio.current_time())
            if not started:
                task_status.started()
                started = True
            self._wakeup = trio.Event()
            with trio.move_on_at(self._poller.deadline()):
                await self._wakeup.wait()

    async def _poll(self) -> None:
        for url in self._poller.next_urls():
            log.info("querying nsqlookupd %s", url)
            try:
                answer = await get_json_url(
                    url,
                    connect_timeout=self._config.dial_timeout,
                    request_timeout=self._config.read_timeout,
                )
                found = parse_lookup_answer(answer)
            except (HttpClientError, DiscoveryError) as error:
                log.error("error querying nsqlookupd (%s) - %s", url, error)
                continue
            producers = self._producers
            changes = self._poller.found(
                [a for a in found if not producers.is_direct(a)], connected=producers.discovered()
            )
            for address in changes.connect:
                if self._stopped:
                    return
                await producers.add_producer(address)
            for address in changes.drop:
                producers.drop_producer(address)
            return

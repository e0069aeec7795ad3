"""Shared fixtures: a real broker on port 0 in the test's own Trio run."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.deadlines import pytest_collection_modifyitems as pytest_collection_modifyitems
from tests.deadlines import pytest_configure as pytest_configure
from tests.support import RawClient
from trinsq import RunningBroker, open_broker

pytest_plugins = ["pytester"]


@pytest.fixture
def restore_process_state() -> Iterator[None]:
    """`trinsq broker` run in-process tunes the collector and takes over trinsq's loggers;
    later tests get them back as they were."""
    threshold = gc.get_threshold()
    loggers = [logging.getLogger("trinsq"), logging.getLogger("trinsq.http")]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
async def broker() -> AsyncIterator[RunningBroker]:
    """A broker with default options listening on 127.0.0.1, ports chosen by the OS."""
    async with open_broker() as running:
        yield running


@pytest.fixture
async def raw(broker: RunningBroker) -> AsyncIterator[RawClient]:
    """A raw V2 socket to ``broker`` that has sent the magic."""
    client = await RawClient.connect(broker)
    try:
        yield client
    finally:
        await client.aclose()


Connect = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``await connect(broker, magic=...)`` opens a RawClient that is closed after the test."""
    opened: list[RawClient] = []

    async def open_client(broker: RunningBroker, *, magic: bytes = b"  V2") -> RawClient:
        client = await RawClient.connect(broker, magic=magic)
        opened.append(client)
        return client

    try:
        yield open_client
    finally:
        for client in opened:
            await client.aclose()

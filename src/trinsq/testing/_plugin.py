"""The pytest plugin of :mod:`trinsq.testing` (registered through the ``pytest11`` entry point).

Fixtures are async (pytest-trio runs them); trinsq itself is imported only when a test uses
one, so the plugin costs nothing to a test run that does not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from trinsq import RunningBroker, RunningCluster, RunningRegistry
    from trinsq.client import Producer
    from trinsq.testing._process import BrokerProcess

__all__ = [
    "trinsq_broker",
    "trinsq_broker_factory",
    "trinsq_broker_process",
    "trinsq_broker_process_args",
    "trinsq_cluster",
    "trinsq_nsqd",
    "trinsq_producer",
    "trinsq_registry",
]

BrokerFactory = Callable[..., Awaitable["RunningBroker"]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "trinsq(**options): broker options for trinsq's fixtures (e.g. msg_timeout=5)"
    )
    config.addinivalue_line(
        "markers", "trinsq_registry(**options): registry options for trinsq's fixtures"
    )
    config.addinivalue_line(
        "markers", "trinsq_cluster(brokers=2, registries=1): the shape of trinsq_cluster"
    )


def _marker_options(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    """The keyword arguments of the closest ``name`` marker (the test's over its class's and
    module's), or none."""
    marker = request.node.get_closest_marker(name)
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(f"@pytest.mark.{name} takes keyword arguments only")
    return dict(marker.kwargs)


@pytest.fixture
async def trinsq_broker(request: pytest.FixtureRequest) -> AsyncIterator[RunningBroker]:
    """A broker for this test (options from ``@pytest.mark.trinsq``), stopped after it."""
    from trinsq import open_broker

    async with open_broker(**_marker_options(request, "trinsq")) as broker:
        yield broker


@pytest.fixture
async def trinsq_registry(request: pytest.FixtureRequest) -> AsyncIterator[RunningRegistry]:
    """A registry for this test (options from ``@pytest.mark.trinsq_registry``)."""
    from trinsq import open_registry

    async with open_registry(**_marker_options(request, "trinsq_registry")) as registry:
        yield registry


@pytest.fixture
async def trinsq_cluster(request: pytest.FixtureRequest) -> AsyncIterator[RunningCluster]:
    """Registries, then brokers registered with all of them (``@pytest.mark.trinsq_cluster``
    for the counts, ``trinsq`` and ``trinsq_registry`` for their options)."""
    from trinsq import open_cluster

    shape = _marker_options(request, "trinsq_cluster")
    async with open_cluster(
        shape.pop("brokers", 2),
        shape.pop("registries", 1),
        registry_options=_marker_options(request, "trinsq_registry"),
        **_marker_options(request, "trinsq"),
    ) as cluster:
        if shape:
            raise pytest.UsageError(f"unknown trinsq_cluster arguments: {sorted(shape)}")
        yield cluster


@pytest.fixture
async def trinsq_broker_factory() -> AsyncIterator[BrokerFactory]:
    """``await start(**options)`` starts a broker and returns it; every broker started so is
    stopped gracefully after the test.

    Each broker runs in a task of this fixture's own (a broker's block must open and close in
    one task), so a test can start them from anywhere in its body.
    """
    import trio

    from trinsq import open_broker

    stop = trio.Event()

    async def serve(options: dict[str, Any], *, task_status: Any) -> None:
        async with open_broker(**options) as broker:
            task_status.started(broker)
            await stop.wait()

    async with trio.open_nursery() as nursery:

        async def start(**options: Any) -> RunningBroker:
            broker: RunningBroker = await nursery.start(serve, options)
            return broker

        yield start
        stop.set()


@pytest.fixture
async def trinsq_producer(trinsq_broker: RunningBroker) -> AsyncIterator[Producer]:
    """A :mod:`trinsq.client` producer connected to ``trinsq_broker``."""
    from trinsq.client import open_producer

    async with open_producer(trinsq_broker.tcp_address) as producer:
        yield producer


# -- for test suites that are not Trio ------------------------------------------------------------


@pytest.fixture(scope="session")
def trinsq_broker_process_args() -> list[str]:
    """Extra flags for the session's broker process (override this fixture in a conftest.py,
    e.g. ``return ["--msg-timeout=5s"]``)."""
    return []


@pytest.fixture(scope="session")
def trinsq_broker_process(trinsq_broker_process_args: list[str]) -> Iterator[BrokerProcess]:
    """One ``trinsq broker`` process for the whole session, stopped (SIGTERM) at its end."""
    from trinsq.testing._process import start_broker_process

    broker = start_broker_process(trinsq_broker_process_args)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def trinsq_nsqd(trinsq_broker_process: BrokerProcess) -> BrokerProcess:
    """The session's broker process, emptied for this test (every topic deleted): point any
    NSQ client at ``.tcp_address`` / ``.http_address``."""
    trinsq_broker_process.empty()
    return trinsq_broker_process

"""Fixtures of the client tests: test certificates, an nsq auth server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import trio

from tests.broker.tcp.test_auth import AuthServer
from tests.tlsutil import Certificates, make_certificates


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(Path(tmp_path_factory.mktemp("client-tls")))


@pytest.fixture
async def authd() -> AsyncIterator[AuthServer]:
    server = AuthServer()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        host, port = listeners[0].socket.getsockname()[:2]
        server.address = f"{host}:{port}"
        yield server
        server.release.set()
        nursery.cancel_scope.cancel()

"""Fixtures of the client tests: test certificates, an nsq auth server (``authd``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.broker.tcp.test_auth import authd  # noqa: F401 (the broker tests' auth server)
from tests.tlsutil import Certificates, make_certificates


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(Path(tmp_path_factory.mktemp("client-tls")))

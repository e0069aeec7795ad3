"""The small HTTP client: any answer comes back whole, and a failure says at which stage."""

from __future__ import annotations

import socket

import pytest

import trinsq
from trinsq.common._httpclient import HttpClientError, HttpTransportError, get, get_json


async def test_get_returns_a_non_200_answer_with_its_reason_and_body() -> None:
    async with trinsq.open_registry() as registry:
        assert registry.http_address is not None
        host, port = registry.http_address.rsplit(":", 1)
        answer = await get(host, int(port), "/lookup?topic=nope")
        assert (answer.status, answer.reason) == (404, "Not Found")
        assert answer.body == b'{"message":"TOPIC_NOT_FOUND"}'
        with pytest.raises(HttpClientError) as raised:
            await get_json(host, int(port), "/lookup?topic=nope")
        assert str(raised.value) == f"GET {host}:{port}/lookup?topic=nope - status 404"


async def test_a_refused_connection_fails_at_the_dial_stage() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(HttpTransportError) as raised:
        await get("127.0.0.1", port, "/ping")
    assert raised.value.stage == "dial"
    assert isinstance(raised.value.error, OSError)
    assert str(raised.value).startswith(f"GET 127.0.0.1:{port}/ping - ")

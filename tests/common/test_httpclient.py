"""The small HTTP client: any answer comes back whole (its refusals: tests/test_rough_edges.py)."""

from __future__ import annotations

import pytest

import trinsq
from trinsq.common._httpclient import HttpClientError, get, get_json


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

"""Request bodies the registry has no use for, over real sockets: nsqlookupd's endpoints read
none, so they answer at once, closing a connection whose body is still arriving; a fast
route's body that stalls is answered 408, malformed chunking 400, and the other clients are
served throughout."""

from __future__ import annotations

import pytest

from tests.rawhttp import (
    answer_then_eof,
    assert_malformed_chunks_refused,
    assert_serving,
    assert_timed_out,
    chunk,
    connect_http,
    raw_http,
    request_head,
)
from trinsq.registry import open_registry

CHUNKED = b"Transfer-Encoding: chunked\r\n"
LENGTH = b"Content-Length: 104857600\r\n"


@pytest.mark.parametrize(
    ("method", "target", "extra", "body"),
    [
        pytest.param(b"POST", b"/topic/create?topic=t", LENGTH, b"", id="declared-100MiB"),
        pytest.param(b"POST", b"/topic/create?topic=t", LENGTH, b"abc", id="stalled"),
        pytest.param(b"POST", b"/topic/create?topic=t", CHUNKED, chunk(b"x" * 100), id="chunked"),
        pytest.param(b"GET", b"/ping", LENGTH, b"", id="lane-route-declared-100MiB"),
    ],
)
async def test_an_endpoint_answers_without_waiting_for_the_body(
    method: bytes, target: bytes, extra: bytes, body: bytes
) -> None:
    async with open_registry() as registry, raw_http(registry.http_address) as http:
        await http.send(request_head(method, target, extra) + body)
        status, _, headers, _ = await answer_then_eof(http)
        assert (status, (b"Connection", b"close") in headers) == (200, True)
        await assert_serving(registry.http_address)
        if b"topic/create" in target:
            assert registry.server.db.topics() == ["t"]


async def test_a_stalled_body_on_a_fast_route_is_answered_408() -> None:
    timeout = 0.5
    async with open_registry(http_body_timeout=timeout) as registry:
        http = await connect_http(registry.http_address)
        async with http.stream:
            await http.send(request_head(b"GET", b"/lookup?topic=t", b"Content-Length: 5000\r\n"))
            await http.send(b"abc")
            await assert_timed_out(http, registry.http_address, timeout)


async def test_malformed_chunk_sizes_are_answered_400() -> None:
    async with open_registry() as registry:
        await assert_malformed_chunks_refused(
            registry.http_address, b"/channel/create?topic=t&channel=c"
        )

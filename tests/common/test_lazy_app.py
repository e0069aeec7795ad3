"""The lazily built HTTP app: lifespan answered without it, built once on the first request
however many arrive together, and quart left unimported by a broker that only takes the fast
lane's requests."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import trio

from trinsq.common._httpserve import LazyApp


class RecordingApp:
    def __init__(self) -> None:
        self.started = 0
        self.requests: list[str] = []

    async def startup(self) -> None:
        self.started += 1

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.requests.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})


async def test_lifespan_needs_no_app_and_concurrent_first_requests_build_it_once() -> None:
    built: list[RecordingApp] = []

    def factory() -> RecordingApp:
        built.append(RecordingApp())
        return built[-1]

    lazy = LazyApp(factory)
    lifespan_in = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    lifespan_out: list[Any] = []

    async def receive_lifespan() -> Any:
        return next(lifespan_in)

    async def record(message: Any) -> None:
        lifespan_out.append(message)

    await lazy({"type": "lifespan"}, receive_lifespan, record)  # type: ignore[arg-type]
    assert [m["type"] for m in lifespan_out] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert built == []

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def request(path: str) -> None:
        scope = {"type": "http", "path": path}
        await lazy(scope, receive_lifespan, send)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        for path in ("/stats", "/info", "/metrics"):
            nursery.start_soon(request, path)
    assert len(built) == 1
    assert built[0].started == 1
    assert sorted(built[0].requests) == ["/info", "/metrics", "/stats"]
    assert len(sent) == 3


QUART_AFTER_PING = """
import sys, httpx, trio
from trinsq import open_broker

async def main():
    async with open_broker() as broker:
        async with httpx.AsyncClient() as http:
            base = f"http://{broker.http_address}"
            assert (await http.get(base + "/ping")).text == "OK"
            assert (await http.post(base + "/pub?topic=t", content=b"x")).text == "OK"
            print("quart after /ping and /pub:", "quart" in sys.modules)
            stats = (await http.get(base + "/stats?format=json")).json()
            assert stats["topics"][0]["message_count"] == 1
            print("quart after /stats:", "quart" in sys.modules)

trio.run(main)
"""


def test_a_broker_imports_quart_only_when_a_request_needs_the_app() -> None:
    result = subprocess.run(
        [sys.executable, "-c", QUART_AFTER_PING], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "quart after /ping and /pub: False",
        "quart after /stats: True",
    ]

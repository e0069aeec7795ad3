"""The embedding API as a user sees it: only ``import trinsq`` and its public names.

Each test talks to what it started the way an application would, over the network, so it
shows the public name is enough.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import httpx
import pytest
import trio

import trinsq

PUBLIC = (
    "open_broker",
    "open_registry",
    "open_cluster",
    "RunningBroker",
    "RunningRegistry",
    "RunningCluster",
    "BrokerOptions",
    "RegistryOptions",
    "StartupError",
)


def test_every_public_name_is_exported() -> None:
    for name in PUBLIC:
        assert name in trinsq.__all__
        assert name in dir(trinsq)
        assert getattr(trinsq, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'open_nothing'"):
        trinsq.open_nothing  # noqa: B018


async def test_open_broker() -> None:
    async with trinsq.open_broker(msg_timeout=5) as broker:
        assert isinstance(broker, trinsq.RunningBroker)
        async with httpx.AsyncClient(base_url=f"http://{broker.http_address}") as http:
            response = await http.post("/pub", params={"topic": "public"}, content=b"hello")
            assert (response.status_code, response.text) == (200, "OK")
            stats = (await http.get("/stats", params={"format": "json"})).json()
        assert [(t["topic_name"], t["depth"]) for t in stats["topics"]] == [("public", 1)]
        host, port = broker.tcp_address.rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.aclose()


async def test_open_registry() -> None:
    async with trinsq.open_registry() as registry:
        assert isinstance(registry, trinsq.RunningRegistry)
        async with httpx.AsyncClient(base_url=f"http://{registry.http_address}") as http:
            assert (await http.get("/ping")).text == "OK"
            created = await http.post("/topic/create", params={"topic": "public"})
            assert created.status_code == 200
            topics = (await http.get("/topics")).json()
        assert topics["topics"] == ["public"]


async def test_open_cluster() -> None:
    async with trinsq.open_cluster(brokers=2, registries=1) as cluster:
        assert isinstance(cluster, trinsq.RunningCluster)
        assert len(cluster.brokers) == 2
        assert len(cluster.registries) == 1
        async with httpx.AsyncClient() as http:
            for broker in cluster.brokers:
                url = f"http://{broker.http_address}/pub"
                published = await http.post(url, params={"topic": "public"}, content=b"x")
                assert published.status_code == 200
            (lookupd,) = cluster.lookupd_http_addresses
            expected = sorted(int(b.tcp_address.rsplit(":", 1)[1]) for b in cluster.brokers)
            with trio.fail_after(20):
                while True:
                    found = await http.get(f"http://{lookupd}/lookup", params={"topic": "public"})
                    producers = found.json().get("producers", []) if found.is_success else []
                    if sorted(p["tcp_port"] for p in producers) == expected:
                        break
                    await trio.sleep(0.02)  # registration travels over the brokers' V1 links


async def test_a_broker_that_cannot_start_says_why() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(trinsq.StartupError) as raised:
            async with trinsq.open_broker(http_address=address):
                pass  # pragma: no cover - it does not start
    assert str(raised.value) == f"failed to listen on {address} - address already in use"


def test_commands_do_not_import_the_servers() -> None:
    """`--version`, `--help` and flag parsing leave quart and hypercorn unimported, so the
    command answers at once (docs/benchmarks.md times it)."""
    script = """
import contextlib, io, json, sys
from trinsq._cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["--version"]); main(["broker", "--help"]); main(["registry", "--help"])
import trinsq, trinsq.broker, trinsq.registry
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("quart", "hypercorn", "flask"))
print(json.dumps(heavy))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []

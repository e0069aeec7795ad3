"""A client run inside one of test_netns's network namespaces (``python -m`` this module).

``consume REGISTRY_HTTP TOPIC CHANNEL`` is a consumer that knows only the registry, as pynsq's
``lookupd_http_addresses`` reader does: it polls ``/lookup`` twice a second, keeps one
connection per broker listed there (the broker's broadcast address and TCP port), answers
heartbeats, and FINishes every message. It runs until killed and reports on stdout, one JSON
object a line, flushed as it happens:

- ``{"lookup": ["10.0.0.3:4150", ...]}`` whenever the brokers listed change (sorted);
- ``{"connected": ADDRESS}`` once a subscription is acknowledged;
- ``{"message": BODY, "from": ADDRESS}`` for each message, before its FIN;
- ``{"disconnected": ADDRESS, "reason": TEXT}`` when a connection fails or goes silent
  (it is opened again when ``/lookup`` lists the broker).

``publish BROKER_HTTP TOPIC BODY...`` sends the bodies in one ``/mpub`` and exits non-zero if
the broker did not answer ``OK``.
"""

from __future__ import annotations

import json
import sys
import urllib.request

import httpx
import trio

from tests.support import StreamClient

__all__ = ["consume", "publish"]

LOOKUP_INTERVAL = 0.5
CONNECT_TIMEOUT = 3.0
# Heartbeats are asked for every second: a connection silent for this long is dead.
SILENCE_TIMEOUT = 5.0


def report(**event: object) -> None:
    print(json.dumps(event), flush=True)


async def consume(registry_http: str, topic: str, channel: str) -> None:
    """Follow ``/lookup`` and consume from every broker it lists, until cancelled."""
    connected: set[str] = set()
    listed: list[str] | None = None
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=2.0) as http:
        while True:
            producers = await _lookup(http, registry_http, topic)
            if producers is not None:
                if producers != listed:
                    listed = producers
                    report(lookup=producers)
                for address in producers:
                    if address not in connected:
                        connected.add(address)
                        nursery.start_soon(_consume_from, address, topic, channel, connected)
            await trio.sleep(LOOKUP_INTERVAL)


async def _lookup(http: httpx.AsyncClient, registry_http: str, topic: str) -> list[str] | None:
    """The brokers ``/lookup`` lists for ``topic`` (none before it is registered), or None
    when the registry cannot be asked."""
    try:
        reply = await http.get(f"http://{registry_http}/lookup", params={"topic": topic})
    except httpx.HTTPError:
        return None
    if reply.status_code == 404:
        return []
    if reply.status_code != 200:
        return None
    producers = reply.json()["producers"]
    return sorted(f"{p['broadcast_address']}:{p['tcp_port']}" for p in producers)


async def _consume_from(address: str, topic: str, channel: str, connected: set[str]) -> None:
    host, port = address.rsplit(":", 1)
    client: StreamClient[trio.SocketStream] | None = None
    try:
        with trio.fail_after(CONNECT_TIMEOUT):
            client = StreamClient(await trio.open_tcp_stream(host, int(port)))
            await client.send(b"  V2")
            await client.identify(heartbeat_interval=1000)
            await client.subscribe(topic, channel, rdy=100)
        report(connected=address)
        while True:
            frame = await client.read_frame(SILENCE_TIMEOUT, skip_heartbeats=False)
            if frame.is_heartbeat:
                await client.send(b"NOP\n")
                continue
            _, _, message_id, body = frame.message_fields()
            report(message=body.decode(), **{"from": address})
            await client.send(b"FIN " + message_id + b"\n")
    except (OSError, EOFError, ValueError, AssertionError, trio.TooSlowError) as error:
        report(disconnected=address, reason=f"{type(error).__name__}: {error}")
    finally:
        connected.discard(address)
        if client is not None:
            await client.aclose()


def publish(broker_http: str, topic: str, bodies: list[str]) -> None:
    """One ``/mpub`` of ``bodies`` (newline-separated, as nsqd reads it)."""
    request = urllib.request.Request(
        f"http://{broker_http}/mpub?topic={topic}", data="\n".join(bodies).encode()
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer = reply.read()
    if answer != b"OK":
        raise SystemExit(f"/mpub answered {answer!r}")


def main(argv: list[str]) -> None:
    command, address, topic, *rest = argv
    if command == "consume":
        (channel,) = rest
        trio.run(consume, address, topic, channel)
    elif command == "publish":
        publish(address, topic, rest)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

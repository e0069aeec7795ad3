"""Snappy and deflate stream compression after IDENTIFY, alone and on top of TLS.

The raw tests build each layer by hand (python-snappy's StreamDecompressor, zlib raw deflate,
trio.SSLStream) and check the bytes of the OK each upgrade ends with; the pynsq tests check
that a real client library's compressed streams interoperate.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import snappy

from tests.support import body
from tests.tlsutil import (
    OK_FRAME,
    SNAPPY_STREAM_ID,
    Certificates,
    Wire,
    broker_until,
    make_certificates,
    pynsq_round_trip,
    pynsq_tls_options,
)
from trinsq import RunningBroker, open_broker

SYNC_FLUSH_MARKER = b"\x00\x00\xff\xff"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("compression"))


@pytest.fixture
async def wires() -> AsyncIterator[list[Wire]]:
    opened: list[Wire] = []
    try:
        yield opened
    finally:
        for wire in opened:
            await wire.aclose()


async def connect(broker: RunningBroker, wires: list[Wire]) -> Wire:
    wire = await Wire.connect(broker)
    wires.append(wire)
    return wire


def check_snappy_ok(wire: Wire, *, first: bool = True) -> None:
    """The bytes since the upgrade (``first``) or since the last check are snappy framing
    holding exactly the OK frame; the first ones open with the stream identifier."""
    raw = bytes(wire.received)
    if first:
        assert raw.startswith(SNAPPY_STREAM_ID), raw
    else:
        # Snappy chunks stand alone: behind a stream identifier they decode by themselves.
        assert raw[:1] in (b"\x00", b"\x01"), raw
        raw = SNAPPY_STREAM_ID + raw
    assert snappy.StreamDecompressor().decompress(raw) == OK_FRAME
    assert bytes(wire.decoded) == OK_FRAME


def check_deflate_ok(wire: Wire, *, first: bool = True) -> None:
    """The bytes since the upgrade are raw deflate (no zlib header), sync-flushed, holding
    exactly the OK frame (later ones continue the same deflate stream)."""
    raw = bytes(wire.received)
    assert raw != OK_FRAME
    assert raw.endswith(SYNC_FLUSH_MARKER), raw
    if first:
        assert zlib.decompressobj(-15).decompress(raw) == OK_FRAME
        with pytest.raises(zlib.error):
            zlib.decompress(raw)  # not zlib-wrapped
    assert bytes(wire.decoded) == OK_FRAME


async def exercise(
    broker: RunningBroker, wire: Wire, consumer: Wire, check: Any, topic: str
) -> None:
    """PUB over the compressed stream: its OK comes back compressed; a consumer on another
    compressed stream receives the message and FINs it."""
    wire.received.clear()
    wire.decoded.clear()
    wire.sent.clear()
    message = b"compressed body " * 200
    await wire.pub(topic, message)
    await wire.expect_response(b"OK")
    assert len(wire.sent) < len(message) // 4  # the command went out compressed
    check(wire, first=False)
    attempts, message_id, data = await consumer.read_message()
    assert (attempts, data) == (1, message)
    await consumer.send(b"FIN " + message_id + b"\n")
    channel = broker.topics[topic].channels["c"]
    await broker_until(broker, lambda: not channel.in_flight, what="the FIN")


async def compressed_consumer(
    broker: RunningBroker, wires: list[Wire], topic: str, **identify: Any
) -> Wire:
    consumer = await connect(broker, wires)
    reply = await consumer.identify(**identify)
    if reply["snappy"]:
        consumer.start_snappy()
    else:
        consumer.start_deflate(reply["deflate_level"])
    await consumer.expect_response(b"OK")
    await consumer.send(f"SUB {topic} c\n".encode())
    await consumer.expect_response(b"OK")
    await consumer.send(b"RDY 5\n")
    return consumer


# -- raw upgrades ----------------------------------------------------------------------------------


async def test_snappy_upgrade_bytes(wires: list[Wire]) -> None:
    async with open_broker() as broker:
        consumer = await compressed_consumer(broker, wires, "s", snappy=True)
        wire = await connect(broker, wires)
        reply = await wire.identify(snappy=True)
        assert (reply["snappy"], reply["deflate"], reply["tls_v1"]) == (True, False, False)
        wire.start_snappy()
        await wire.expect_response(b"OK")
        check_snappy_ok(wire)
        await exercise(broker, wire, consumer, check_snappy_ok, "s")
        flags = {(c.snappy, c.deflate, c.tls) for c in broker.server.clients.values()}
        assert flags == {(True, False, False)}


async def test_deflate_upgrade_bytes(wires: list[Wire]) -> None:
    async with open_broker() as broker:
        consumer = await compressed_consumer(broker, wires, "d", deflate=True)
        wire = await connect(broker, wires)
        reply = await wire.identify(deflate=True, deflate_level=1)
        assert (reply["deflate"], reply["deflate_level"], reply["snappy"]) == (True, 1, False)
        wire.start_deflate(1)
        await wire.expect_response(b"OK")
        check_deflate_ok(wire)
        await exercise(broker, wire, consumer, check_deflate_ok, "d")
        flags = {(c.snappy, c.deflate, c.tls) for c in broker.server.clients.values()}
        assert flags == {(False, True, False)}


@pytest.mark.parametrize("compression", ["snappy", "deflate"])
async def test_tls_then_compression_upgrade_bytes(
    certs: Certificates, wires: list[Wire], compression: str
) -> None:
    """nsqd's order: JSON in clear, TLS handshake, OK over TLS, then OK over the compressor
    over TLS."""
    async with open_broker(**certs.broker_options()) as broker:
        consumer = await connect(broker, wires)
        await consumer.identify(tls_v1=True, **{compression: True})
        await consumer.start_tls(certs.client_context())
        await consumer.expect_response(b"OK")
        getattr(consumer, f"start_{compression}")()
        await consumer.expect_response(b"OK")
        await consumer.send(b"SUB both c\nRDY 5\n")
        await consumer.expect_response(b"OK")

        wire = await connect(broker, wires)
        reply = await wire.identify(tls_v1=True, **{compression: True})
        assert (reply["tls_v1"], reply[compression]) == (True, True)
        await wire.start_tls(certs.client_context())
        # Only the TLS OK has been read; the compressed OK may already be behind it.
        assert await wire.read_frame() == (0, b"OK")
        assert bytes(wire.decoded[: len(OK_FRAME)]) == OK_FRAME
        getattr(wire, f"start_{compression}")()
        await wire.expect_response(b"OK")
        check = check_snappy_ok if compression == "snappy" else check_deflate_ok
        check(wire)
        await exercise(broker, wire, consumer, check, "both")
        expected = (compression == "snappy", compression == "deflate", True)
        flags = {(c.snappy, c.deflate, c.tls) for c in broker.server.clients.values()}
        assert flags == {expected}


async def test_commands_pipelined_behind_identify_use_the_new_layer(wires: list[Wire]) -> None:
    """A client may send compressed commands right after IDENTIFY, before reading its reply:
    the broker must treat the bytes that follow IDENTIFY as compressed."""
    async with open_broker() as broker:
        wire = await connect(broker, wires)
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        pub = b"PUB early\n" + body(b"hello")
        early = compressor.compress(pub) + compressor.flush(zlib.Z_SYNC_FLUSH)
        identify = b'{"feature_negotiation": true, "deflate": true}'
        await wire.send(b"IDENTIFY\n" + body(identify) + early)
        frame_type, data = await wire.read_frame()
        assert frame_type == 0
        assert data.startswith(b"{")
        wire.start_deflate()
        await wire.expect_response(b"OK")  # the upgrade
        await wire.expect_response(b"OK")  # the PUB
        assert broker.topics["early"].message_count == 1


# -- negotiation -----------------------------------------------------------------------------------


async def test_snappy_and_deflate_together_are_refused(wires: list[Wire]) -> None:
    async with open_broker() as broker:
        wire = await connect(broker, wires)
        fields = b'{"feature_negotiation": true, "snappy": true, "deflate": true}'
        await wire.send(b"IDENTIFY\n" + body(fields))
        await wire.expect_error(
            b"E_IDENTIFY_FAILED cannot enable both deflate and snappy compression"
        )
        await wire.expect_closed()


@pytest.mark.parametrize(
    ("options", "request_", "negotiated"),
    [
        ({"snappy": False}, {"snappy": True}, {"snappy": False, "deflate": False}),
        ({"deflate": False}, {"deflate": True}, {"snappy": False, "deflate": False}),
        # With snappy disabled, asking for both is no conflict: deflate alone is negotiated.
        ({"snappy": False}, {"snappy": True, "deflate": True}, {"snappy": False, "deflate": True}),
    ],
)
async def test_disabled_compression_is_not_negotiated(
    wires: list[Wire],
    options: dict[str, Any],
    request_: dict[str, bool],
    negotiated: dict[str, bool],
) -> None:
    async with open_broker(**options) as broker:
        wire = await connect(broker, wires)
        reply = await wire.identify(**request_)
        assert {key: reply[key] for key in negotiated} == negotiated
        if negotiated["deflate"]:
            wire.start_deflate()
            await wire.expect_response(b"OK")
        wire.received.clear()
        await wire.pub("t", b"x")
        await wire.expect_response(b"OK")
        if not negotiated["deflate"]:
            # No upgrade: the next bytes on the wire are the PUB's OK, in clear.
            assert bytes(wire.received) == OK_FRAME


@pytest.mark.parametrize(
    ("max_level", "requested", "effective"),
    [(3, 9, 3), (6, 0, 6), (9, 9, 9), (2, 0, 2), (6, 1, 1)],
)
async def test_deflate_level_is_clamped_to_the_maximum(
    wires: list[Wire], max_level: int, requested: int, effective: int
) -> None:
    async with open_broker(max_deflate_level=max_level) as broker:
        wire = await connect(broker, wires)
        reply = await wire.identify(deflate=True, deflate_level=requested)
        assert (reply["deflate"], reply["deflate_level"]) == (True, effective)
        assert reply["max_deflate_level"] == max_level
        wire.start_deflate(effective)
        await wire.expect_response(b"OK")
        check_deflate_ok(wire)
        await wire.pub("t", b"x" * 1000)
        await wire.expect_response(b"OK")


async def test_deflate_level_reported_when_deflate_is_off(wires: list[Wire]) -> None:
    """nsqd reports the (clamped) level even when deflate is not negotiated."""
    async with open_broker(max_deflate_level=4) as broker:
        wire = await connect(broker, wires)
        reply = await wire.identify(deflate_level=9)
        assert (reply["deflate"], reply["deflate_level"]) == (False, 4)


# -- pynsq -----------------------------------------------------------------------------------------


CASES: dict[str, tuple[dict[str, Any], tuple[bool, bool, bool]]] = {
    "snappy": ({"snappy": True}, (False, True, False)),
    "deflate": ({"deflate": True, "deflate_level": 3}, (False, False, True)),
    "tls+snappy": ({"snappy": True, "tls": True}, (True, True, False)),
    "tls+deflate": ({"deflate": True, "tls": True}, (True, False, True)),
}


@pytest.mark.interop
@pytest.mark.parametrize("case", list(CASES))
async def test_pynsq_round_trip(certs: Certificates, case: str) -> None:
    conn = dict(CASES[case][0])
    layers = CASES[case][1]
    options: dict[str, Any] = {}
    if conn.pop("tls", False):
        conn.update(pynsq_tls_options(certs))
        options = certs.broker_options(tls_required="tcp-https")
    async with open_broker(**options) as broker:
        trip = await pynsq_round_trip(broker, "zip", **conn)
        assert trip.bodies == [b"one", b"three" * 1000, b"two"]
        assert trip.layers == [layers] * 2
        assert broker.topics["zip"].channels["c"].message_count == 3

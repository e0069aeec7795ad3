"""Shared helpers for the TLS, compression, auth and admin tests.

* :func:`make_certificates`: a CA (trustme), a server certificate for 127.0.0.1, a client
  certificate signed by that CA and one signed by an unrelated CA, written as PEM files.
* :class:`Wire`: a protocol-V2 client whose stream the test upgrades by hand, exactly as a
  client library does after IDENTIFY (TLS with ``trio.SSLStream`` around the raw socket, then
  snappy framing with python-snappy or raw deflate with zlib). It records the bytes that came
  off the current layer and what they decoded to, so tests can check the upgrade bytes.
"""

from __future__ import annotations

import json
import ssl
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import nsq
import snappy
import trio
import trustme

from tests.interop.pynsq_harness import BrokerProbe, Session, pynsq_against
from tests.support import body
from trinsq import RunningBroker

__all__ = [
    "CLIENT_COMMON_NAME",
    "OK_FRAME",
    "SNAPPY_STREAM_ID",
    "Certificates",
    "RoundTrip",
    "Wire",
    "broker_until",
    "make_certificates",
    "pynsq_round_trip",
    "pynsq_tls_options",
]

# The OK response frame: size 6, frame type 0 (response), "OK".
OK_FRAME: Final = bytes.fromhex("00000006 00000000 4f4b")
# The snappy framing format's stream identifier chunk ("sNaPpY").
SNAPPY_STREAM_ID: Final = bytes.fromhex("ff060000 734e61507059")
CLIENT_COMMON_NAME: Final = "trinsq-test-client"

FRAME_RESPONSE: Final = 0
FRAME_ERROR: Final = 1
FRAME_MESSAGE: Final = 2


@dataclass(frozen=True)
class Certificates:
    """PEM files for one test module, and the trustme objects behind them."""

    ca: trustme.CA
    ca_file: str
    server_cert_file: str
    server_key_file: str
    client: trustme.LeafCert  # signed by ``ca``, CN ``CLIENT_COMMON_NAME``
    client_cert_file: str
    client_key_file: str
    foreign_client: trustme.LeafCert  # signed by another CA

    def broker_options(self, **extra: Any) -> dict[str, Any]:
        """``open_broker`` keywords for TLS on loopback (HTTPS on an OS-chosen port)."""
        return {
            "tls_cert": self.server_cert_file,
            "tls_key": self.server_key_file,
            "https_address": "127.0.0.1:0",
            **extra,
        }

    def client_context(self, *, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
        """A client context trusting the CA, presenting ``cert`` if given."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        if cert is not None:
            cert.configure_cert(context)
        return context


def make_certificates(directory: Path) -> Certificates:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client.example", common_name=CLIENT_COMMON_NAME)
    foreign_client = trustme.CA().issue_cert("client.example", common_name="stranger")
    files = {
        "ca.pem": ca.cert_pem,
        "server.pem": server.cert_chain_pems[0],
        "server.key": server.private_key_pem,
        "client.pem": client.cert_chain_pems[0],
        "client.key": client.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(directory / name))
    return Certificates(
        ca=ca,
        ca_file=str(directory / "ca.pem"),
        server_cert_file=str(directory / "server.pem"),
        server_key_file=str(directory / "server.key"),
        client=client,
        client_cert_file=str(directory / "client.pem"),
        client_key_file=str(directory / "client.key"),
        foreign_client=foreign_client,
    )


class Wire:
    """A raw V2 connection whose layers (TLS, snappy, deflate) the test adds itself.

    Attributes:
        received: bytes read off the current top layer since the last upgrade (ciphertext
            is never seen: under TLS these are the bytes TLS delivered).
        decoded: what ``received`` decoded to (the same bytes when nothing decompresses).
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.socket = stream
        self.stream: trio.abc.Stream = stream
        self._encode: Callable[[bytes], bytes] | None = None
        self._decode: Callable[[bytes], bytes] | None = None
        self._buffer = bytearray()
        self.received = bytearray()
        self.decoded = bytearray()
        self.sent = bytearray()  # what went onto the current layer since the last upgrade

    @classmethod
    async def connect(cls, broker: RunningBroker, *, magic: bytes = b"  V2") -> Wire:
        host, port = broker.addresses.tcp
        wire = cls(await trio.open_tcp_stream(host, port))
        await wire.stream.send_all(magic)
        return wire

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)

    # -- sending -------------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        encoded = self._encode(data) if self._encode is not None else data
        self.sent += encoded
        await self.stream.send_all(encoded)

    async def identify(self, **fields: object) -> dict[str, Any]:
        """IDENTIFY with feature negotiation; return the JSON reply (read off the plain
        socket, before any upgrade)."""
        fields.setdefault("feature_negotiation", True)
        await self.send(b"IDENTIFY\n" + body(json.dumps(fields).encode()))
        frame_type, data = await self.read_frame()
        assert frame_type == FRAME_RESPONSE, data
        assert data.startswith(b"{"), data
        reply: dict[str, Any] = json.loads(data)
        return reply

    async def pub(self, topic: str, data: bytes) -> None:
        await self.send(f"PUB {topic}\n".encode() + body(data))

    # -- receiving -----------------------------------------------------------------------------

    async def _receive(self) -> None:
        data = bytes(await self.stream.receive_some(65536))
        if not data:
            raise EOFError("connection closed")
        self.received += data
        plain = self._decode(data) if self._decode is not None else data
        self.decoded += plain
        self._buffer += plain

    def _next_frame(self) -> tuple[int, bytes] | None:
        if len(self._buffer) < 4:
            return None
        (size,) = struct.unpack_from(">i", self._buffer)
        assert size >= 4, f"bad frame size {size}"
        if len(self._buffer) < 4 + size:
            return None
        (frame_type,) = struct.unpack_from(">i", self._buffer, 4)
        data = bytes(self._buffer[8 : 4 + size])
        del self._buffer[: 4 + size]
        return frame_type, data

    async def read_frame(
        self, timeout: float = 5.0, *, skip_heartbeats: bool = True
    ) -> tuple[int, bytes]:
        with trio.fail_after(timeout):
            while True:
                frame = self._next_frame()
                if frame is None:
                    await self._receive()
                    continue
                if skip_heartbeats and frame == (FRAME_RESPONSE, b"_heartbeat_"):
                    continue
                return frame

    async def expect_response(self, data: bytes) -> None:
        assert await self.read_frame() == (FRAME_RESPONSE, data)

    async def expect_error(self, data: bytes) -> None:
        assert await self.read_frame() == (FRAME_ERROR, data)

    async def read_message(self) -> tuple[int, bytes, bytes]:
        """The next message frame as (attempts, id, body)."""
        frame_type, data = await self.read_frame()
        assert frame_type == FRAME_MESSAGE, (frame_type, data)
        _timestamp, attempts, message_id = struct.unpack_from(">qH16s", data)
        return attempts, message_id, data[26:]

    async def expect_closed(self, timeout: float = 5.0) -> None:
        """The broker closes the connection, sending nothing more (an unclean TLS close or a
        reset counts as closed too)."""
        assert not self._buffer, bytes(self._buffer)
        with trio.fail_after(timeout):
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                return
        assert data == b"", f"expected the connection to close, got {bytes(data)!r}"

    # -- upgrades ------------------------------------------------------------------------------

    def _new_layer(self) -> bytes:
        """Start recording afresh; return plain bytes already buffered (they belong to the new
        layer, undecoded)."""
        leftover = bytes(self._buffer)
        self._buffer.clear()
        self.received.clear()
        self.decoded.clear()
        self.sent.clear()
        return leftover

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Run the client side of the TLS handshake on the socket (after the JSON reply)."""
        leftover = self._new_layer()
        assert not leftover, f"bytes arrived before the TLS handshake: {leftover!r}"
        assert self._encode is None
        assert self._decode is None
        tls = trio.SSLStream(self.stream, context, server_hostname="127.0.0.1")
        self.stream = tls
        with trio.fail_after(5):
            await tls.do_handshake()

    def start_snappy(self) -> None:
        """Speak snappy framing from now on, decoding with python-snappy's StreamDecompressor."""
        compressor = snappy.StreamCompressor()
        decompressor = snappy.StreamDecompressor()
        self._start(compressor.add_chunk, decompressor.decompress)

    def start_deflate(self, level: int = 6) -> None:
        """Speak raw deflate (no zlib header) from now on, sync-flushing every send."""
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        decompressor = zlib.decompressobj(-15)

        def encode(data: bytes) -> bytes:
            return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)

        self._start(encode, decompressor.decompress)

    def _start(self, encode: Callable[[bytes], bytes], decode: Callable[[bytes], bytes]) -> None:
        assert self._encode is None, "only one compression layer"
        leftover = self._new_layer()
        self._encode = lambda data: bytes(encode(data))
        self._decode = lambda data: bytes(decode(data))
        if leftover:
            self.received += leftover
            plain = self._decode(leftover)
            self.decoded += plain
            self._buffer += plain


# -- waiting on the broker and pynsq round trips ---------------------------------------------------


async def broker_until(
    broker: RunningBroker, predicate: Callable[[], bool], *, what: str = "a condition"
) -> None:
    """Wait until ``predicate()`` holds, checked after every Trio task step (no polling)."""
    probe = BrokerProbe(broker)
    trio.lowlevel.add_instrument(probe)
    try:
        await probe.until(predicate, what=what)
    finally:
        trio.lowlevel.remove_instrument(probe)


@dataclass(frozen=True)
class RoundTrip:
    """What a pynsq round trip saw: the bodies delivered (sorted), and each broker-side
    client's (tls, snappy, deflate) flags while the reader and writer were connected."""

    bodies: list[bytes]
    layers: list[tuple[bool, bool, bool]]


def pynsq_tls_options(certs: Certificates, *, client_cert: bool = False) -> dict[str, Any]:
    """pynsq connection keywords for TLS trusting ``certs``' CA."""
    options: dict[str, Any] = {
        # pynsq's default is the deprecated PROTOCOL_TLSv1_2 (a DeprecationWarning, i.e. an
        # error under this suite's filterwarnings).
        "ssl_version": ssl.PROTOCOL_TLS_CLIENT,
        "ca_certs": certs.ca_file,
    }
    if client_cert:
        options["certfile"] = certs.client_cert_file
        options["keyfile"] = certs.client_key_file
    return {"tls_v1": True, "tls_options": options}


async def pynsq_round_trip(broker: RunningBroker, topic: str, **conn: Any) -> RoundTrip:
    """A pynsq Reader and Writer with connection options ``conn``: PUB one and MPUB two
    messages, wait until the reader has handled all three."""

    async def scenario(s: Session) -> RoundTrip:
        got: list[bytes] = []

        def handler(message: nsq.Message) -> bool:
            got.append(message.body)
            s.notify()
            return True

        await s.subscribed(s.reader(topic, "c", handler, **conn))
        writer = await s.writer(**conn)
        assert await s.pub(writer, topic, b"one") == b"OK"
        assert await s.mpub(writer, topic, [b"two", b"three" * 1000]) == b"OK"
        await s.until(lambda: len(got) >= 3, what="the messages")
        layers = s.in_trio(
            lambda: [(c.tls, c.snappy, c.deflate) for c in broker.server.clients.values()]
        )
        return RoundTrip(sorted(got), layers)

    async with pynsq_against(broker) as pynsq:
        return await pynsq.run(scenario)

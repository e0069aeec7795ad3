"""Upgrading a V2 connection's stream after IDENTIFY negotiated TLS, snappy or deflate.

nsqd's order: TLS first, then one compressor over it, each confirmed with an OK frame sent
over the new layer. Bytes the parser already held past the IDENTIFY belong to the new
layers and are replayed into the lowest one. The caller parks its pump meanwhile (the JSON
reply must go out in the clear first) and writes to the returned stream afterwards.
"""

from __future__ import annotations

from typing import Final

import trio

from ...common._streams import DeflateStream, PrefixedStream, SnappyStream
from ...protocol import OK_FRAME, IdentifyResult
from ..config._tls import tls_version_name
from ..core._services import BrokerServices
from ._connection_auth import common_name
from ._session import V2Session

__all__ = ["TLS_HANDSHAKE_TIMEOUT", "upgrade_stream"]

TLS_HANDSHAKE_TIMEOUT: Final = 5.0  # nsqd's deadline for the upgrade handshake


async def upgrade_stream(
    stream: trio.abc.Stream,
    replay: bytes,
    result: IdentifyResult,
    server: BrokerServices,
    session: V2Session,
) -> trio.abc.Stream:
    """Wrap ``stream`` in what ``result`` negotiated, telling ``session`` what was
    established; return the outermost layer.

    Raises:
        trio.TooSlowError: the TLS handshake took longer than nsqd allows.
        trio.BrokenResourceError: the handshake or an OK frame failed on the wire.
    """
    if result.tls_v1:
        context = server.ssl_context
        assert context is not None, "tls_v1 is only negotiated with a TLS config"
        transport = PrefixedStream(stream, replay) if replay else stream
        replay = b""
        tls = trio.SSLStream(transport, context, server_side=True)
        with trio.fail_after(TLS_HANDSHAKE_TIMEOUT):
            await tls.do_handshake()
        cipher = tls.cipher()
        session.tls_established(
            common_name=common_name(tls),
            version=tls_version_name(tls.version()),
            cipher_suite=cipher[0] if cipher else "",
        )
        stream = tls
        await stream.send_all(OK_FRAME)
    if result.snappy or result.deflate:
        transport = PrefixedStream(stream, replay) if replay else stream
        if result.snappy:
            stream = SnappyStream(transport)
        else:
            stream = DeflateStream(transport, result.deflate_level)
        session.compression_established(snappy=result.snappy)
        await stream.send_all(OK_FRAME)
    return stream

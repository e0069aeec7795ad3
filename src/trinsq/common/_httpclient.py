"""A small HTTP/1.1 GET client on trio and h11, for the few requests trinsq makes itself
(a broker asking nsqlookupd for a new topic's channels, ``trinsq stat`` polling /stats)."""

from __future__ import annotations

import ssl
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import attrs
import trio

from ..protocol import JsonError, decode_json
from ._logging import error_text

__all__ = [
    "HttpClientError",
    "HttpResponse",
    "HttpTransportError",
    "get",
    "get_json",
    "get_json_url",
]

_MAX_RESPONSE: Final = 5 * 1024 * 1024


class HttpClientError(Exception):
    """The request failed: connection, timeout, status other than 200, or a bad body."""


class HttpTransportError(HttpClientError):
    """No complete answer: the connection could not be made (``stage`` "dial") or failed or
    timed out during the exchange ("request"); ``error`` is what was raised."""

    def __init__(
        self, message: str, stage: Literal["dial", "request"], error: BaseException
    ) -> None:
        super().__init__(message)
        self.stage: Literal["dial", "request"] = stage
        self.error = error


@attrs.frozen
class HttpResponse:
    """A complete answer, whatever its status."""

    status: int
    reason: str
    body: bytes


async def get(
    host: str,
    port: int,
    target: str,
    *,
    connect_timeout: float = 2.0,
    request_timeout: float = 5.0,
    tls: ssl.SSLContext | None = None,
) -> HttpResponse:
    """GET ``target`` with the nsq Accept header (so nsqd and nsqlookupd answer in their V1
    format) and return the answer whatever its status; ``tls`` makes it HTTPS.

    Raises:
        HttpTransportError: the connection failed or a timeout passed.
        HttpClientError: the body is larger than 5 MiB.
    """
    import h11  # with dataclasses ~0.4 MB, for the few brokers that query a registry or auth

    where = f"GET {host}:{port}{target}"
    try:
        with trio.fail_after(connect_timeout):
            stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
            if tls is not None:
                stream = trio.SSLStream(stream, tls, server_hostname=host)
                await stream.do_handshake()
    except (OSError, trio.TooSlowError, trio.BrokenResourceError) as error:
        raise HttpTransportError(f"{where} - {error_text(error)}", "dial", error) from None
    try:
        async with stream:
            with trio.fail_after(request_timeout):
                return await _exchange(stream, host, port, target)
    except (OSError, trio.TooSlowError, trio.BrokenResourceError, h11.ProtocolError) as error:
        raise HttpTransportError(f"{where} - {error_text(error)}", "request", error) from None


async def get_json(
    host: str,
    port: int,
    target: str,
    *,
    connect_timeout: float = 2.0,
    request_timeout: float = 5.0,
    tls: ssl.SSLContext | None = None,
) -> Any:
    """GET ``target`` (as :func:`get` does) and decode the JSON body, as nsq's http_api
    client does.

    Raises:
        HttpClientError: for any failure; the caller treats it as "no answer".
    """
    response = await get(
        host,
        port,
        target,
        connect_timeout=connect_timeout,
        request_timeout=request_timeout,
        tls=tls,
    )
    if response.status != 200:
        raise HttpClientError(f"GET {host}:{port}{target} - status {response.status}")
    try:
        return decode_json(response.body)
    except JsonError as error:
        raise HttpClientError(f"GET {host}:{port}{target} - invalid JSON - {error}") from None


async def get_json_url(
    url: str,
    *,
    connect_timeout: float = 2.0,
    request_timeout: float = 5.0,
    tls: ssl.SSLContext | None = None,
) -> Any:
    """:func:`get_json` for a full ``http://`` or ``https://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpClientError(f"unsupported URL {url}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    context = (tls or ssl.create_default_context()) if secure else None
    return await get_json(
        parts.hostname,
        port,
        target,
        connect_timeout=connect_timeout,
        request_timeout=request_timeout,
        tls=context,
    )


async def _exchange(stream: trio.abc.Stream, host: str, port: int, target: str) -> HttpResponse:
    import h11

    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="GET",
        target=target,
        headers=[
            ("Host", f"{host}:{port}"),
            ("Accept", "application/vnd.nsq; version=1.0"),
            ("Connection", "close"),
        ],
    )
    await stream.send_all(connection.send(request) + connection.send(h11.EndOfMessage()))
    status = 0
    reason = ""
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            connection.receive_data(bytes(data))
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            reason = event.reason.decode("latin-1")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > _MAX_RESPONSE:
                raise HttpClientError(f"GET {target} - response too large")
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    return HttpResponse(status, reason, bytes(body))

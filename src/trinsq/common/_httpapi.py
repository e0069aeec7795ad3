"""HTTP plumbing shared by the broker's and the registry's APIs (nsq's internal/http_api).

Responses follow ``RespondV1``: an ``X-NSQ-Content-Type`` header, strings written raw, other
values as Go-style JSON, errors as ``{"message": "<TEXT>"}``; unknown paths 404 NOT_FOUND,
wrong methods 405 METHOD_NOT_ALLOWED (httprouter). Parameters come from the query string
only, parsed by Go's rules. Apps are served by hypercorn inside the caller's trio run.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final

import attrs
import trio
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from ..protocol import QueryError, is_valid_channel_name, is_valid_topic_name, parse_go_query
from . import _h11compat
from ._h11compat import FastAnswer, FastRoute
from ._json import go_json
from ._options import split_host_port
from ._startup import bind_http_socket

__all__ = [
    "BOOL_PARAMS",
    "JSON_TYPE",
    "TEXT_TYPE",
    "Answer",
    "FastRoute",
    "HttpError",
    "answer_error",
    "answer_v1",
    "fast_route",
    "first_param",
    "new_app",
    "parse_query",
    "query_params",
    "read_body",
    "respond",
    "respond_error",
    "respond_v1",
    "serve_app",
    "to_response",
    "topic_channel_args",
]

JSON_TYPE: Final = "application/json; charset=utf-8"
TEXT_TYPE: Final = "text/plain; charset=utf-8"
BOOL_PARAMS: Final = {"true": True, "1": True, "false": False, "0": False}


class HttpError(Exception):
    """An nsq API error: status code and the ``message`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


def respond(status: int, body: bytes, content_type: str | None, *, v1: bool = True) -> Response:
    response = Response(body, status=status)
    if content_type is None:
        del response.headers["Content-Type"]  # Go sets none for an empty body
    else:
        response.headers["Content-Type"] = content_type
    if v1:
        response.headers["X-NSQ-Content-Type"] = "nsq; version=1.0"
    return response


@attrs.frozen
class Answer:
    """An answer before it is a quart response or the fast lane's bytes."""

    status: int
    body: bytes
    content_type: str | None
    v1: bool = True

    def wire_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as quart hands them to hypercorn for :func:`respond`, in that order."""
        headers = []
        if self.content_type is not None:
            headers.append((b"content-type", self.content_type.encode()))
        headers.append((b"content-length", b"%d" % len(self.body)))
        if self.v1:
            headers.append((b"x-nsq-content-type", b"nsq; version=1.0"))
        return headers


def answer_v1(data: Any) -> Answer:
    """RespondV1 for a 200: raw string, empty for None, otherwise JSON."""
    if data is None:
        return Answer(200, b"", None)
    if isinstance(data, str | bytes):
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        return Answer(200, raw, TEXT_TYPE)  # what Go's content sniffing says for text
    return Answer(200, go_json(data), JSON_TYPE)


def answer_error(error: HttpError) -> Answer:
    return Answer(error.status, go_json({"message": error.message}), JSON_TYPE)


def to_response(answer: Answer) -> Response:
    return respond(answer.status, answer.body, answer.content_type, v1=answer.v1)


def respond_v1(data: Any) -> Response:
    return to_response(answer_v1(data))


def respond_error(error: HttpError) -> Response:
    return to_response(answer_error(error))


def fast_route(handler: Callable[[bytes, bytes], Answer], log: logging.Logger) -> FastRoute:
    """``handler(query, body)`` as a fast-lane route: its :class:`HttpError` answered as the
    app answers one, any other error logged and answered 500, as the app's handler does."""

    def route(query: bytes, body: bytes) -> FastAnswer:
        try:
            answer = handler(query, body)
        except HttpError as error:
            answer = answer_error(error)
        except Exception:
            log.exception("HTTP: error handling a fast-lane request")
            answer = answer_error(HttpError(500, "INTERNAL_ERROR"))
        return answer.status, answer.wire_headers(), answer.body

    return route


def parse_query(query_string: bytes) -> dict[str, list[str]]:
    """Query parameters by Go's rules; 400 INVALID_REQUEST when malformed."""
    try:
        return parse_go_query(query_string)
    except QueryError:
        raise HttpError(400, "INVALID_REQUEST") from None


def query_params() -> dict[str, list[str]]:
    """The current request's query parameters; 400 INVALID_REQUEST when malformed."""
    return parse_query(request.query_string)


def first_param(params: dict[str, list[str]], key: str) -> str | None:
    """The value Go's ``Get`` returns: the first one, or None when the key is absent."""
    values = params.get(key)
    return values[0] if values else None


def topic_channel_args(params: dict[str, list[str]]) -> tuple[str, str]:
    """nsq's GetTopicChannelArgs: both names present and valid, with its error texts."""
    topic = first_param(params, "topic")
    if topic is None:
        raise HttpError(400, "MISSING_ARG_TOPIC")
    if not is_valid_topic_name(topic):
        raise HttpError(400, "INVALID_ARG_TOPIC")
    channel = first_param(params, "channel")
    if channel is None:
        raise HttpError(400, "MISSING_ARG_CHANNEL")
    if not is_valid_channel_name(channel):
        raise HttpError(400, "INVALID_ARG_CHANNEL")
    return topic, channel


async def read_body(limit: int) -> bytes | None:
    """The current request's body, or None once it is longer than ``limit``."""
    data = bytearray()
    async for chunk in request.body:
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


def new_app(name: str, log: logging.Logger) -> QuartTrio:
    """A quart-trio app with nsq's error conventions."""
    app = QuartTrio(name)
    app.config["MAX_CONTENT_LENGTH"] = None  # handlers apply nsq's own limits

    @app.after_request
    async def drain_body(response: Response) -> Response:
        # Read (and drop) what the handler left of the body before answering: once the answer
        # is out hypercorn keeps queueing the rest to the app, nobody takes it, and the
        # connection stalls, so the client's next request on it would never be answered.
        async for _ in request.body:
            pass
        return response

    @app.errorhandler(HttpError)
    async def api_error(error: HttpError) -> Response:
        return respond_error(error)

    @app.errorhandler(HTTPException)
    async def routing_error(error: HTTPException) -> Response:
        # httprouter's answers: 404 NOT_FOUND, 405 METHOD_NOT_ALLOWED (with Allow).
        status = error.code or 500
        text = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "INTERNAL_ERROR")
        response = respond_error(HttpError(status, text))
        allowed = getattr(error, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.errorhandler(Exception)
    async def internal_error(error: Exception) -> Response:
        log.exception("HTTP: error handling %s %s", request.method, request.path)
        return respond_error(HttpError(500, "INTERNAL_ERROR"))

    return app


class _TlsConfig(_h11compat.GoStyleConfig):
    """hypercorn settings that serve HTTPS with the server's own SSL context."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._context = context
        self.certfile = self.keyfile = "in-memory"  # marks the bind as TLS for hypercorn

    def create_ssl_context(self) -> ssl.SSLContext:
        return self._context


async def serve_app(
    app: QuartTrio,
    address: str,
    log: logging.Logger,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout: float,
    tls: ssl.SSLContext | None = None,
    fast_routes: dict[tuple[bytes, bytes], FastRoute] | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``address`` (HTTPS with ``tls``) until ``shutdown_trigger`` returns;
    reports the bound ``(host, port)`` through ``task_status``. ``fast_routes`` (by method
    and path, see :func:`fast_route`) are answered by the fast lane, and by ``app`` only when
    a request is not plain enough for it."""
    split_host_port(address, "http_address")
    _h11compat.install()  # status lines as Go writes them: "HTTP/1.1 404 Not Found"
    config = _h11compat.GoStyleConfig() if tls is None else _TlsConfig(tls)
    config.fast_routes = dict(fast_routes or {})
    # Bound here so that a busy address raises a StartupError naming it, leaking nothing.
    config.bind = [f"fd://{bind_http_socket(address).detach()}"]
    config.graceful_timeout = graceful_timeout
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = logging.getLogger("trinsq.http")
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, app, config, shutdown_trigger=shutdown_trigger)
        )
        # hypercorn reports e.g. "http://127.0.0.1:4151"
        host, port = split_host_port(binds[0].partition("://")[2])
        log.info("%s: listening on %s:%d", "HTTP" if tls is None else "HTTPS", host, port)
        task_status.started((host, port))

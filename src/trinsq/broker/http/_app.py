"""The broker's HTTP API (nsqd/http.go) as a quart-trio app, served by hypercorn in the
broker's own process (``_serve``); /ping and /pub also take the fast lane (``_endpoints``).

Responses follow nsqd's conventions (internal/http_api ``RespondV1``): an ``X-NSQ-Content-Type``
header, strings written raw, other values as Go-style JSON, errors as
``{"message": "<TEXT>"}``. Parameters come from the query string only, parsed by Go's rules.
"""

from __future__ import annotations

import gc
import hmac
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Final

import trio
from quart import Response, request
from quart_trio import QuartTrio

from ..._version import NSQ_COMPAT_VERSION
from ...common._freememory import return_free_memory
from ...common._httpanswers import (
    BOOL_PARAMS,
    JSON_TYPE,
    HttpError,
    first_param,
    topic_channel_args,
)
from ...common._httpapi import (
    new_app,
    query_params,
    read_body,
    respond,
    respond_v1,
    to_response,
)
from ...protocol import (
    HttpMpubReader,
    ProtocolError,
    is_valid_topic_name,
)
from ..core._broker import PUBLISH_STEP
from ..core._services import BrokerServices
from ..core._stats import stats_document
from ..monitoring._metrics import CONTENT_TYPE as METRICS_TYPE
from ..monitoring._metrics import render_metrics
from ._endpoints import BrokerEndpoints, answered_as_http
from ._jsonedge import go_json
from ._openapi import openapi_document
from ._statsjson import stats_json
from ._statstext import render_text_stats

__all__ = ["BrokerHttpApi", "create_app"]

log = logging.getLogger("trinsq.broker")


# GET /stats?format=json lets other tasks run after about this many channels (~1-2 ms).
STATS_STEP: Final = 500


class BrokerHttpApi(BrokerEndpoints):
    """Handlers for every nsqd endpoint, bound to one broker, as quart routes."""

    # -- helpers ---------------------------------------------------------------------------------

    def _existing_channel_args(self) -> tuple[str, str]:
        """getExistingTopicFromQuery: valid names of an existing topic, and a channel name.

        Raises:
            HttpError: a missing or invalid name (400), no such topic (404).
        """
        topic_name, channel_name = topic_channel_args(query_params())
        with answered_as_http():
            self.server.core.topic(topic_name)
        return topic_name, channel_name

    # -- endpoints -------------------------------------------------------------------------------

    async def ping(self) -> Response:
        return to_response(self.ping_answer(request.query_string, b""))

    async def info(self) -> Response:
        return respond_v1(self.server.info())

    async def pub(self) -> Response:
        limit = self.options.max_msg_size
        if (request.content_length or 0) > limit:
            raise HttpError(413, "MSG_TOO_BIG")
        body = await read_body(limit)
        if body is None:
            raise HttpError(413, "MSG_TOO_BIG")
        return to_response(self.pub_answer(request.query_string, body))

    async def mpub(self) -> Response:
        limit = self.options.max_body_size
        if (request.content_length or 0) > limit:
            raise HttpError(413, "BODY_TOO_BIG")
        params = query_params()
        topic_name = self.topic_for_publish(params)
        # nsq.io documents defer for /mpub too; nsqd 1.3.0 ignores it, trinsq honours it.
        defer_ms = self.defer_ms(params)
        binary_value = first_param(params, "binary")
        # Text is the default; an unrecognised value means binary (nsqd keeps that quirk).
        binary = binary_value is not None and BOOL_PARAMS.get(binary_value, True)
        body = await read_body(limit)
        if body is None:
            raise HttpError(413, "BODY_TOO_BIG")
        # Up to 2.6 million messages: read and publish them a step at a time, letting
        # every other client have its turn in between.
        reader = HttpMpubReader(body, self.server.limits, binary=binary)
        try:
            while not reader.step(PUBLISH_STEP):
                await trio.lowlevel.checkpoint()
        except ProtocolError as error:
            raise HttpError(413, error.code[2:]) from None
        with answered_as_http():
            publication = self.server.core.start_publish(topic_name, reader.bodies(), defer_ms)
            while not publication.finished:
                publication.step(PUBLISH_STEP)
                await trio.lowlevel.checkpoint()
        return respond_v1("OK")

    async def stats(self) -> Response:
        params = query_params()
        include_clients = BOOL_PARAMS.get(first_param(params, "include_clients") or "", True)
        include_mem = BOOL_PARAMS.get(first_param(params, "include_mem") or "", True)
        server = self.server
        topic = first_param(params, "topic") or ""
        channel = first_param(params, "channel") or ""
        if first_param(params, "format") == "json":
            pieces: list[str] = []
            channels = 0
            for piece, count in stats_json(
                server.core.graph.topics,
                server.core.clients.values(),
                version=NSQ_COMPAT_VERSION,
                health=server.health,
                start_time=server.start_time,
                topic=topic,
                channel=channel,
                include_clients=include_clients,
                include_mem=include_mem,
            ):
                pieces.append(piece)
                channels += count
                if channels >= STATS_STEP:  # thousands of channels: others run in between
                    channels = 0
                    await trio.lowlevel.checkpoint()
            body = "".join(pieces).encode("utf-8", "surrogateescape")
            return respond(200, body, JSON_TYPE)
        topics, producers = server.core.stats(
            topic=topic, channel=channel, include_clients=include_clients
        )
        document = stats_document(server.health, server.start_time, topics, producers, include_mem)
        return respond_v1(render_text_stats(document, server.start_time))

    async def topic_create(self) -> Response:
        self.server.core.create_topic(self.topic_for_publish(query_params()))
        return respond_v1(None)

    def _existing_topic_name(self, *, validate: bool) -> str:
        """The ``topic`` parameter naming an existing topic (nsqd validates it for some
        endpoints only).

        Raises:
            HttpError: missing (400), invalid (400, when validated), no such topic (404).
        """
        name = first_param(query_params(), "topic")
        if name is None:
            raise HttpError(400, "MISSING_ARG_TOPIC")
        if validate and not is_valid_topic_name(name):
            raise HttpError(400, "INVALID_TOPIC")
        with answered_as_http():
            self.server.core.topic(name)
        return name

    async def topic_delete(self) -> Response:
        name = self._existing_topic_name(validate=False)  # nsqd does not validate it here
        with answered_as_http():
            self.server.core.delete_topic(name)
        return_free_memory()  # what it held may have been hundreds of MB
        return respond_v1(None)

    async def topic_empty(self) -> Response:
        name = self._existing_topic_name(validate=True)
        with answered_as_http():
            self.server.core.empty_topic(name)
        return_free_memory()  # what it held may have been hundreds of MB
        return respond_v1(None)

    async def topic_pause(self, pause: bool) -> Response:
        name = self._existing_topic_name(validate=False)
        with answered_as_http():
            self.server.core.pause_topic(name, pause)
        return respond_v1(None)

    async def channel_create(self) -> Response:
        topic_name, channel_name = self._existing_channel_args()
        with answered_as_http():
            self.server.core.create_channel(topic_name, channel_name)
        return respond_v1(None)

    async def channel_delete(self) -> Response:
        topic_name, channel_name = self._existing_channel_args()
        with answered_as_http():
            self.server.core.delete_channel(topic_name, channel_name)
        return_free_memory()  # what it held may have been hundreds of MB
        return respond_v1(None)

    async def channel_empty(self) -> Response:
        topic_name, channel_name = self._existing_channel_args()
        with answered_as_http():
            self.server.core.empty_channel(topic_name, channel_name)
        return_free_memory()  # what it held may have been hundreds of MB
        return respond_v1(None)

    async def channel_pause(self, pause: bool) -> Response:
        topic_name, channel_name = self._existing_channel_args()
        with answered_as_http():
            self.server.core.pause_channel(topic_name, channel_name, pause)
        return respond_v1(None)

    async def config(self, opt: str) -> Response:
        if request.method == "PUT":
            body = await read_body(self.options.max_msg_size)
            if not body:
                raise HttpError(413, "INVALID_VALUE")
            try:
                applied = self.server.set_config(opt, body)
            except KeyError:
                raise HttpError(400, "INVALID_OPTION") from None
            if not applied:
                raise HttpError(400, "INVALID_VALUE")
        value = self.server.config_value(opt)
        if value is None:
            raise HttpError(400, "INVALID_OPTION")
        return respond_v1(value)

    async def free_memory(self) -> Response:
        # The Python counterpart of Go's debug.FreeOSMemory: collect, then give back.
        gc.collect()
        return_free_memory()
        return respond(200, b"", None, v1=False)

    # trinsq's own endpoints, not nsqd's: no X-NSQ-Content-Type

    async def metrics(self) -> Response:
        return respond(200, render_metrics(self.server).encode(), METRICS_TYPE, v1=False)

    async def openapi(self) -> Response:
        return respond(200, go_json(openapi_document(self.options)), JSON_TYPE, v1=False)


_ADMIN_PREFIXES: Final = ("/topic/", "/channel/", "/debug/")


def _is_admin_request() -> bool:
    """What the optional admin protection covers: every call that changes the broker but
    publishing (topic and channel administration, PUT /config, /debug)."""
    path = request.path
    return path.startswith(_ADMIN_PREFIXES) or (
        path.startswith("/config/") and request.method == "PUT"
    )


def create_app(
    server: BrokerServices, *, require_tls_port: int | None = None, secure: bool = False
) -> QuartTrio:
    """Build the quart-trio app serving ``server``'s HTTP API.

    With ``require_tls_port`` (--tls-required=true) every request is refused with nsqd's 403
    pointing at the HTTPS port, which nsq's own HTTP clients follow. ``secure`` says this app
    serves the HTTPS listener.
    """
    app = new_app("trinsq.broker", log)
    api = BrokerHttpApi(server)
    options = server.options
    if require_tls_port is not None:
        # nsqd writes this body by hand: note the spaces after the colons.
        body = f'{{"message": "TLS_REQUIRED", "https_port": {require_tls_port}}}'.encode()

        @app.before_request
        async def tls_required() -> Response:
            return respond(403, body, JSON_TYPE)

    # Registered after the TLS-required refusal, which nsqd gives to every request.
    if options.http_admin_token or options.http_admin_client_cert:
        expected = f"Bearer {options.http_admin_token}".encode()

        @app.before_request
        async def protect_admin() -> None:
            if not _is_admin_request():
                return
            if options.http_admin_token:
                given = request.headers.get("Authorization", "").encode()
                if not hmac.compare_digest(given, expected):
                    raise HttpError(401, "UNAUTHORIZED")
            # The HTTPS listener takes only clients with a verified certificate in this mode.
            if options.http_admin_client_cert and not secure:
                raise HttpError(403, "CLIENT_CERT_REQUIRED")

    routes: list[tuple[str, str, Callable[..., Awaitable[Response]]]] = [
        ("/ping", "GET", api.ping),
        ("/info", "GET", api.info),
        ("/pub", "POST", api.pub),
        ("/mpub", "POST", api.mpub),
        ("/stats", "GET", api.stats),
        ("/topic/create", "POST", api.topic_create),
        ("/topic/delete", "POST", api.topic_delete),
        ("/topic/empty", "POST", api.topic_empty),
        ("/topic/pause", "POST", partial(api.topic_pause, True)),
        ("/topic/unpause", "POST", partial(api.topic_pause, False)),
        ("/channel/create", "POST", api.channel_create),
        ("/channel/delete", "POST", api.channel_delete),
        ("/channel/empty", "POST", api.channel_empty),
        ("/channel/pause", "POST", partial(api.channel_pause, True)),
        ("/channel/unpause", "POST", partial(api.channel_pause, False)),
        ("/debug/freememory", "POST", api.free_memory),
        ("/metrics", "GET", api.metrics),
        ("/openapi.json", "GET", api.openapi),
    ]
    for path, method, handler in routes:
        app.add_url_rule(path, path, handler, methods=[method])
    app.add_url_rule("/config/<opt>", "config", api.config, methods=["GET", "PUT"])
    return app

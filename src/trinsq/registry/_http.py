"""The registry's HTTP API (nsqlookupd/http.go), on the shared nsq HTTP conventions.

Go builds these replies from maps, so their keys come out sorted; the records inside
(producers, nodes) keep nsqlookupd's struct order through the attrs models. The read
endpoints answer with bodies cached until the registrations change (_views.py), through the
HTTP fast lane as well as quart.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio
from quart import Response, request
from quart_trio import QuartTrio

from .._version import NSQ_COMPAT_VERSION
from ..common._httpapi import (
    JSON_TYPE,
    TEXT_TYPE,
    Answer,
    FastRoute,
    HttpError,
    fast_route,
    first_param,
    new_app,
    parse_query,
    query_params,
    respond,
    respond_v1,
    serve_app,
    to_response,
    topic_channel_args,
)
from ..protocol import is_valid_topic_name
from ._db import RegistrationDB
from ._options import RegistryOptions
from ._views import RegistryViews

__all__ = ["RegistryState", "create_app", "serve_http"]

log = logging.getLogger("trinsq.registry")


class RegistryState(Protocol):
    """What the HTTP API uses of the running registry: its options and its database (the
    server implements it; importing the server here would close an import circle)."""

    options: RegistryOptions
    db: RegistrationDB


def _topic(params: dict[str, list[str]]) -> str:
    topic = first_param(params, "topic")
    if topic is None:
        raise HttpError(400, "MISSING_ARG_TOPIC")
    return topic


class RegistryHttpApi:
    """Handlers for every nsqlookupd endpoint, bound to one registry."""

    def __init__(self, server: RegistryState) -> None:
        self.server = server
        self.db = server.db
        options = server.options
        self.views = RegistryViews(
            server.db,
            inactive_timeout=options.inactive_producer_timeout,
            tombstone_lifetime=options.tombstone_lifetime,
        )

    async def ping(self) -> Response:
        return respond(200, b"OK", TEXT_TYPE, v1=False)

    async def info(self) -> Response:
        return respond_v1({"version": NSQ_COMPAT_VERSION})

    # The read endpoints: cached bodies, answered by the fast lane too (see fast_routes).

    def topics_answer(self, query: bytes, body: bytes) -> Answer:
        parse_query(query)  # a malformed query is still a 400
        return Answer(200, self.views.topics(), JSON_TYPE)

    def channels_answer(self, query: bytes, body: bytes) -> Answer:
        return Answer(200, self.views.channels(_topic(parse_query(query))), JSON_TYPE)

    def lookup_answer(self, query: bytes, body: bytes) -> Answer:
        found = self.views.lookup(_topic(parse_query(query)))
        if found is None:
            raise HttpError(404, "TOPIC_NOT_FOUND")
        return Answer(200, found, JSON_TYPE)

    def nodes_answer(self, query: bytes, body: bytes) -> Answer:
        return Answer(200, self.views.nodes(), JSON_TYPE)

    async def topics(self) -> Response:
        return to_response(self.topics_answer(request.query_string, b""))

    async def channels(self) -> Response:
        return to_response(self.channels_answer(request.query_string, b""))

    async def lookup(self) -> Response:
        return to_response(self.lookup_answer(request.query_string, b""))

    async def nodes(self) -> Response:
        return to_response(self.nodes_answer(request.query_string, b""))

    async def topic_create(self) -> Response:
        topic = _topic(query_params())
        if not is_valid_topic_name(topic):
            raise HttpError(400, "INVALID_ARG_TOPIC")
        self.db.create_topic(topic)
        return respond_v1(None)

    async def topic_delete(self) -> Response:
        self.db.delete_topic(_topic(query_params()))
        return respond_v1(None)

    async def topic_tombstone(self) -> Response:
        params = query_params()
        topic = _topic(params)
        node = first_param(params, "node")
        if node is None:
            raise HttpError(400, "MISSING_ARG_NODE")
        self.db.tombstone(topic, node)
        return respond_v1(None)

    async def channel_create(self) -> Response:
        self.db.create_channel(*topic_channel_args(query_params()))
        return respond_v1(None)

    async def channel_delete(self) -> Response:
        if not self.db.delete_channel(*topic_channel_args(query_params())):
            raise HttpError(404, "CHANNEL_NOT_FOUND")
        return respond_v1(None)

    async def debug(self) -> Response:
        dump: dict[str, Any] = dict(self.db.debug())
        return respond_v1(dump)


def create_app(server: RegistryState, api: RegistryHttpApi | None = None) -> QuartTrio:
    """Build the quart-trio app serving ``server``'s HTTP API (through ``api``)."""
    app = new_app("trinsq.registry", log)
    api = api or RegistryHttpApi(server)
    routes: list[tuple[str, str, Callable[[], Awaitable[Response]]]] = [
        ("/ping", "GET", api.ping),
        ("/info", "GET", api.info),
        ("/topics", "GET", api.topics),
        ("/channels", "GET", api.channels),
        ("/lookup", "GET", api.lookup),
        ("/nodes", "GET", api.nodes),
        ("/topic/create", "POST", api.topic_create),
        ("/topic/delete", "POST", api.topic_delete),
        ("/topic/tombstone", "POST", api.topic_tombstone),
        ("/channel/create", "POST", api.channel_create),
        ("/channel/delete", "POST", api.channel_delete),
        ("/debug", "GET", api.debug),
    ]
    for path, method, handler in routes:
        app.add_url_rule(path, path, handler, methods=[method])
    return app


def fast_routes(api: RegistryHttpApi) -> dict[tuple[bytes, bytes], FastRoute]:
    """The read endpoints consumers and nsqadmin poll, for the fast lane: they answer from
    cached bodies without awaiting anything."""
    return {
        (b"GET", b"/lookup"): fast_route(api.lookup_answer, log),
        (b"GET", b"/nodes"): fast_route(api.nodes_answer, log),
        (b"GET", b"/topics"): fast_route(api.topics_answer, log),
        (b"GET", b"/channels"): fast_route(api.channels_answer, log),
    }


async def serve_http(
    server: RegistryState,
    address: str,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    graceful_timeout: float,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the registry's HTTP API on ``address`` until ``shutdown_trigger`` returns."""
    api = RegistryHttpApi(server)
    await serve_app(
        create_app(server, api),
        address,
        log,
        shutdown_trigger=shutdown_trigger,
        graceful_timeout=graceful_timeout,
        fast_routes=fast_routes(api),
        task_status=task_status,
    )

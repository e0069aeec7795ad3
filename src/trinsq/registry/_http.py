"""The registry's HTTP API (nsqlookupd/http.go), on the shared nsq HTTP conventions.

Go builds these replies from maps, so their keys come out sorted; the records inside
(producers, nodes) keep nsqlookupd's struct order through the attrs models. The read
endpoints answer with bodies cached until the registrations change (_views.py), through the
HTTP fast lane as well as quart (``_endpoints``, ``_serve``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Response, request
from quart_trio import QuartTrio

from .._version import NSQ_COMPAT_VERSION
from ..common._httpanswers import HttpError, first_param, topic_channel_args
from ..common._httpapi import new_app, query_params, respond_v1, to_response
from ..protocol import is_valid_topic_name
from ._endpoints import RegistryEndpoints, RegistryState, topic_param

__all__ = ["RegistryHttpApi", "create_app"]

log = logging.getLogger("trinsq.registry")


class RegistryHttpApi(RegistryEndpoints):
    """Handlers for every nsqlookupd endpoint, bound to one registry, as quart routes."""

    async def ping(self) -> Response:
        return to_response(self.ping_answer(request.query_string, b""))

    async def info(self) -> Response:
        return respond_v1({"version": NSQ_COMPAT_VERSION})

    async def topics(self) -> Response:
        return to_response(self.topics_answer(request.query_string, b""))

    async def channels(self) -> Response:
        return to_response(self.channels_answer(request.query_string, b""))

    async def lookup(self) -> Response:
        return to_response(self.lookup_answer(request.query_string, b""))

    async def nodes(self) -> Response:
        return to_response(self.nodes_answer(request.query_string, b""))

    async def topic_create(self) -> Response:
        topic = topic_param(query_params())
        if not is_valid_topic_name(topic):
            raise HttpError(400, "INVALID_ARG_TOPIC")
        self.db.create_topic(topic)
        return respond_v1(None)

    async def topic_delete(self) -> Response:
        self.db.delete_topic(topic_param(query_params()))
        return respond_v1(None)

    async def topic_tombstone(self) -> Response:
        params = query_params()
        topic = topic_param(params)
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

"""The registry's HTTP logic that needs no web framework: the read endpoints consumers and
nsqadmin poll, answered from cached bodies (``_views``) by the fast lane and the quart app
alike, and what the API needs of the running registry.
"""

from __future__ import annotations

from typing import Protocol

from ..common._httpanswers import JSON_TYPE, TEXT_TYPE, Answer, HttpError, first_param, parse_query
from ._db import RegistrationDB
from ._options import RegistryOptions
from ._views import RegistryViews

__all__ = ["RegistryEndpoints", "RegistryState", "topic_param"]


class RegistryState(Protocol):
    """What the HTTP API uses of the running registry: its options and its database (the
    server implements it; importing the server here would close an import circle)."""

    options: RegistryOptions
    db: RegistrationDB


def topic_param(params: dict[str, list[str]]) -> str:
    topic = first_param(params, "topic")
    if topic is None:
        raise HttpError(400, "MISSING_ARG_TOPIC")
    return topic


class RegistryEndpoints:
    """The answers of the fast lane's routes, bound to one registry; ``views`` may be shared
    with another instance so both answer from one cache."""

    def __init__(self, server: RegistryState, views: RegistryViews | None = None) -> None:
        self.server = server
        self.db = server.db
        options = server.options
        self.views = views or RegistryViews(
            server.db,
            inactive_timeout=options.inactive_producer_timeout,
            tombstone_lifetime=options.tombstone_lifetime,
        )

    def ping_answer(self, query: bytes, body: bytes) -> Answer:
        return Answer(200, b"OK", TEXT_TYPE, v1=False)

    def topics_answer(self, query: bytes, body: bytes) -> Answer:
        parse_query(query)  # a malformed query is still a 400
        return Answer(200, self.views.topics(), JSON_TYPE)

    def channels_answer(self, query: bytes, body: bytes) -> Answer:
        return Answer(200, self.views.channels(topic_param(parse_query(query))), JSON_TYPE)

    def lookup_answer(self, query: bytes, body: bytes) -> Answer:
        found = self.views.lookup(topic_param(parse_query(query)))
        if found is None:
            raise HttpError(404, "TOPIC_NOT_FOUND")
        return Answer(200, found, JSON_TYPE)

    def nodes_answer(self, query: bytes, body: bytes) -> Answer:
        return Answer(200, self.views.nodes(), JSON_TYPE)

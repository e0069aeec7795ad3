"""nsq's HTTP answers without a web framework: errors, bodies, query parameters, as both the
quart apps and the HTTP fast lane use them (internal/http_api's ``RespondV1`` conventions).

Nothing here imports quart: the fast lane answers its routes before (and without) the apps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import attrs

from ..protocol import QueryError, is_valid_channel_name, is_valid_topic_name, parse_go_query
from ._bodylimits import BodyLimit
from ._fastlane import FastAnswer, FastRoute
from ._gojson import go_json_plain

__all__ = [
    "BOOL_PARAMS",
    "JSON_TYPE",
    "TEXT_TYPE",
    "Answer",
    "HttpError",
    "answer_error",
    "answer_v1",
    "body_limit",
    "fast_route",
    "first_param",
    "parse_query",
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
    from ._json import go_json  # cattrs, imported when a JSON answer first needs it

    return Answer(200, go_json(data), JSON_TYPE)


def answer_error(error: HttpError) -> Answer:
    return Answer(error.status, go_json_plain({"message": error.message}), JSON_TYPE)


def body_limit(size: int, error: HttpError) -> BodyLimit:
    """A route's request body limit, refused with ``error`` answered as the app answers it."""
    answer = answer_error(error)
    return BodyLimit(size, answer.status, tuple(answer.wire_headers()), answer.body)


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

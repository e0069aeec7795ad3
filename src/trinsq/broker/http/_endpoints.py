"""What the broker's HTTP endpoints share without a web framework: nsqd's parameter checks and
error texts, and the answers of the endpoints the fast lane serves (/ping, /pub), so that
their quart routes and fast routes are one function each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from ...common._httpanswers import (
    TEXT_TYPE,
    Answer,
    HttpError,
    answer_v1,
    first_param,
    parse_query,
)
from ...protocol import is_valid_topic_name
from ...protocol._gofmt import to_int64
from ..core._broker import (
    ChannelNotFound,
    CoreError,
    PublishFailed,
    TopicExiting,
    TopicNotFound,
)
from ..core._services import BrokerServices

__all__ = ["BrokerEndpoints", "answered_as_http"]

_INT64: Final = 1 << 63


def _go_parse_int64(text: str) -> int:
    """strconv.ParseInt(text, 10, 64)."""
    body = text[1:] if text[:1] in "+-" else text
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(text)
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise ValueError(text)
    return value


# How nsqd's HTTP API answers what the core refuses.
_CORE_ERRORS: Final[dict[type[CoreError], tuple[int, str]]] = {
    TopicNotFound: (404, "TOPIC_NOT_FOUND"),
    ChannelNotFound: (404, "CHANNEL_NOT_FOUND"),
    TopicExiting: (503, "EXITING"),
    PublishFailed: (500, "INTERNAL_ERROR"),  # the disk write failed (disk full, EIO)
}


@contextmanager
def answered_as_http() -> Iterator[None]:
    """Turn a :class:`CoreError` into the :class:`HttpError` nsqd answers with."""
    try:
        yield
    except CoreError as error:
        status, message = _CORE_ERRORS[type(error)]
        raise HttpError(status, message) from None


class BrokerEndpoints:
    """The broker's HTTP logic that needs no request object, bound to one broker."""

    def __init__(self, server: BrokerServices) -> None:
        self.server = server
        self.options = server.options

    def topic_for_publish(self, params: dict[str, list[str]]) -> str:
        """getTopicFromQuery: the topic name (the topic is then created if missing)."""
        name = first_param(params, "topic")
        if name is None:
            raise HttpError(400, "MISSING_ARG_TOPIC")
        if not is_valid_topic_name(name):
            raise HttpError(400, "INVALID_TOPIC")
        return name

    def defer_ms(self, params: dict[str, list[str]]) -> int:
        """The ``defer`` parameter, checked as nsqd's /pub checks it (0 when absent)."""
        raw = first_param(params, "defer")
        if raw is None:
            return 0
        try:
            defer_ms = _go_parse_int64(raw)
        except ValueError:
            raise HttpError(400, "INVALID_DEFER") from None
        # Go multiplies into an int64 Duration (wrapping) before the range check.
        if not 0 <= to_int64(defer_ms * 1_000_000) <= self.options.max_req_timeout * 1e9:
            raise HttpError(400, "INVALID_DEFER")
        return defer_ms

    def ping_answer(self, query: bytes, body: bytes) -> Answer:
        error = self.server.storage.health_error
        if error is not None:
            return Answer(500, f"NOK - {error}".encode(), TEXT_TYPE, v1=False)
        return Answer(200, b"OK", TEXT_TYPE, v1=False)

    def pub_answer(self, query_string: bytes, body: bytes) -> Answer:
        """/pub once the body is read: the app's route and the fast lane both end here."""
        if len(body) > self.options.max_msg_size:
            raise HttpError(413, "MSG_TOO_BIG")
        if not body:
            raise HttpError(400, "MSG_EMPTY")
        params = parse_query(query_string)
        topic_name = self.topic_for_publish(params)
        defer_ms = self.defer_ms(params)
        with answered_as_http():
            self.server.core.publish(topic_name, [body], defer_ms)
        return answer_v1("OK")

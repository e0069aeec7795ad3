"""HTTP plumbing shared by the broker's and the registry's APIs (nsq's internal/http_api).

Responses follow ``RespondV1``: an ``X-NSQ-Content-Type`` header, strings written raw, other
values as Go-style JSON, errors as ``{"message": "<TEXT>"}``; unknown paths 404 NOT_FOUND,
wrong methods 405 METHOD_NOT_ALLOWED (httprouter). Parameters come from the query string
only, parsed by Go's rules. This module is the quart side of it; the answers themselves
(``_httpanswers``) and the serving (``_httpserve``) do without quart.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from ._httpanswers import Answer, HttpError, answer_error, answer_v1, parse_query

__all__ = [
    "new_app",
    "query_params",
    "read_body",
    "respond",
    "respond_error",
    "respond_v1",
    "to_response",
]


def respond(status: int, body: bytes, content_type: str | None, *, v1: bool = True) -> Response:
    response = Response(body, status=status)
    if content_type is None:
        del response.headers["Content-Type"]  # Go sets none for an empty body
    else:
        response.headers["Content-Type"] = content_type
    if v1:
        response.headers["X-NSQ-Content-Type"] = "nsq; version=1.0"
    return response


def to_response(answer: Answer) -> Response:
    return respond(answer.status, answer.body, answer.content_type, v1=answer.v1)


def respond_v1(data: Any) -> Response:
    return to_response(answer_v1(data))


def respond_error(error: HttpError) -> Response:
    return to_response(answer_error(error))


def query_params() -> dict[str, list[str]]:
    """The current request's query parameters; 400 INVALID_REQUEST when malformed."""
    return parse_query(request.query_string)


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

"""GET /openapi.json: an OpenAPI 3.0 description of every route the broker's HTTP API serves.

trinsq's own endpoint (nsqd has none). The /stats and /info schemas are derived from the attrs
models and from how the JSON converter writes them (which keys it leaves out), the limits and
option names from the broker's options, so the document follows the server rather than a copy
of it.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Final

import attrs

from ..._version import __version__

# The name rule itself, so the documented pattern cannot drift from it.
from ...protocol import MAX_NAME_LENGTH, NAME_PATTERN
from ..config._config_api import LOG_LEVELS, config_value
from ..config._options import BrokerOptions
from ..core._stats import InfoDocument, StatsDocument
from ._jsonedge import converter

__all__ = ["openapi_document"]

Schema = dict[str, Any]

_V1_HEADER: Final = {"$ref": "#/components/headers/X-NSQ-Content-Type"}
_NAME: Final[Schema] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME_LENGTH,
    "pattern": f"^(?:{NAME_PATTERN})$",
}
# Booleans as nsqd reads them: true/1 and false/0; anything else means the default (true).
# The enum only steers generated examples towards the meaningful values.
_FLAG: Final[Schema] = {
    "anyOf": [{"type": "string", "enum": ["true", "false"]}, {"type": "string"}]
}


# -- schemas from the attrs models ---------------------------------------------------------------


def _placeholder(tp: Any) -> Any:
    """Some value of type ``tp``, for building a sample model."""
    if attrs.has(tp):
        return _sample(tp)
    if type(None) in typing.get_args(tp):
        return None
    origin = typing.get_origin(tp)
    return (origin or tp)()  # list(), dict(), int(), str(), bool()


def _sample(cls: type[Any]) -> Any:
    """An instance with every defaulted field at its default."""
    hints = typing.get_type_hints(cls)
    required = {
        f.name: _placeholder(hints[f.name]) for f in attrs.fields(cls) if f.default is attrs.NOTHING
    }
    return cls(**required)


class _ModelSchemas:
    """JSON schemas of attrs models as components, as the converter writes them."""

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {}

    def ref(self, cls: type[Any]) -> Schema:
        name = cls.__name__
        if name not in self.components:
            self.components[name] = self._object(cls)
        return {"$ref": f"#/components/schemas/{name}"}

    def _object(self, cls: type[Any]) -> Schema:
        hints = typing.get_type_hints(cls)
        # A defaulted field the converter leaves out at its default is Go's omitempty: optional,
        # and never null (that is when it is left out).
        written = converter.unstructure(_sample(cls)).keys()
        properties: dict[str, Schema] = {}
        for field in attrs.fields(cls):
            omitted = field.name not in written
            properties[field.name] = self.schema(hints[field.name], nullable=not omitted)
        return {
            "type": "object",
            "properties": properties,
            "required": [name for name in properties if name in written],
            "additionalProperties": False,
        }

    def schema(self, tp: Any, *, nullable: bool = True) -> Schema:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (types.UnionType, typing.Union):
            others = [arg for arg in args if arg is not type(None)]
            if len(others) != 1:
                raise TypeError(f"no schema for {tp!r}")
            schema = self.schema(others[0])
            if nullable:
                if "$ref" in schema:
                    raise TypeError(f"OpenAPI 3.0 cannot mark a reference nullable: {tp!r}")
                schema["nullable"] = True
            return schema
        if attrs.has(tp):
            return self.ref(tp)
        if origin is list:
            return {"type": "array", "items": self.schema(args[0])}
        if origin is dict and args[0] is str:
            return {"type": "object", "additionalProperties": self.schema(args[1])}
        scalar = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(tp)
        if scalar is None:
            raise TypeError(f"no schema for {tp!r}")
        return {"type": scalar}


# -- responses -----------------------------------------------------------------------------------


def _error(messages: list[str], description: str = "An error") -> Schema:
    """nsqd's JSON error body, limited to the texts this response can carry."""
    return {
        "description": description,
        "headers": {"X-NSQ-Content-Type": _V1_HEADER},
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"message": {"type": "string", "enum": messages}},
                    "required": ["message"],
                    "additionalProperties": False,
                }
            }
        },
    }


def _ok(
    content: dict[str, Schema] | None = None, *, v1: bool = True, links: Schema | None = None
) -> Schema:
    """200; without ``content`` the body is empty and has no Content-Type."""
    response: Schema = {"description": "Success"}
    if v1:
        response["headers"] = {"X-NSQ-Content-Type": _V1_HEADER}
    if content:
        response["content"] = {kind: {"schema": schema} for kind, schema in content.items()}
    if links:
        response["links"] = links
    return response


def _links(operation_ids: list[str], names: list[str]) -> Schema:
    """Operations that can act next on what the request named (a topic, a channel)."""
    parameters = {name: f"$request.query.{name}" for name in names}
    return {
        operation_id: {"operationId": operation_id, "parameters": parameters}
        for operation_id in operation_ids
    }


# After a topic exists: its own operations, and creating a channel on it.
_TOPIC_LINKS: Final = _links(
    ["topicEmpty", "topicPause", "topicUnpause", "topicDelete", "channelCreate"], ["topic"]
)
_CHANNEL_LINKS: Final = _links(
    ["channelEmpty", "channelPause", "channelUnpause", "channelDelete"], ["topic", "channel"]
)


_OK_TEXT: Final = {"text/plain": {"type": "string", "enum": ["OK"]}}
_INTERNAL: Final = _error(["INTERNAL_ERROR"], "An unexpected server failure, e.g. a disk error")
_BAD_QUERY: Final = "INVALID_REQUEST"  # the query string does not parse (bad escape, ';')


def _responses(ok: Schema, errors: dict[int, list[str]]) -> dict[str, Schema]:
    responses = {"200": ok, **{str(code): _error(texts) for code, texts in errors.items()}}
    responses.setdefault("500", _INTERNAL)
    return responses


def _query(
    name: str, schema: Schema, description: str, *, required: bool = False, example: str = ""
) -> Schema:
    parameter = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }
    if example:
        parameter["example"] = example
    return parameter


_TOPIC: Final = _query("topic", _NAME, "Topic name", required=True)
_CHANNEL: Final = _query("channel", _NAME, "Channel name", required=True)
_TOPIC_ERRORS: Final = ["MISSING_ARG_TOPIC", "INVALID_TOPIC", _BAD_QUERY]
_CHANNEL_ERRORS: Final = [
    "MISSING_ARG_TOPIC", "INVALID_ARG_TOPIC", "MISSING_ARG_CHANNEL", "INVALID_ARG_CHANNEL",
    _BAD_QUERY,
]  # fmt: skip


def _post(
    operation_id: str,
    summary: str,
    parameters: list[Schema],
    errors: dict[int, list[str]],
    links: Schema | None = None,
) -> Schema:
    """A POST answering 200 with an empty body."""
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": parameters,
            "responses": _responses(_ok(links=links), errors),
        }
    }


def _body(media_type: str, schema: Schema, *, required: bool = True) -> Schema:
    return {"required": required, "content": {media_type: {"schema": schema}}}


def _config_names(options: BrokerOptions) -> list[str]:
    """Every name GET /config/<opt> answers."""
    candidates = {"id", *(field.name for field in attrs.fields(BrokerOptions))}
    return sorted(name for name in candidates if config_value(options, name) is not None)


def _config_json_schema(options: BrokerOptions, names: list[str]) -> Schema:
    """What a non-string option's value can be in JSON."""
    kinds = {bool: "boolean", int: "integer", float: "number"}
    found = sorted({kinds[type(config_value(options, name))] for name in names})
    return {"anyOf": [{"type": kind} for kind in found]}


# -- the document --------------------------------------------------------------------------------


def openapi_document(options: BrokerOptions) -> Schema:
    """The OpenAPI 3.0 document for a broker running with ``options``."""
    models = _ModelSchemas()
    paths = {
        **_status_paths(models),
        **_publish_paths(options),
        **_topic_channel_paths(),
        **_config_paths(options),
        **_own_paths(),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "trinsq broker HTTP API",
            "version": __version__,
            "description": (
                "nsqd's HTTP API: parameters come from the query string only; nsqd endpoints "
                'send X-NSQ-Content-Type, write strings raw and errors as {"message": TEXT}. '
                "Any other method on a listed path answers 405 METHOD_NOT_ALLOWED with Allow; "
                "unlisted paths answer 404 NOT_FOUND."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": models.components,
            "headers": {
                "X-NSQ-Content-Type": {
                    "required": True,
                    "schema": {"type": "string", "enum": ["nsq; version=1.0"]},
                }
            },
        },
    }


def _status_paths(models: _ModelSchemas) -> dict[str, Schema]:
    return {
        "/ping": {
            "get": {
                "operationId": "ping",
                "summary": "Health: OK, or NOK with the error while a disk write fails",
                "responses": {
                    "200": _ok(_OK_TEXT, v1=False),
                    "500": {
                        "description": "Unhealthy",
                        "content": {
                            "text/plain": {"schema": {"type": "string", "pattern": "^NOK - "}}
                        },
                    },
                },
            }
        },
        "/info": {
            "get": {
                "operationId": "info",
                "summary": "Version, addresses and limits",
                "responses": _responses(_ok({"application/json": models.ref(InfoDocument)}), {}),
            }
        },
        "/stats": {
            "get": {
                "operationId": "stats",
                "summary": "Topics, channels, clients and memory",
                "parameters": [
                    _query(
                        "format",
                        {"anyOf": [{"type": "string", "enum": ["json"]}, {"type": "string"}]},
                        "json for JSON, anything else text",
                        example="json",
                    ),
                    _query("topic", {"type": "string"}, "Only this topic (topics null if none)"),
                    _query("channel", {"type": "string"}, "Only topics with this channel"),
                    _query("include_clients", _FLAG, "Per-client objects (default true)"),
                    _query("include_mem", _FLAG, "The memory object (default true)"),
                ],
                "responses": _responses(
                    _ok(
                        {
                            "application/json": models.ref(StatsDocument),
                            "text/plain": {"type": "string"},
                        }
                    ),
                    {400: [_BAD_QUERY]},
                ),
            }
        },
    }


def _publish_paths(options: BrokerOptions) -> dict[str, Schema]:
    # The largest defer the server's check (defer ms * 1e6 <= max-req-timeout in ns) allows.
    max_defer_ms = int(options.max_req_timeout * 1e9) // 1_000_000
    defer = _query(
        "defer",
        {"type": "integer", "minimum": 0, "maximum": max_defer_ms},
        "Delay delivery by this many milliseconds (up to max-req-timeout)",
    )
    return {
        "/pub": {
            "post": {
                "operationId": "pub",
                "summary": "Publish one message (the body) to a topic, creating the topic",
                "parameters": [_TOPIC, defer],
                "requestBody": _body(
                    "application/octet-stream",
                    {
                        "type": "string",
                        "format": "binary",
                        "minLength": 1,
                        "maxLength": options.max_msg_size,
                    },
                ),
                "responses": _responses(
                    _ok(_OK_TEXT, links=_TOPIC_LINKS),
                    {
                        400: ["MSG_EMPTY", *_TOPIC_ERRORS, "INVALID_DEFER"],
                        413: ["MSG_TOO_BIG"],
                        503: ["EXITING"],
                    },
                ),
            }
        },
        "/mpub": {
            "post": {
                "operationId": "mpub",
                "summary": "Publish several messages to a topic, creating the topic",
                "description": (
                    "Text mode (the default, binary=false or 0): one message per line, empty "
                    "lines skipped. Binary mode (any other binary value): "
                    "[int32 count]([int32 size][bytes])*, big-endian. defer is trinsq's: "
                    "nsqd 1.3.0 ignores it on /mpub."
                ),
                "parameters": [_TOPIC, _query("binary", _FLAG, "Binary body format"), defer],
                # No body (no messages) is fine in text mode.
                "requestBody": _body(
                    "application/octet-stream",
                    {"type": "string", "format": "binary", "maxLength": options.max_body_size},
                    required=False,
                ),
                "responses": _responses(
                    _ok(_OK_TEXT, links=_TOPIC_LINKS),
                    {
                        400: [*_TOPIC_ERRORS, "INVALID_DEFER"],
                        413: ["BODY_TOO_BIG", "MSG_TOO_BIG", "BAD_BODY", "BAD_MESSAGE"],
                        503: ["EXITING"],
                    },
                ),
            }
        },
    }


def _topic_channel_paths() -> dict[str, Schema]:
    topic_404 = {404: ["TOPIC_NOT_FOUND"]}
    channel_404 = {404: ["TOPIC_NOT_FOUND", "CHANNEL_NOT_FOUND"]}
    # nsqd does not validate the name for these: a bad one is simply not found.
    unvalidated = {400: ["MISSING_ARG_TOPIC", _BAD_QUERY], **topic_404}
    topic, both = [_TOPIC], [_TOPIC, _CHANNEL]
    channel_errors = {400: _CHANNEL_ERRORS, **channel_404}
    return {
        path: _post(operation_id, summary, parameters, errors, links)
        for path, operation_id, summary, parameters, errors, links in [
            ("/topic/create", "topicCreate", "Create a topic", topic, {400: _TOPIC_ERRORS},
             _TOPIC_LINKS),
            ("/topic/delete", "topicDelete", "Delete a topic with its channels and messages",
             topic, unvalidated, None),
            ("/topic/empty", "topicEmpty", "Drop the topic's own queued messages", topic,
             {400: _TOPIC_ERRORS, **topic_404}, None),
            ("/topic/pause", "topicPause", "Pause the topic", topic, unvalidated, None),
            ("/topic/unpause", "topicUnpause", "Resume the topic", topic, unvalidated, None),
            ("/channel/create", "channelCreate", "Create a channel on an existing topic", both,
             {400: _CHANNEL_ERRORS, **topic_404}, _CHANNEL_LINKS),
            ("/channel/delete", "channelDelete", "Delete the channel and its messages", both,
             channel_errors, None),
            ("/channel/empty", "channelEmpty", "Drop the channel's messages", both,
             channel_errors, None),
            ("/channel/pause", "channelPause", "Pause the channel", both, channel_errors, None),
            ("/channel/unpause", "channelUnpause", "Resume the channel", both, channel_errors,
             None),
        ]
    }  # fmt: skip


def _config_paths(options: BrokerOptions) -> dict[str, Schema]:
    names = _config_names(options)
    json_names = [name for name in names if not isinstance(config_value(options, name), str)]
    # The server lower-cases the value before looking it up.
    levels = "|".join("".join(f"[{c}{c.upper()}]" for c in level) for level in LOG_LEVELS)
    return {
        "/config/{opt}": {
            "get": {
                "operationId": "configGet",
                "summary": "An option's value: strings raw, durations in ns, others as JSON",
                "parameters": [_config_option(names)],
                "responses": _responses(
                    _ok(
                        {
                            "application/json": _config_json_schema(options, json_names),
                            "text/plain": {"type": "string"},
                        }
                    ),
                    {400: ["INVALID_OPTION"], 404: ["NOT_FOUND"]},
                ),
            },
            "put": {
                "operationId": "configPut",
                "summary": "Change an option at runtime (log_level only)",
                "parameters": [_config_option(["log_level"])],
                "requestBody": _body(
                    "text/plain",
                    {
                        "type": "string",
                        "pattern": f"^(?:{levels})$",
                        "maxLength": options.max_msg_size,
                    },
                ),
                "responses": _responses(
                    _ok({"application/json": {"type": "integer", "minimum": 1, "maximum": 5}}),
                    {
                        400: ["INVALID_OPTION", "INVALID_VALUE"],
                        404: ["NOT_FOUND"],
                        413: ["INVALID_VALUE"],  # an empty or too long value
                    },
                ),
            },
        },
    }


def _own_paths() -> dict[str, Schema]:
    """Endpoints without nsqd's conventions: no X-NSQ-Content-Type."""

    def get(operation_id: str, summary: str, content: dict[str, Schema]) -> Schema:
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "responses": {"200": _ok(content, v1=False), "500": _INTERNAL},
            }
        }

    return {
        "/debug/freememory": {
            "post": {
                "operationId": "freeMemory",
                "summary": "Run a full garbage collection",
                "responses": {"200": _ok(v1=False), "500": _INTERNAL},
            }
        },
        "/metrics": get(
            "metrics",
            "Prometheus text exposition format 0.0.4 (trinsq's own)",
            {"text/plain": {"type": "string"}},
        ),
        "/openapi.json": get(
            "openapi", "This document (trinsq's own)", {"application/json": {"type": "object"}}
        ),
    }


def _config_option(names: list[str]) -> Schema:
    return {
        "name": "opt",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": names},
    }

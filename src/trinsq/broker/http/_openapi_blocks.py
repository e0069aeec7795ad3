"""The building blocks of GET /openapi.json: schemas, parameters and responses.

JSON schemas of the attrs models as the JSON converter writes them (:class:`ModelSchemas`), and
nsqd's conventions in OpenAPI terms: the X-NSQ-Content-Type header, ``{"message": TEXT}`` error
bodies, query-string parameters, the topic and channel name rule. _openapi.py assembles the
document from them.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Final

import attrs

# The name rule itself, so the documented pattern cannot drift from it.
from ...protocol import MAX_NAME_LENGTH, NAME_PATTERN
from ._jsonedge import converter

__all__ = [
    "BAD_QUERY",
    "CHANNEL",
    "CHANNEL_ERRORS",
    "CHANNEL_LINKS",
    "FLAG",
    "INTERNAL",
    "OK_TEXT",
    "TOPIC",
    "TOPIC_ERRORS",
    "TOPIC_LINKS",
    "ModelSchemas",
    "Schema",
    "body",
    "ok",
    "post",
    "query",
    "responses",
]

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
FLAG: Final[Schema] = {"anyOf": [{"type": "string", "enum": ["true", "false"]}, {"type": "string"}]}


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


class ModelSchemas:
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


def ok(
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
TOPIC_LINKS: Final = _links(
    ["topicEmpty", "topicPause", "topicUnpause", "topicDelete", "channelCreate"], ["topic"]
)
CHANNEL_LINKS: Final = _links(
    ["channelEmpty", "channelPause", "channelUnpause", "channelDelete"], ["topic", "channel"]
)


OK_TEXT: Final = {"text/plain": {"type": "string", "enum": ["OK"]}}
INTERNAL: Final = _error(["INTERNAL_ERROR"], "An unexpected server failure, e.g. a disk error")
BAD_QUERY: Final = "INVALID_REQUEST"  # the query string does not parse (bad escape, ';')


def responses(success: Schema, errors: dict[int, list[str]]) -> dict[str, Schema]:
    """An operation's responses: 200, the errors by status, and 500 unless given."""
    by_status = {"200": success, **{str(code): _error(texts) for code, texts in errors.items()}}
    by_status.setdefault("500", INTERNAL)
    return by_status


# -- parameters and operations -------------------------------------------------------------------


def query(
    name: str, schema: Schema, description: str, *, required: bool = False, example: str = ""
) -> Schema:
    """A query-string parameter (nsqd reads parameters from the query string only)."""
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


# The topic and channel endpoints' name parameters, and the 400 texts nsqd answers for them.
TOPIC: Final = query("topic", _NAME, "Topic name", required=True)
CHANNEL: Final = query("channel", _NAME, "Channel name", required=True)
TOPIC_ERRORS: Final = ["MISSING_ARG_TOPIC", "INVALID_TOPIC", BAD_QUERY]
CHANNEL_ERRORS: Final = [
    "MISSING_ARG_TOPIC", "INVALID_ARG_TOPIC", "MISSING_ARG_CHANNEL", "INVALID_ARG_CHANNEL",
    BAD_QUERY,
]  # fmt: skip


def post(
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
            "responses": responses(ok(links=links), errors),
        }
    }


def body(media_type: str, schema: Schema, *, required: bool = True) -> Schema:
    """A request body."""
    return {"required": required, "content": {media_type: {"schema": schema}}}

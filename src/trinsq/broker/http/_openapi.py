"""GET /openapi.json: an OpenAPI 3.0 description of every route the broker's HTTP API serves.

trinsq's own endpoint (nsqd has none). The /stats and /info schemas are derived from the attrs
models and from how the JSON converter writes them (which keys it leaves out), the limits and
option names from the broker's options, so the document follows the server rather than a copy
of it. This module assembles the document and its paths from the schemas, parameters and
responses of _openapi_blocks.py.
"""

from __future__ import annotations

import attrs

from ..._version import __version__
from ..config._config_api import LOG_LEVELS, config_value
from ..config._options import BrokerOptions
from ..core._stats import InfoDocument, StatsDocument
from ._openapi_blocks import (
    BAD_QUERY,
    CHANNEL,
    CHANNEL_ERRORS,
    CHANNEL_LINKS,
    FLAG,
    INTERNAL,
    OK_TEXT,
    TOPIC,
    TOPIC_ERRORS,
    TOPIC_LINKS,
    ModelSchemas,
    Schema,
    body,
    ok,
    post,
    query,
    responses,
)

__all__ = ["openapi_document"]


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
    models = ModelSchemas()
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


def _status_paths(models: ModelSchemas) -> dict[str, Schema]:
    return {
        "/ping": {
            "get": {
                "operationId": "ping",
                "summary": "Health: OK, or NOK with the error while a disk write fails",
                "responses": {
                    "200": ok(OK_TEXT, v1=False),
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
                "responses": responses(ok({"application/json": models.ref(InfoDocument)}), {}),
            }
        },
        "/stats": {
            "get": {
                "operationId": "stats",
                "summary": "Topics, channels, clients and memory",
                "parameters": [
                    query(
                        "format",
                        {"anyOf": [{"type": "string", "enum": ["json"]}, {"type": "string"}]},
                        "json for JSON, anything else text",
                        example="json",
                    ),
                    query("topic", {"type": "string"}, "Only this topic (topics null if none)"),
                    query("channel", {"type": "string"}, "Only topics with this channel"),
                    query("include_clients", FLAG, "Per-client objects (default true)"),
                    query("include_mem", FLAG, "The memory object (default true)"),
                ],
                "responses": responses(
                    ok(
                        {
                            "application/json": models.ref(StatsDocument),
                            "text/plain": {"type": "string"},
                        }
                    ),
                    {400: [BAD_QUERY]},
                ),
            }
        },
    }


def _publish_paths(options: BrokerOptions) -> dict[str, Schema]:
    # The largest defer the server's check (defer ms * 1e6 <= max-req-timeout in ns) allows.
    max_defer_ms = int(options.max_req_timeout * 1e9) // 1_000_000
    defer = query(
        "defer",
        {"type": "integer", "minimum": 0, "maximum": max_defer_ms},
        "Delay delivery by this many milliseconds (up to max-req-timeout)",
    )
    return {
        "/pub": {
            "post": {
                "operationId": "pub",
                "summary": "Publish one message (the body) to a topic, creating the topic",
                "parameters": [TOPIC, defer],
                "requestBody": body(
                    "application/octet-stream",
                    {
                        "type": "string",
                        "format": "binary",
                        "minLength": 1,
                        "maxLength": options.max_msg_size,
                    },
                ),
                "responses": responses(
                    ok(OK_TEXT, links=TOPIC_LINKS),
                    {
                        400: ["MSG_EMPTY", *TOPIC_ERRORS, "INVALID_DEFER"],
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
                "parameters": [TOPIC, query("binary", FLAG, "Binary body format"), defer],
                # No body (no messages) is fine in text mode.
                "requestBody": body(
                    "application/octet-stream",
                    {"type": "string", "format": "binary", "maxLength": options.max_body_size},
                    required=False,
                ),
                "responses": responses(
                    ok(OK_TEXT, links=TOPIC_LINKS),
                    {
                        400: [*TOPIC_ERRORS, "INVALID_DEFER"],
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
    unvalidated = {400: ["MISSING_ARG_TOPIC", BAD_QUERY], **topic_404}
    topic, both = [TOPIC], [TOPIC, CHANNEL]
    channel_errors = {400: CHANNEL_ERRORS, **channel_404}
    return {
        path: post(operation_id, summary, parameters, errors, links)
        for path, operation_id, summary, parameters, errors, links in [
            ("/topic/create", "topicCreate", "Create a topic", topic, {400: TOPIC_ERRORS},
             TOPIC_LINKS),
            ("/topic/delete", "topicDelete", "Delete a topic with its channels and messages",
             topic, unvalidated, None),
            ("/topic/empty", "topicEmpty", "Drop the topic's own queued messages", topic,
             {400: TOPIC_ERRORS, **topic_404}, None),
            ("/topic/pause", "topicPause", "Pause the topic", topic, unvalidated, None),
            ("/topic/unpause", "topicUnpause", "Resume the topic", topic, unvalidated, None),
            ("/channel/create", "channelCreate", "Create a channel on an existing topic", both,
             {400: CHANNEL_ERRORS, **topic_404}, CHANNEL_LINKS),
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
                "responses": responses(
                    ok(
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
                "requestBody": body(
                    "text/plain",
                    {
                        "type": "string",
                        "pattern": f"^(?:{levels})$",
                        "maxLength": options.max_msg_size,
                    },
                ),
                "responses": responses(
                    ok({"application/json": {"type": "integer", "minimum": 1, "maximum": 5}}),
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
                "responses": {"200": ok(content, v1=False), "500": INTERNAL},
            }
        }

    return {
        "/debug/freememory": {
            "post": {
                "operationId": "freeMemory",
                "summary": "Run a full garbage collection",
                "responses": {"200": ok(v1=False), "500": INTERNAL},
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

"""Finding a topic's nsqd nodes and summing one channel's stats, sans-IO, as nsq_stat does
through nsq's clusterinfo package (v1.3.0).

The I/O layer asks for each target, on every address at once, and hands back each answer as
the decoded JSON document or a :class:`Failure` carrying Go's error text; the functions here
turn the answers into producers and totals, or into the error nsq_stat would report. Go's
rules are kept: a query fails only when every node failed, but a partial failure is still an
error (an ``ErrList``, its members joined by newlines), and nsq_stat treats any error as fatal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import quote_plus

import attrs

from trinsq.protocol import JsonError, decode_json, go_quote
from trinsq.tools.stat._report import ChannelTotals

__all__ = [
    "INFO_TARGET",
    "ClusterInfoError",
    "Failure",
    "channel_stats_target",
    "channel_totals",
    "http_address",
    "https_port",
    "lookup_producers",
    "lookup_target",
    "nsqd_producer",
    "nsqd_producers",
    "status_error_text",
    "topic_in_stats",
    "topic_stats_target",
]

INFO_TARGET: Final = "/info"


class ClusterInfoError(Exception):
    """A query did not give a complete answer; ``str()`` is Go's error text (may be multi-line)."""


@attrs.frozen
class Failure:
    """One node's request failed; ``text`` is the error as Go's http_api client words it."""

    text: str


def lookup_target(topic: str) -> str:
    return f"/lookup?topic={quote_plus(topic)}"


def topic_stats_target(topic: str) -> str:
    """What is asked of each nsqd to learn whether it carries ``topic``."""
    return f"/stats?format=json&topic={quote_plus(topic)}&include_clients=false"


def channel_stats_target(topic: str, channel: str) -> str:
    """What is asked of each producer at every poll."""
    return (
        f"/stats?format=json&topic={quote_plus(topic)}&channel={quote_plus(channel)}"
        "&include_clients=false"
    )


def status_error_text(status: int, reason: str, body: bytes) -> str:
    """A non-200 answer, as http_api's GETV1 reports it."""
    status_line = f"{status} {reason}" if reason else str(status)
    return f"got response {status_line} {go_quote(body)}"


def https_port(body: bytes) -> int | Failure:
    """The port a 403 answer sends the request to over HTTPS (nsqd's TLS_REQUIRED answer), as
    http_api reads it: 0 when the body does not say."""
    try:
        document = _object(decode_json(body), "struct { HTTPSPort int }")
        return _int(document, "https_port")
    except JsonError as error:
        return Failure(str(error))
    except _Shape as error:
        return Failure(str(error))


def http_address(host: str, port: int) -> str:
    """Go's net.JoinHostPort: brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Shape(Exception):
    """A document that Go's json package would not decode into clusterinfo's structs."""


def _object(value: object, what: str) -> Mapping[str, object]:
    if value is None:
        return {}  # JSON null decodes to the zero value
    if not isinstance(value, Mapping):
        raise _Shape(f"json: cannot unmarshal {_kind(value)} into Go value of type {what}")
    return value


def _list(value: object, what: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Shape(f"json: cannot unmarshal {_kind(value)} into Go value of type {what}")
    return value


def _int(document: Mapping[str, object], key: str) -> int:
    value = document.get(key, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Shape(
            f"json: cannot unmarshal {_kind(value)} into Go struct field .{key} of type int64"
        )
    return value


def _str(document: Mapping[str, object], key: str) -> str:
    value = document.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Shape(
            f"json: cannot unmarshal {_kind(value)} into Go struct field .{key} of type string"
        )
    return value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _raise_for(errors: list[str], total: int, service: str) -> None:
    """clusterinfo's verdict: every node failed (or there were none), or only some did."""
    if len(errors) == total:
        raise ClusterInfoError(f"failed to query any {service}: " + "\n".join(errors))
    if errors:
        raise ClusterInfoError("\n".join(errors))


def lookup_producers(answers: Sequence[object]) -> list[str]:
    """The HTTP addresses of a topic's producers from every registry's /lookup answer
    (documents or :class:`Failure`), each address once, in the order first seen.

    Raises:
        ClusterInfoError: any registry failed.
    """
    errors: list[str] = []
    producers: list[str] = []
    for answer in answers:
        if isinstance(answer, Failure):
            errors.append(answer.text)
            continue
        try:
            found = [
                http_address(_str(item, "broadcast_address"), _int(item, "http_port"))
                for item in (
                    _object(entry, "clusterinfo.Producer")
                    for entry in _list(_object(answer, "respType").get("producers"), "Producers")
                )
            ]
        except _Shape as error:
            errors.append(str(error))
            continue
        producers.extend(address for address in found if address not in producers)
    _raise_for(errors, len(answers), "nsqlookupd")
    return producers


def topic_in_stats(answer: object, topic: str) -> bool:
    """Whether an nsqd's /stats document lists ``topic``.

    Raises:
        ClusterInfoError: the document has the wrong shape.
    """
    try:
        topics = _list(_object(answer, "statsRespType").get("topics"), "[]topic")
        return any(_str(_object(item, "topic"), "topic_name") == topic for item in topics)
    except _Shape as error:
        raise ClusterInfoError(str(error)) from None


def nsqd_producer(info: object, queried: str) -> str:
    """A producer's HTTP address from its /info, falling back on the address queried when
    the node does not say (an old nsqd), as clusterinfo does.

    Raises:
        ClusterInfoError: the document has the wrong shape.
    """
    try:
        document = _object(info, "infoRespType")
        host, port = _str(document, "broadcast_address"), _int(document, "http_port")
    except _Shape as error:
        raise ClusterInfoError(str(error)) from None
    if not host:
        host, _, port_text = queried.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        port = int(port_text) if port_text.isdigit() else 0
    return http_address(host, port)


def nsqd_producers(outcomes: Sequence[str | Failure | None]) -> list[str]:
    """The producers found by asking each nsqd directly: per queried address, the producer's
    HTTP address, None when it lacks the topic, or the :class:`Failure` of either request.

    Raises:
        ClusterInfoError: any nsqd failed.
    """
    errors = [outcome.text for outcome in outcomes if isinstance(outcome, Failure)]
    _raise_for(errors, len(outcomes), "nsqd")
    return [outcome for outcome in outcomes if isinstance(outcome, str)]


def _node_channel(document: Mapping[str, object]) -> ChannelTotals:
    depth, backend = _int(document, "depth"), _int(document, "backend_depth")
    return ChannelTotals(
        depth=depth,
        memory_depth=depth - backend,
        backend_depth=backend,
        in_flight_count=_int(document, "in_flight_count"),
        deferred_count=_int(document, "deferred_count"),
        requeue_count=_int(document, "requeue_count"),
        timeout_count=_int(document, "timeout_count"),
        message_count=_int(document, "message_count"),
        client_count=_int(document, "client_count"),
    )


def _channels_in(answer: object, topic: str, channel: str) -> list[ChannelTotals]:
    found: list[ChannelTotals] = []
    for item in _list(_object(answer, "respType").get("topics"), "[]*TopicStats"):
        topic_document = _object(item, "clusterinfo.TopicStats")
        if _str(topic_document, "topic_name") != topic:
            continue
        for entry in _list(topic_document.get("channels"), "[]*ChannelStats"):
            channel_document = _object(entry, "clusterinfo.ChannelStats")
            if _str(channel_document, "channel_name") == channel:
                found.append(_node_channel(channel_document))
    return found


def channel_totals(answers: Sequence[object], topic: str, channel: str) -> ChannelTotals | None:
    """``channel``'s totals over every producer's /stats answer (documents or
    :class:`Failure`); None when no node has it.

    Raises:
        ClusterInfoError: any producer failed, or there were no producers at all.
    """
    errors: list[str] = []
    nodes: list[ChannelTotals] = []
    for answer in answers:
        if isinstance(answer, Failure):
            errors.append(answer.text)
            continue
        try:
            nodes.extend(_channels_in(answer, topic, channel))
        except _Shape as error:  # Go fails to decode the whole answer: none of it counts
            errors.append(str(error))
    _raise_for(errors, len(answers), "nsqd")
    return ChannelTotals.sum(nodes) if nodes else None

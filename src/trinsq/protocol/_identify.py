"""IDENTIFY: decoding the client's JSON, validating it, and the negotiated reply.

Mirrors nsqd/client_v2.go (``identifyDataV2``, ``Identify`` and the Set* methods) and the
response built in nsqd/protocol_v2.go ``IDENTIFY``. Pure functions, no I/O.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any, Final

import attrs

from ._errors import ProtocolError
from ._json import JsonError, decode_json

__all__ = [
    "ClientSettings",
    "IdentifyRequest",
    "IdentifyResult",
    "ServerFeatures",
    "negotiate_identify",
    "parse_identify",
]

_INT64 = (-(1 << 63), (1 << 63) - 1)
_INT32 = (-(1 << 31), (1 << 31) - 1)

# JSON key -> (attribute, kind). Go's encoding/json matches keys case-insensitively too.
_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "client_id": ("client_id", "str"),
    "hostname": ("hostname", "str"),
    "heartbeat_interval": ("heartbeat_interval", "int"),
    "output_buffer_size": ("output_buffer_size", "int"),
    "output_buffer_timeout": ("output_buffer_timeout", "int"),
    "feature_negotiation": ("feature_negotiation", "bool"),
    "tls_v1": ("tls_v1", "bool"),
    "deflate": ("deflate", "bool"),
    "deflate_level": ("deflate_level", "int"),
    "snappy": ("snappy", "bool"),
    "sample_rate": ("sample_rate", "int32"),
    "user_agent": ("user_agent", "str"),
    "msg_timeout": ("msg_timeout", "int"),
}


@attrs.frozen
class IdentifyRequest:
    """The IDENTIFY fields nsqd reads; absent keys take Go's zero values."""

    client_id: str = ""
    hostname: str = ""
    heartbeat_interval: int = 0
    output_buffer_size: int = 0
    output_buffer_timeout: int = 0
    feature_negotiation: bool = False
    tls_v1: bool = False
    deflate: bool = False
    deflate_level: int = 0
    snappy: bool = False
    sample_rate: int = 0
    user_agent: str = ""
    msg_timeout: int = 0


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


class _Members(list[tuple[str, Any]]):
    """A decoded JSON object as its members in document order, duplicates kept.

    Go's decoder applies every member in order (a later duplicate overrides an earlier one,
    ``null`` leaves the field as it was, and a wrongly typed member fails the decode even if a
    later duplicate is fine); a dict would keep only the last value of each exact key.
    """


def _go_replace_invalid(error: UnicodeError) -> tuple[str, int]:
    # Go's JSON string decoding turns each invalid UTF-8 byte into its own U+FFFD.
    assert isinstance(error, UnicodeDecodeError)
    return "\ufffd" * (error.end - error.start), error.end


codecs.register_error("trinsq.go-replace", _go_replace_invalid)
# Python's JSON decoder keeps unpaired \uD800-\uDFFF escapes; Go's replaces each with U+FFFD.
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _field_for(key: str) -> tuple[str, str] | None:
    """Match a member name to a field as Go's encoding/json does: exactly, else under simple
    case folding (which also folds U+017F LONG S to "s" and U+212A KELVIN SIGN to "k")."""
    return _FIELDS.get(key) or _FIELDS.get(key.lower().replace("\u017f", "s"))


def _decode_failed() -> ProtocolError:
    return ProtocolError("E_BAD_BODY", "IDENTIFY failed to decode JSON body")


def decode_identify_json(body: bytes) -> object:
    """An IDENTIFY body (V2's or V1's) as Go's decoder reads it: invalid UTF-8 replaced,
    NaN/Infinity refused, objects as :class:`_Members` (members in order, duplicates kept)."""
    try:
        return decode_json(
            body.decode("utf-8", "trinsq.go-replace"),
            parse_constant=_reject_constant,
            object_pairs_hook=_Members,
        )
    except JsonError:
        raise _decode_failed() from None


def _coerce(kind: str, value: object) -> object:
    """Check one value's JSON type as Go's decoder would for the struct field's Go type."""
    if kind == "str":
        if isinstance(value, str):
            return _LONE_SURROGATE.sub("\ufffd", value)
    elif kind == "bool":
        if isinstance(value, bool):
            return value
    elif isinstance(value, int) and not isinstance(value, bool):
        low, high = _INT32 if kind == "int32" else _INT64
        if low <= value <= high:
            return value
    raise _decode_failed()


def parse_identify(body: bytes) -> IdentifyRequest:
    """Decode an IDENTIFY body.

    Raises:
        ProtocolError: ``E_BAD_BODY IDENTIFY failed to decode JSON body`` for invalid JSON or a
            value of the wrong JSON type (unknown keys are ignored, ``null`` leaves a default).
    """
    document = decode_identify_json(body)
    if document is None:
        return IdentifyRequest()
    if not isinstance(document, _Members):
        raise _decode_failed()
    values: dict[str, object] = {}
    for key, value in document:
        field = _field_for(key)
        if field is None or value is None:
            continue
        attribute, kind = field
        values[attribute] = _coerce(kind, value)
    return IdentifyRequest(**values)  # type: ignore[arg-type]


@attrs.frozen
class ServerFeatures:
    """What the server offers and allows (nsqd options), for IDENTIFY."""

    version: str
    max_rdy_count: int = 2500
    max_heartbeat_interval_ms: int = 60_000
    max_output_buffer_size: int = 65_536
    min_output_buffer_timeout_ms: int = 25
    max_output_buffer_timeout_ms: int = 30_000
    max_msg_timeout_ms: int = 900_000
    tls_available: bool = False
    deflate_enabled: bool = True
    snappy_enabled: bool = True
    max_deflate_level: int = 6
    auth_required: bool = False


@attrs.frozen
class ClientSettings:
    """Per-connection settings a client can change through IDENTIFY.

    ``heartbeat_interval_ms`` 0 means heartbeats are off; ``output_buffer_timeout_ms`` 0 means
    no timed flush.
    """

    heartbeat_interval_ms: int = 30_000
    output_buffer_size: int = 16_384
    output_buffer_timeout_ms: int = 250
    sample_rate: int = 0
    msg_timeout_ms: int = 60_000


@attrs.frozen
class IdentifyResult:
    """The outcome of one IDENTIFY: the client's new settings and what to send back."""

    request: IdentifyRequest
    settings: ClientSettings
    tls_v1: bool = False
    snappy: bool = False
    deflate: bool = False
    deflate_level: int = 6
    # None means reply with a plain OK (no feature negotiation).
    response: bytes | None = None


def _invalid(what: str, value: int) -> ProtocolError:
    return ProtocolError("E_BAD_BODY", f"IDENTIFY {what} ({value}) is invalid")


def _apply(
    request: IdentifyRequest, current: ClientSettings, server: ServerFeatures
) -> ClientSettings:
    """Apply the request to the client's settings in nsqd's order; the first bad value wins."""
    heartbeat = current.heartbeat_interval_ms
    wanted = request.heartbeat_interval
    if wanted == -1:
        heartbeat = 0
    elif wanted != 0:
        if not 1000 <= wanted <= server.max_heartbeat_interval_ms:
            raise _invalid("heartbeat interval", wanted)
        heartbeat = wanted

    buffer_timeout = current.output_buffer_timeout_ms
    wanted = request.output_buffer_timeout
    if wanted == -1:
        buffer_timeout = 0
    elif wanted != 0:
        low, high = server.min_output_buffer_timeout_ms, server.max_output_buffer_timeout_ms
        if not low <= wanted <= high:
            raise _invalid("output buffer timeout", wanted)
        buffer_timeout = wanted

    buffer_size = current.output_buffer_size
    wanted = request.output_buffer_size
    if wanted == -1:
        buffer_size, buffer_timeout = 1, 0  # unbuffered: every write goes straight out
    elif wanted != 0:
        if not 64 <= wanted <= server.max_output_buffer_size:
            raise _invalid("output buffer size", wanted)
        buffer_size = wanted

    if not 0 <= request.sample_rate <= 99:
        raise _invalid("sample rate", request.sample_rate)

    msg_timeout = current.msg_timeout_ms
    wanted = request.msg_timeout
    if wanted != 0:
        if not 1000 <= wanted <= server.max_msg_timeout_ms:
            raise _invalid("msg timeout", wanted)
        msg_timeout = wanted

    return ClientSettings(
        heartbeat_interval_ms=heartbeat,
        output_buffer_size=buffer_size,
        output_buffer_timeout_ms=buffer_timeout,
        sample_rate=request.sample_rate,
        msg_timeout_ms=msg_timeout,
    )


def negotiate_identify(
    body: bytes, current: ClientSettings, server: ServerFeatures
) -> IdentifyResult:
    """Decode, validate and negotiate one IDENTIFY.

    Raises:
        ProtocolError: ``E_BAD_BODY`` for bad JSON or values, ``E_IDENTIFY_FAILED`` when both
            snappy and deflate would be negotiated.
    """
    request = parse_identify(body)
    settings = _apply(request, current, server)
    if not request.feature_negotiation:
        return IdentifyResult(request, settings)
    tls_v1 = server.tls_available and request.tls_v1
    deflate = server.deflate_enabled and request.deflate
    deflate_level = request.deflate_level if deflate and request.deflate_level > 0 else 6
    deflate_level = min(deflate_level, server.max_deflate_level)
    snappy = server.snappy_enabled and request.snappy
    if deflate and snappy:
        raise ProtocolError(
            "E_IDENTIFY_FAILED", "cannot enable both deflate and snappy compression"
        )
    reply = {
        "max_rdy_count": server.max_rdy_count,
        "version": server.version,
        "max_msg_timeout": server.max_msg_timeout_ms,
        "msg_timeout": settings.msg_timeout_ms,
        "tls_v1": tls_v1,
        "deflate": deflate,
        "deflate_level": deflate_level,
        "max_deflate_level": server.max_deflate_level,
        "snappy": snappy,
        "sample_rate": settings.sample_rate,
        "auth_required": server.auth_required,
        "output_buffer_size": settings.output_buffer_size,
        "output_buffer_timeout": settings.output_buffer_timeout_ms,
    }
    response = json.dumps(reply, separators=(",", ":")).encode()
    return IdentifyResult(request, settings, tls_v1, snappy, deflate, deflate_level, response)

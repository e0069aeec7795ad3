"""The client side of NSQ protocol V2, sans-IO (go-nsq command.go, conn.go): no trio here.

* Encoders, one per command, return the bytes to write. Names are checked before anything
  is written: nsqd answers a bad name with a fatal error that would close a connection other
  callers share, so a bad name fails only its own call (with the error nsqd would give).
* :class:`ClientProtocol` turns received bytes into events (:class:`Response`,
  :class:`ErrorReply` holding a typed error, :class:`MessageFrame`), answers heartbeats by
  queueing a NOP, and holds the bytes waiting to be written.
* :func:`parse_identify_response` and :func:`parse_auth_response` read the handshake's
  answers into :class:`Negotiated` and :class:`AuthIdentity`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any, Final

import attrs

from ..protocol import (
    MAGIC_V2,
    MESSAGE_HEADER_SIZE,
    Frame,
    FrameDecoder,
    FrameType,
    go_quote,
    is_valid_channel_name,
    is_valid_topic_name,
)
from ._errors import (
    BadBodyError,
    BadChannelError,
    BadMessageError,
    BadTopicError,
    ConnectError,
    ConnectionClosedError,
    ProtocolError,
    error_from_frame,
)

__all__ = [
    "MAGIC_V2",
    "AuthIdentity",
    "ClientProtocol",
    "ErrorReply",
    "Event",
    "MessageFrame",
    "Negotiated",
    "Response",
    "encode_auth",
    "encode_cls",
    "encode_dpub",
    "encode_fin",
    "encode_identify",
    "encode_mpub",
    "encode_nop",
    "encode_pub",
    "encode_rdy",
    "encode_req",
    "encode_sub",
    "encode_touch",
    "expect_ok",
    "parse_auth_response",
    "parse_identify_response",
]

_SIZE: Final = struct.Struct(">I")
_MESSAGE_HEAD: Final = struct.Struct(">qH")  # timestamp, attempts; then the id and body
_RESPONSE: Final = int(FrameType.RESPONSE)
_ERROR: Final = int(FrameType.ERROR)
_MESSAGE: Final = int(FrameType.MESSAGE)
HEARTBEAT: Final = b"_heartbeat_"
CLOSE_WAIT: Final = b"CLOSE_WAIT"


# -- commands ---------------------------------------------------------------------------------


# Topic names already checked, encoded (a producer publishes to a few topics many times).
_valid_topics: dict[str, bytes] = {}
_VALID_TOPICS_KEPT: Final = 1024


def _topic(command: str, topic: str) -> bytes:
    name = _valid_topics.get(topic)
    if name is not None:
        return name
    if not is_valid_topic_name(topic):
        quoted = go_quote(topic.encode("utf-8", "surrogateescape"))
        raise BadTopicError("E_BAD_TOPIC", f"{command} topic name {quoted} is not valid")
    name = topic.encode()
    if len(_valid_topics) >= _VALID_TOPICS_KEPT:
        _valid_topics.clear()
    _valid_topics[topic] = name
    return name


def _body(command: str, data: bytes) -> bytes:
    if not data:
        raise BadMessageError("E_BAD_MESSAGE", f"{command} invalid message body size 0")
    return data


def _message_id(message_id: bytes) -> bytes:
    if len(message_id) != 16:
        raise ValueError(f"a message id is 16 bytes, got {len(message_id)}")
    return message_id


def encode_identify(fields: dict[str, Any]) -> bytes:
    data = json.dumps(fields, separators=(",", ":")).encode()
    return b"IDENTIFY\n" + _SIZE.pack(len(data)) + data


def encode_auth(secret: str) -> bytes:
    data = secret.encode()
    return b"AUTH\n" + _SIZE.pack(len(data)) + data


def encode_sub(topic: str, channel: str) -> bytes:
    name = _topic("SUB", topic)
    if not is_valid_channel_name(channel):
        quoted = go_quote(channel.encode("utf-8", "surrogateescape"))
        raise BadChannelError("E_BAD_CHANNEL", f"SUB channel name {quoted} is not valid")
    return b"SUB " + name + b" " + channel.encode() + b"\n"


def encode_rdy(count: int) -> bytes:
    if count < 0:
        raise ValueError(f"RDY count must be >= 0, got {count}")
    return b"RDY %d\n" % count


def encode_fin(message_id: bytes) -> bytes:
    return b"FIN " + _message_id(message_id) + b"\n"


def encode_req(message_id: bytes, delay: float) -> bytes:
    """REQ with ``delay`` in seconds (sent as whole milliseconds)."""
    return b"REQ %s %d\n" % (_message_id(message_id), max(0, int(delay * 1000)))


def encode_touch(message_id: bytes) -> bytes:
    return b"TOUCH " + _message_id(message_id) + b"\n"


def encode_pub(topic: str, body: bytes) -> bytes:
    return b"PUB " + _topic("PUB", topic) + b"\n" + _SIZE.pack(len(body)) + _body("PUB", body)


def encode_dpub(topic: str, body: bytes, delay: float) -> bytes:
    """DPUB with ``delay`` in seconds (sent as whole milliseconds)."""
    head = b"DPUB %s %d\n" % (_topic("DPUB", topic), int(delay * 1000))
    return head + _SIZE.pack(len(body)) + _body("DPUB", body)


def encode_mpub(topic: str, bodies: Sequence[bytes]) -> bytes:
    name = _topic("MPUB", topic)
    if not bodies:
        raise BadBodyError("E_BAD_BODY", "MPUB invalid message count 0")
    parts = [_SIZE.pack(len(bodies))]
    for body in bodies:
        parts.append(_SIZE.pack(len(body)))
        parts.append(_body("MPUB", body))
    payload = b"".join(parts)
    return b"MPUB " + name + b"\n" + _SIZE.pack(len(payload)) + payload


def encode_nop() -> bytes:
    return b"NOP\n"


def encode_cls() -> bytes:
    return b"CLS\n"


# -- events -----------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Response:
    """A response frame other than a heartbeat (``OK``, ``CLOSE_WAIT``, JSON)."""

    data: bytes


@attrs.frozen(slots=True)
class ErrorReply:
    """An error frame; ``error.fatal`` says whether nsqd closes the connection after it."""

    error: ProtocolError


@attrs.frozen(slots=True)
class MessageFrame:
    """A message delivered to a subscribed connection."""

    id: bytes
    body: bytes
    timestamp: int  # nanoseconds since the epoch, as nsqd stamped it
    attempts: int


Event = Response | ErrorReply | MessageFrame
_OK: Final = Response(b"OK")  # the most common frame of all, made once


class ClientProtocol:
    """One connection's framing state: bytes in, events out; commands in, bytes out."""

    def __init__(self, max_frame_size: int = 64 * 1024 * 1024) -> None:
        self._decoder = FrameDecoder(max_frame_size)
        self._output = bytearray()
        self.heartbeats = 0  # heartbeats received (each answered with a NOP)

    # Writing
    def send(self, data: bytes) -> None:
        """Queue an encoded command."""
        self._output += data

    @property
    def output_size(self) -> int:
        return len(self._output)

    def data_to_send(self) -> bytes:
        """Everything queued, oldest first; the queue is empty afterwards."""
        data = bytes(self._output)
        self._output.clear()
        return data

    # Reading
    def receive_data(self, data: bytes | bytearray) -> list[Event]:
        """Feed received bytes; return the events of every complete frame.

        Raises:
            ConnectionClosedError: the server sent something that is not a frame.
        """
        self._decoder.feed(data)
        try:
            frames = self._decoder.raw_frames()
        except ValueError as error:
            raise ConnectionClosedError(f"invalid frame from nsqd: {error}") from None
        events: list[Event] = []
        for kind, payload in frames:
            if kind == _RESPONSE:
                if payload == b"OK":
                    events.append(_OK)
                elif payload == HEARTBEAT:
                    self.heartbeats += 1
                    self._output += encode_nop()
                else:
                    events.append(Response(payload))
            elif kind == _MESSAGE:
                if len(payload) < MESSAGE_HEADER_SIZE:
                    raise ConnectionClosedError("invalid message frame from nsqd")
                timestamp, attempts = _MESSAGE_HEAD.unpack_from(payload)
                events.append(MessageFrame(payload[10:26], payload[26:], timestamp, attempts))
            elif kind == _ERROR:
                events.append(ErrorReply(error_from_frame(payload)))
            else:
                raise ConnectionClosedError(f"invalid frame from nsqd: frame type {kind}")
        return events

    def feed(self, data: bytes | bytearray) -> None:
        """Feed received bytes to be read frame by frame with :meth:`next_frame` (during the
        handshake, where each answer may change the layers below)."""
        self._decoder.feed(data)

    def next_frame(self) -> Frame | None:
        """The next complete frame as it is, or None for now."""
        try:
            return self._decoder.next_frame()
        except ValueError as error:
            raise ConnectionClosedError(f"invalid frame from nsqd: {error}") from None

    def take_unparsed(self) -> bytes:
        """Bytes received past the last complete frame (they belong to an upgraded layer)."""
        return self._decoder.take_unparsed()


# -- handshake answers ------------------------------------------------------------------------


@attrs.frozen
class Negotiated:
    """What nsqd's IDENTIFY answer settled (a plain ``OK`` means an nsqd without feature
    negotiation: ``feature_negotiation`` False and the defaults below)."""

    feature_negotiation: bool = False
    version: str = ""
    max_rdy_count: int = 2500
    max_msg_timeout: float = 0.0  # seconds
    msg_timeout: float = 0.0  # seconds
    tls: bool = False
    snappy: bool = False
    deflate: bool = False
    deflate_level: int = 0
    max_deflate_level: int = 0
    sample_rate: int = 0
    auth_required: bool = False
    output_buffer_size: int = 0
    output_buffer_timeout: float = 0.0  # seconds


@attrs.frozen
class AuthIdentity:
    """nsqd's answer to AUTH."""

    identity: str
    identity_url: str
    permission_count: int


def _raise_error_frame(frame: Frame) -> None:
    if frame.frame_type == FrameType.ERROR:
        raise error_from_frame(frame.data)
    if frame.frame_type != FrameType.RESPONSE:
        raise ConnectError(f"unexpected frame type {int(frame.frame_type)} during setup")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError:
        raise ConnectError(f"{what} answer is not JSON: {data[:100]!r}") from None
    if not isinstance(document, dict):
        raise ConnectError(f"{what} answer is not a JSON object: {data[:100]!r}")
    return document


def _get(document: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = document.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConnectError(f"IDENTIFY answer has a bad {key}: {value!r}")
    return value


def parse_identify_response(frame: Frame) -> Negotiated:
    """Read nsqd's answer to IDENTIFY.

    Raises:
        ProtocolError: nsqd answered with an error frame (typed by its code).
        ConnectError: the answer is neither ``OK`` nor the JSON nsqd sends.
    """
    _raise_error_frame(frame)
    if frame.data == b"OK":
        return Negotiated()
    doc = _json_object(frame.data, "IDENTIFY")
    return Negotiated(
        feature_negotiation=True,
        version=_get(doc, "version", str, ""),
        max_rdy_count=_get(doc, "max_rdy_count", int, 2500),
        max_msg_timeout=_get(doc, "max_msg_timeout", float, 0.0) / 1000,
        msg_timeout=_get(doc, "msg_timeout", float, 0.0) / 1000,
        tls=_get(doc, "tls_v1", bool, False),
        snappy=_get(doc, "snappy", bool, False),
        deflate=_get(doc, "deflate", bool, False),
        deflate_level=_get(doc, "deflate_level", int, 0),
        max_deflate_level=_get(doc, "max_deflate_level", int, 0),
        sample_rate=_get(doc, "sample_rate", int, 0),
        auth_required=_get(doc, "auth_required", bool, False),
        output_buffer_size=_get(doc, "output_buffer_size", int, 0),
        output_buffer_timeout=_get(doc, "output_buffer_timeout", float, 0.0) / 1000,
    )


def parse_auth_response(frame: Frame) -> AuthIdentity:
    """Read nsqd's answer to AUTH.

    Raises:
        ProtocolError: nsqd refused (``AuthFailedError`` and the like).
        ConnectError: the answer is not the JSON nsqd sends.
    """
    _raise_error_frame(frame)
    doc = _json_object(frame.data, "AUTH")
    return AuthIdentity(
        identity=_get(doc, "identity", str, ""),
        identity_url=_get(doc, "identity_url", str, ""),
        permission_count=_get(doc, "permission_count", int, 0),
    )


def expect_ok(frame: Frame, what: str) -> None:
    """Check the ``OK`` nsqd sends over a layer it has just upgraded to.

    Raises:
        ProtocolError: an error frame instead.
        ConnectError: any other answer.
    """
    _raise_error_frame(frame)
    if frame.data != b"OK":
        raise ConnectError(f"invalid response from {what} upgrade: {frame.data[:100]!r}")

"""NSQ TCP protocol V1, sans-IO: the registry's side (nsqlookupd/tcp.go, lookup_protocol_v1.go)
and the broker's side (nsqd/lookup_peer.go with go-nsq's command.go).

Requests are text lines; only IDENTIFY carries a body, ``[int32 size][JSON]``. Responses and
errors alike are ``[uint32 BE size][data]`` with no frame type, and every error is fatal: the
server sends it, then closes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Final

import attrs

from ._errors import ConnectionMustClose, ProtocolError

# The Go encoding/json rules the V2 IDENTIFY decoder already implements (and registers the
# "trinsq.go-replace" codec error handler for).
from ._identify import _LONE_SURROGATE, _decode_failed, _Members, decode_identify_json
from ._names import is_valid_name_bytes
from ._receive import ReceiveBuffer
from ._v2states import CLOSED, NEED_DATA, NeedData, StreamClosed

__all__ = [
    "MAGIC_V1",
    "LookupCommand",
    "LookupIdentify",
    "LookupPing",
    "LookupRegister",
    "LookupUnregister",
    "PeerIdentity",
    "V1ResponseDecoder",
    "V1ServerConnection",
    "encode_identify",
    "encode_ping",
    "encode_register",
    "encode_unregister",
    "encode_v1_error",
    "encode_v1_response",
    "parse_lookup_identify",
    "v1_magic",
]

MAGIC_V1: Final = b"  V1"
_SIZE: Final = struct.Struct(">I")
_INT32: Final = struct.Struct(">i")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
# Go's unicode.IsSpace, which strings.TrimSpace uses; str.strip() would also drop \x1c-\x1f.
_GO_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
# PeerInfo's JSON fields (nsqlookupd/registration_db.go), True for a Go int. remote_address is
# decoded, so a wrong type fails the decode, but nsqlookupd overwrites it with the peer address.
_PEER_FIELDS: Final = {
    "remote_address": False,
    "hostname": False,
    "broadcast_address": False,
    "tcp_port": True,
    "http_port": True,
    "version": False,
}
# json.Marshal's HTML-safe escapes, which Python's json.dumps does not make.
_GO_JSON_ESCAPES: Final = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


@attrs.frozen(slots=True)
class PeerIdentity:
    """What a broker says about itself in IDENTIFY; absent keys take Go's zero values."""

    broadcast_address: str
    tcp_port: int
    http_port: int
    version: str
    hostname: str = ""


@attrs.frozen(slots=True)
class LookupPing:
    pass


@attrs.frozen(slots=True)
class LookupIdentify:
    peer: PeerIdentity


@attrs.frozen(slots=True)
class LookupRegister:
    topic: str
    channel: str | None = None


@attrs.frozen(slots=True)
class LookupUnregister:
    topic: str
    channel: str | None = None


LookupCommand = LookupPing | LookupIdentify | LookupRegister | LookupUnregister
_PING: Final = LookupPing()


def parse_lookup_identify(body: bytes) -> PeerIdentity:
    """Decode an IDENTIFY body as nsqlookupd does into its PeerInfo.

    Unknown keys are ignored (also topology_zone/topology_region, which v1.3.0 does not know),
    keys match case-insensitively, ``null`` leaves a field at its zero value.

    Raises:
        ProtocolError: ``E_BAD_BODY IDENTIFY failed to decode JSON body`` for invalid JSON or a
            wrongly typed known field; ``E_BAD_BODY IDENTIFY missing fields`` when
            broadcast_address, tcp_port, http_port or version is empty or zero.
    """
    document = decode_identify_json(body)
    texts: dict[str, str] = {}
    numbers: dict[str, int] = {}
    if document is not None:  # a JSON null decodes into an untouched struct in Go
        if not isinstance(document, _Members):
            raise _decode_failed()
        for key, value in document:
            # Go matches the exact name first, else under simple case folding.
            name = key if key in _PEER_FIELDS else key.lower().replace("\u017f", "s")
            is_int = _PEER_FIELDS.get(name)
            if is_int is None or value is None:
                continue
            if is_int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise _decode_failed()
                if not _INT64_MIN <= value <= _INT64_MAX:
                    raise _decode_failed()
                numbers[name] = value
            elif isinstance(value, str):
                texts[name] = _LONE_SURROGATE.sub("\ufffd", value)
            else:
                raise _decode_failed()
    peer = PeerIdentity(
        broadcast_address=texts.get("broadcast_address", ""),
        tcp_port=numbers.get("tcp_port", 0),
        http_port=numbers.get("http_port", 0),
        version=texts.get("version", ""),
        hostname=texts.get("hostname", ""),
    )
    if not (peer.broadcast_address and peer.tcp_port and peer.http_port and peer.version):
        raise ProtocolError("E_BAD_BODY", "IDENTIFY missing fields")
    return peer


def _is_valid_name(name: str) -> bool:
    return is_valid_name_bytes(name.encode("utf-8", "surrogateescape"))


def _topic_channel(command: str, params: list[str]) -> tuple[str, str | None]:
    """nsqlookupd's getTopicChan: a missing or empty channel means none; extras are ignored."""
    if not params:
        raise ProtocolError("E_INVALID", f"{command} insufficient number of params")
    topic = params[0]
    channel = params[1] if len(params) >= 2 else ""
    if not _is_valid_name(topic):
        raise ProtocolError("E_BAD_TOPIC", f"{command} topic name '{topic}' is not valid")
    if channel and not _is_valid_name(channel):
        raise ProtocolError("E_BAD_CHANNEL", f"{command} channel name '{channel}' is not valid")
    return topic, channel or None


class V1ServerConnection(ReceiveBuffer):
    """The protocol state of one broker connection to the registry, with no I/O.

    Feed bytes with :meth:`receive_data` and pull commands with :meth:`next_command`. Any
    :class:`ProtocolError` is fatal: send :func:`encode_v1_error` of it, then close.

    Args:
        max_body_size: largest IDENTIFY body accepted (nsqlookupd has no bound).
        max_line_size: longest command line, newline included; nsqlookupd has no bound, but
            buffering a line without end would let a peer take all our memory.
    """

    def __init__(self, max_body_size: int = 5 * 1024 * 1024, max_line_size: int = 16384) -> None:
        self.max_body_size = max_body_size
        self.max_line_size = max_line_size
        super().__init__()
        self._need_magic = True
        self._in_identify = False  # IDENTIFY line read, its body not yet
        self._body_size: int | None = None
        self._identified = False
        self._failed = False

    @property
    def identified(self) -> bool:
        """Whether an IDENTIFY has been accepted (REGISTER and UNREGISTER need one)."""
        return self._identified

    def next_command(self) -> LookupCommand | NeedData | StreamClosed:
        """Return the next complete command, NEED_DATA, or CLOSED.

        Raises:
            ProtocolError: send it, then close.
            ConnectionMustClose: close without a response.
        """
        if self._failed:
            raise RuntimeError("the connection already failed")
        try:
            if self._need_magic:
                if self.buffered < 4:
                    # nsqlookupd closes silently when the magic is cut short.
                    return CLOSED if self._eof else NEED_DATA
                if self._buffer[self._pos : self._pos + 4] != MAGIC_V1:
                    raise ProtocolError("E_BAD_PROTOCOL")
                self._pos += 4
                self._need_magic = False
            if self._in_identify:
                return self._read_identify_body()
            return self._read_line()
        except (ProtocolError, ConnectionMustClose):
            self._failed = True
            raise

    def _read_line(self) -> LookupCommand | NeedData | StreamClosed:
        buffer, start = self._buffer, self._pos
        newline = buffer.find(b"\n", start + self._scanned)
        if newline < 0:
            pending = len(buffer) - start
            if pending >= self.max_line_size:
                raise ConnectionMustClose("command line longer than max_line_size")
            if self._eof:
                return CLOSED  # nsqlookupd drops an unterminated last line
            self._scanned = pending
            return NEED_DATA
        if newline - start >= self.max_line_size:
            raise ConnectionMustClose("command line longer than max_line_size")
        # surrogateescape keeps invalid UTF-8 bytes exact for error texts; Go's TrimSpace never
        # trims them either.
        line = buffer[start:newline].decode("utf-8", "surrogateescape").strip(_GO_SPACE)
        self._pos = newline + 1
        self._scanned = 0
        name, *params = line.split(" ")
        if name == "PING":
            return _PING  # allowed before IDENTIFY; extra params are ignored
        if name == "IDENTIFY":
            if self._identified:
                raise ProtocolError("E_INVALID", "cannot IDENTIFY again")
            self._in_identify = True
            return self._read_identify_body()
        if name in ("REGISTER", "UNREGISTER"):
            # nsqlookupd checks identification before the params.
            if not self._identified:
                raise ProtocolError("E_INVALID", "client must IDENTIFY")
            topic, channel = _topic_channel(name, params)
            if name == "REGISTER":
                return LookupRegister(topic, channel)
            return LookupUnregister(topic, channel)
        raise ProtocolError("E_INVALID", f"invalid command {name}")

    def _read_identify_body(self) -> LookupIdentify | NeedData:
        if self._body_size is None:
            if self.buffered < 4:
                if self._eof:
                    raise ProtocolError("E_BAD_BODY", "IDENTIFY failed to read body size")
                return NEED_DATA
            (size,) = _INT32.unpack_from(self._buffer, self._pos)
            self._pos += 4
            if size > self.max_body_size:
                raise ProtocolError(
                    "E_BAD_BODY", f"IDENTIFY body too big {size} > {self.max_body_size}"
                )
            if size < 0:  # nsqlookupd panics in make([]byte, size) here
                raise ProtocolError("E_BAD_BODY", f"IDENTIFY invalid body size {size}")
            self._body_size = size
        size = self._body_size
        if self.buffered < size:
            if self._eof:
                raise ProtocolError("E_BAD_BODY", "IDENTIFY failed to read body")
            return NEED_DATA
        body = bytes(self._buffer[self._pos : self._pos + size])
        self._pos += size
        self._body_size = None
        self._in_identify = False
        peer = parse_lookup_identify(body)
        self._identified = True
        return LookupIdentify(peer)


def encode_v1_response(data: bytes) -> bytes:
    """A V1 response: ``[uint32 BE size][data]`` (protocol.SendResponse), no frame type."""
    return _SIZE.pack(len(data)) + data


def encode_v1_error(error: ProtocolError) -> bytes:
    """A V1 error, sent exactly like a response."""
    return encode_v1_response(error.frame_data)


# -- client side (nsqd's lookup peer) ---------------------------------------------------------


def v1_magic() -> bytes:
    """The 4 bytes a client sends first."""
    return MAGIC_V1


def _command(name: str, topic: str, channel: str | None) -> bytes:
    # go-nsq's Register/UnRegister drop an empty channel.
    params = f" {topic} {channel}" if channel else f" {topic}"
    return f"{name}{params}\n".encode()


def encode_identify(info: Mapping[str, object]) -> bytes:
    """``IDENTIFY\\n[uint32 BE size][JSON]`` with the JSON as Go's json.Marshal writes a map of
    strings, ints and bools: keys sorted, compact, UTF-8, HTML characters escaped."""
    text = json.dumps(info, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    # Lone surrogates are invalid UTF-8 bytes kept by surrogateescape; Go writes U+FFFD.
    body = _LONE_SURROGATE.sub("\ufffd", text.translate(_GO_JSON_ESCAPES)).encode()
    return b"IDENTIFY\n" + _SIZE.pack(len(body)) + body


def encode_register(topic: str, channel: str | None = None) -> bytes:
    return _command("REGISTER", topic, channel)


def encode_unregister(topic: str, channel: str | None = None) -> bytes:
    return _command("UNREGISTER", topic, channel)


def encode_ping() -> bytes:
    return b"PING\n"


class V1ResponseDecoder:
    """Incremental decoder of V1 responses, fed arbitrary chunks.

    Args:
        max_size: nsqd bounds a lookupd response by its --max-body-size; a larger (or negative)
            announced size raises ``ValueError`` as soon as the 4 size bytes are in.
    """

    def __init__(self, max_size: int = 5 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._max_size = max_size

    def feed(self, data: bytes | bytearray) -> None:
        self._buffer += data

    def next_response(self) -> bytes | None:
        """Return the next complete response's data, or None until more bytes arrive."""
        if len(self._buffer) < 4:
            return None
        (size,) = _INT32.unpack_from(self._buffer)
        if size > self._max_size:
            raise ValueError(
                f"response body size ({size}) is greater than limit ({self._max_size})"
            )
        if size < 0:  # nsqd would panic allocating it
            raise ValueError(f"response body size ({size}) is negative")
        if len(self._buffer) < 4 + size:
            return None
        data = bytes(self._buffer[4 : 4 + size])
        del self._buffer[: 4 + size]
        return data

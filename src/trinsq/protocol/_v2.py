"""Server side of NSQ TCP protocol V2, sans-IO (nsqd/protocol_v2.go).

Feed bytes with :meth:`V2ServerConnection.receive_data` (``b""`` for end of stream) and pull
validated commands with :meth:`V2ServerConnection.next_command`. Checks run in nsqd's order
and as early as nsqd runs them: a bad size is reported as soon as the 4 size bytes arrive, not
after the body. A fatal problem raises :class:`ProtocolError` (send its frame, then close) or
:class:`ConnectionMustClose` (close silently).

No call does unbounded work: an MPUB body (up to a million messages) is read in steps of at
most :data:`MPUB_MESSAGES_PER_STEP` messages, and ``next_command`` returns :data:`BUSY` after
a step while more of the body is buffered, so the caller can let others run in between.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Final

import attrs

from ._commands import (
    Auth,
    Close,
    Command,
    DeferredPublish,
    Finish,
    Identify,
    MultiPublish,
    Nop,
    Publish,
    Ready,
    Requeue,
    Subscribe,
    Touch,
)
from ._errors import ConnectionMustClose, ProtocolError
from ._gofmt import go_quote, parse_base10, to_int64, wrap_duration_ms
from ._limits import Limits
from ._mpub import MpubReader, MpubStep
from ._names import is_valid_name_bytes
from ._receive import ReceiveBuffer
from ._v2runs import FIN_LINE, finish_run, publish_run, whole_body
from ._v2states import (
    BUSY,
    CLOSED,
    MAGIC_V2,
    MESSAGE_ID_LENGTH,
    MPUB_MESSAGES_PER_STEP,
    NEED_DATA,
    Busy,
    ClientState,
    NeedData,
    StreamClosed,
)

__all__ = [
    "BUSY",
    "CLOSED",
    "MAGIC_V2",
    "MPUB_MESSAGES_PER_STEP",
    "NEED_DATA",
    "Busy",
    "ClientState",
    "Limits",
    "NeedData",
    "StreamClosed",
    "V2ServerConnection",
]

_NOP: Final = Nop()
_CLOSE: Final = Close()

# What a body-reading step asks for: byte count, plus the error nsqd reports if the stream
# ends (or times out) before that many bytes arrive.
_Read = tuple[int, str, str]
_BodyParser = Generator[_Read, bytes, Command]
_BodyReader = Generator[_Read, bytes, bytes]  # a step of a _BodyParser that yields raw bytes


_DELIVERY_STATES: Final = frozenset({ClientState.SUBSCRIBED, ClientState.CLOSING})


@attrs.frozen
class _PendingMpub:
    topic: str
    reader: MpubReader


def _int32(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


def _whole_ms(nanoseconds: int) -> int:
    """Whole milliseconds, rounded away from zero.

    A wrapped millisecond count can leave a sub-millisecond time.Duration. Rounding away from
    zero keeps a non-zero delay non-zero (nsqd defers on any non-zero duration: channel.go
    RequeueMessage, topic.go messagePump), and keeps REQ's requested value different from the
    clamped one exactly when nsqd clamps.
    """
    if nanoseconds >= 0:
        return -(-nanoseconds // 1_000_000)
    return nanoseconds // 1_000_000


def _text(raw: bytes) -> str:
    """Go's %s of a byte slice: the bytes as they are (kept exact via surrogateescape)."""
    return raw.decode("utf-8", "surrogateescape")


class V2ServerConnection(ReceiveBuffer):
    """The protocol state of one client connection, with no I/O.

    Args:
        limits: sizes and ranges to enforce.
        expect_magic: whether the 4-byte ``"  V2"`` magic is still to come.

    Attributes:
        state: the client state machine (Init, then Subscribed, then Closing).
        heartbeats_disabled: set by the broker when IDENTIFY turned heartbeats off (SUB is then
            refused, as nsqd does).
        tls_required: every command but IDENTIFY needs TLS first.
        tls_active: set once the stream has been upgraded to TLS.
    """

    def __init__(self, limits: Limits, *, expect_magic: bool = True) -> None:
        self.limits = limits
        self.state = ClientState.INIT
        self.heartbeats_disabled = False
        self.tls_required = False
        self.tls_active = False
        super().__init__()
        self._need_magic = expect_magic
        self._body: _BodyParser | None = None
        self._pending_mpub: _PendingMpub | None = None  # an MPUB whose body is being read
        # Reads on in the body being read (one of the two above), if any.
        self._resume: Callable[[], Command | NeedData | StreamClosed | Busy] | None = None
        self.mpub_messages_per_step = MPUB_MESSAGES_PER_STEP
        self._want: _Read = (0, "", "")
        self._failed = False

    # -- input ---------------------------------------------------------------------------------

    def take_trailing_data(self) -> bytes:
        """Remove and return bytes received but not parsed, for a stream upgrade (TLS, snappy,
        deflate): they belong to the upgraded layer and must be replayed into it."""
        data = bytes(self._buffer[self._pos :])
        self._buffer.clear()
        self._pos = self._scanned = 0
        return data

    def subscribed(self) -> None:
        """The broker accepted this client's SUB."""
        self.state = ClientState.SUBSCRIBED

    @property
    def between_commands(self) -> bool:
        """Nothing of a command is buffered: the next byte read starts a new one."""
        return self._resume is None and self._pos >= len(self._buffer)

    def read_failure(self) -> ProtocolError | None:
        """The error nsqd would report if reading stopped now (EOF or a read deadline) in the
        middle of a command body; None when no body is pending."""
        if self._pending_mpub is not None:
            return ProtocolError(*self._pending_mpub.reader.wanted())
        if self._body is None:
            return None
        _, code, text = self._want
        return ProtocolError(code, text)

    # -- output --------------------------------------------------------------------------------

    def next_command(self) -> Command | NeedData | StreamClosed | Busy:
        """Return the next complete command, NEED_DATA, CLOSED, or BUSY (a bounded step of a
        large MPUB body was read and more of it is buffered: call again).

        Raises:
            ProtocolError: a fatal client error; send its frame and close.
            ConnectionMustClose: close without an error frame.
        """
        if self._failed:
            raise RuntimeError("the connection already failed")
        try:
            if self._resume is not None:
                return self._resume()
            if self._pos == len(self._buffer):  # all read: how most turns end
                return CLOSED if self._eof else NEED_DATA
            if self._need_magic:
                return self._read_magic()
            return self._read_line()
        except (ProtocolError, ConnectionMustClose):
            self._failed = True
            self._body = None
            self._pending_mpub = None
            self._resume = None
            raise

    def next_finishes(self, limit: int) -> list[bytes]:
        """The message IDs of up to ``limit`` FIN commands at the front of the buffer, consumed:
        a consumer's commonest input, read here without a command object each. Only lines
        that :meth:`next_command` would read as the same ``Finish`` qualify (``FIN``, one
        space, 16 bytes with no space, a bare newline); anything else stops the run, and
        an empty list means the next command is for :meth:`next_command`."""
        if (
            self.state not in _DELIVERY_STATES  # first: a publisher's answer
            or self._failed
            or self._resume is not None
            or self._need_magic
            or (self.tls_required and not self.tls_active)
            or self.limits.max_line_size <= FIN_LINE
        ):
            return []
        ids, self._pos = finish_run(self._buffer, self._pos, limit)
        if ids:
            self._scanned = 0
        return ids

    def next_publishes(self, topic: str, limit: int) -> list[bytes]:
        """The bodies of up to ``limit`` more PUBs to ``topic`` at the front of the buffer,
        consumed: a pipelining producer's commands, read without a command object each. Only
        complete PUBs that :meth:`next_command` would read as a valid ``Publish`` to the same
        topic qualify (the same ``PUB <topic>`` line, a body of a valid size); anything else
        stops the run."""
        if (
            len(self._buffer) <= self._pos  # the commonest case: a PUB waits for its OK
            or self._failed
            or self._resume is not None
            or self._need_magic
            or (self.tls_required and not self.tls_active)
        ):
            return []
        line = b"PUB " + topic.encode("ascii") + b"\n"
        bodies, self._pos = publish_run(
            self._buffer, self._pos, line, limit, self.limits.max_msg_size
        )
        if bodies:
            self._scanned = 0
        return bodies

    def _read_magic(self) -> Command | NeedData | StreamClosed | Busy:
        if self.buffered < 4:
            return CLOSED if self._eof else NEED_DATA
        magic = bytes(self._buffer[self._pos : self._pos + 4])
        if magic != MAGIC_V2:
            raise ProtocolError("E_BAD_PROTOCOL")
        self._pos += 4
        self._need_magic = False
        return self._read_line()

    def _read_line(self) -> Command | NeedData | StreamClosed | Busy:
        buffer = self._buffer
        start = self._pos
        newline = buffer.find(b"\n", start + self._scanned)
        if newline < 0:
            pending = len(buffer) - start
            if pending >= self.limits.max_line_size:
                raise ConnectionMustClose("command line longer than the read buffer")
            if self._eof:
                return CLOSED
            self._scanned = pending
            return NEED_DATA
        if newline - start >= self.limits.max_line_size:
            raise ConnectionMustClose("command line longer than the read buffer")
        end = newline - 1 if newline > start and buffer[newline - 1] == 0x0D else newline
        params = bytes(buffer[start:end]).split(b" ")
        self._pos = newline + 1
        self._scanned = 0
        name = params[0]
        if name != b"IDENTIFY" and self.tls_required and not self.tls_active:
            raise ProtocolError(
                "E_INVALID", f"cannot {_text(name)} in current state (TLS required)"
            )
        if (
            name == b"FIN"
            and len(params) >= 2
            and len(params[1]) == MESSAGE_ID_LENGTH
            and self.state in _DELIVERY_STATES
        ):
            return Finish(params[1])  # the commonest command, in one step
        if name == b"PUB" and len(params) >= 2 and is_valid_name_bytes(params[1]):
            # The common case, a PUB that arrived whole and valid, in one step; anything else
            # (incomplete, a wrong size) is left to the incremental path and its errors.
            body, self._pos = whole_body(self._buffer, self._pos, self.limits.max_msg_size)
            if body is not None:
                return Publish(params[1].decode("ascii"), body)
        handler = _HANDLERS.get(name)
        if handler is None:
            raise ProtocolError("E_INVALID", f"invalid command {_text(name)}")
        result = handler(self, params)
        if isinstance(result, Generator):
            self._body = result
            self._resume = self._drive_body
            self._want = next(result)
            return self._drive_body()
        return result

    def _read_mpub(self) -> MultiPublish | NeedData | Busy:
        """Read on in the pending MPUB body, at most one step's worth of messages."""
        pending = self._pending_mpub
        assert pending is not None
        self._pos, step = pending.reader.read(
            self._buffer, self._pos, self.mpub_messages_per_step, eof=self._eof
        )
        if step is MpubStep.NEED_DATA:
            return NEED_DATA
        if step is MpubStep.STEP_USED:
            return BUSY
        self._pending_mpub = self._resume = None
        return MultiPublish(pending.topic, pending.reader.bodies())

    def _drive_body(self) -> Command | NeedData | StreamClosed:
        body = self._body
        assert body is not None
        while True:
            size = self._want[0]
            if len(self._buffer) - self._pos < size:
                if self._eof:
                    _, code, text = self._want
                    raise ProtocolError(code, text)
                return NEED_DATA
            chunk = bytes(self._buffer[self._pos : self._pos + size])
            self._pos += size
            try:
                self._want = body.send(chunk)
            except StopIteration as done:
                self._body = self._resume = None
                command: Command = done.value
                return command

    # -- helpers -------------------------------------------------------------------------------

    def _topic(self, params: list[bytes], command: str, code_prefix: str = "") -> str:
        raw = params[1]
        if not is_valid_name_bytes(raw):
            raise ProtocolError(
                "E_BAD_TOPIC", f"{code_prefix}{command} topic name {go_quote(raw)} is not valid"
            )
        return raw.decode("ascii")

    def _require_delivery_state(self, command: str) -> None:
        if self.state not in (ClientState.SUBSCRIBED, ClientState.CLOSING):
            raise ProtocolError("E_INVALID", f"cannot {command} in current state")

    @staticmethod
    def _message_id(raw: bytes) -> bytes:
        if len(raw) != MESSAGE_ID_LENGTH:
            raise ProtocolError("E_INVALID", "invalid message ID")
        return raw

    def _sized_body(
        self, command: str, code: str, *, message: bool
    ) -> Generator[_Read, bytes, bytes]:
        """Read ``[int32 size][body]``; ``message`` picks PUB-style checks and texts over
        IDENTIFY/AUTH-style ones (the two differ in order and wording in nsqd)."""
        if message:
            size = _int32((yield (4, code, f"{command} failed to read message body size")))
            if size <= 0:
                raise ProtocolError(code, f"{command} invalid message body size {size}")
            if size > self.limits.max_msg_size:
                raise ProtocolError(
                    code, f"{command} message too big {size} > {self.limits.max_msg_size}"
                )
            return (yield (size, code, f"{command} failed to read message body"))
        size = _int32((yield (4, code, f"{command} failed to read body size")))
        if size > self.limits.max_body_size:
            raise ProtocolError(
                code, f"{command} body too big {size} > {self.limits.max_body_size}"
            )
        if size <= 0:
            raise ProtocolError(code, f"{command} invalid body size {size}")
        return (yield (size, code, f"{command} failed to read body"))

    # -- commands ------------------------------------------------------------------------------

    def _identify(self, params: list[bytes]) -> _BodyParser:
        if self.state != ClientState.INIT:
            raise ProtocolError("E_INVALID", "cannot IDENTIFY in current state")
        body = yield from self._sized_body("IDENTIFY", "E_BAD_BODY", message=False)
        return Identify(body)

    def _auth(self, params: list[bytes]) -> _BodyParser:
        if self.state != ClientState.INIT:
            raise ProtocolError("E_INVALID", "cannot AUTH in current state")
        if len(params) != 1:
            raise ProtocolError("E_INVALID", "AUTH invalid number of parameters")
        secret = yield from self._sized_body("AUTH", "E_BAD_BODY", message=False)
        return Auth(secret)

    def _sub(self, params: list[bytes]) -> Command:
        if self.state != ClientState.INIT:
            raise ProtocolError("E_INVALID", "cannot SUB in current state")
        if self.heartbeats_disabled:
            raise ProtocolError("E_INVALID", "cannot SUB with heartbeats disabled")
        if len(params) < 3:
            raise ProtocolError("E_INVALID", "SUB insufficient number of parameters")
        topic = self._topic(params, "SUB")
        raw_channel = params[2]
        if not is_valid_name_bytes(raw_channel):
            raise ProtocolError(
                "E_BAD_CHANNEL", f"SUB channel name {go_quote(raw_channel)} is not valid"
            )
        return Subscribe(topic, raw_channel.decode("ascii"))

    def _pub(self, params: list[bytes]) -> _BodyParser:
        if len(params) < 2:
            raise ProtocolError("E_INVALID", "PUB insufficient number of parameters")
        topic = self._topic(params, "PUB")
        body = yield from self._sized_body("PUB", "E_BAD_MESSAGE", message=True)
        return Publish(topic, body)

    def _dpub(self, params: list[bytes]) -> _BodyParser:
        if len(params) < 3:
            raise ProtocolError("E_INVALID", "DPUB insufficient number of parameters")
        topic = self._topic(params, "DPUB")
        raw_timeout = params[2]
        timeout_ms = parse_base10(raw_timeout)
        if timeout_ms is None:
            raise ProtocolError("E_INVALID", f"DPUB could not parse timeout {_text(raw_timeout)}")
        max_ms = self.limits.max_req_timeout_ms
        duration_ns = wrap_duration_ms(timeout_ms)
        if duration_ns < 0 or duration_ns > max_ms * 1_000_000:
            raise ProtocolError("E_INVALID", f"DPUB timeout {timeout_ms} out of range 0-{max_ms}")
        body = yield from self._sized_body("DPUB", "E_BAD_MESSAGE", message=True)
        return DeferredPublish(topic, body, _whole_ms(duration_ns))

    def _mpub(self, params: list[bytes]) -> MultiPublish | NeedData | Busy:
        if len(params) < 2:
            raise ProtocolError("E_INVALID", "MPUB insufficient number of parameters")
        # nsqd repeats the code inside the description here; clients see exactly that.
        topic = self._topic(params, "MPUB", code_prefix="E_BAD_TOPIC ")
        self._pending_mpub = _PendingMpub(topic, MpubReader(self.limits, framed=True))
        self._resume = self._read_mpub
        return self._read_mpub()

    def _rdy(self, params: list[bytes]) -> Command:
        if self.state == ClientState.CLOSING:
            return _NOP  # nsqd ignores RDY after CLS
        if self.state != ClientState.SUBSCRIBED:
            raise ProtocolError("E_INVALID", "cannot RDY in current state")
        count = 1
        if len(params) > 1:
            parsed = parse_base10(params[1])
            if parsed is None:
                raise ProtocolError("E_INVALID", f"RDY could not parse count {_text(params[1])}")
            count = to_int64(parsed)
        if count < 0 or count > self.limits.max_rdy_count:
            # Fatal on purpose in nsqd, so client and server never disagree about RDY.
            raise ProtocolError(
                "E_INVALID", f"RDY count {count} out of range 0-{self.limits.max_rdy_count}"
            )
        return Ready(count)

    def _fin(self, params: list[bytes]) -> Command:
        self._require_delivery_state("FIN")
        if len(params) < 2:
            raise ProtocolError("E_INVALID", "FIN insufficient number of params")
        return Finish(self._message_id(params[1]))

    def _req(self, params: list[bytes]) -> Command:
        self._require_delivery_state("REQ")
        if len(params) < 3:
            raise ProtocolError("E_INVALID", "REQ insufficient number of params")
        message_id = self._message_id(params[1])
        timeout_ms = parse_base10(params[2])
        if timeout_ms is None:
            raise ProtocolError("E_INVALID", f"REQ could not parse timeout {_text(params[2])}")
        duration_ns = wrap_duration_ms(timeout_ms)
        clamped = min(max(duration_ns, 0), self.limits.max_req_timeout_ms * 1_000_000)
        return Requeue(message_id, _whole_ms(clamped), _whole_ms(duration_ns))

    def _touch(self, params: list[bytes]) -> Command:
        self._require_delivery_state("TOUCH")
        if len(params) < 2:
            raise ProtocolError("E_INVALID", "TOUCH insufficient number of params")
        return Touch(self._message_id(params[1]))

    def _cls(self, params: list[bytes]) -> Command:
        if self.state != ClientState.SUBSCRIBED:
            raise ProtocolError("E_INVALID", "cannot CLS in current state")
        self.state = ClientState.CLOSING
        return _CLOSE

    def _nop(self, params: list[bytes]) -> Command:
        return _NOP


# By command name; one table for every connection (bound methods per connection would cost
# each of thousands of clients a dict and a dozen objects).
_Handler = Callable[[V2ServerConnection, list[bytes]], Command | _BodyParser | NeedData | Busy]
_HANDLERS: Final[dict[bytes, _Handler]] = {
    b"IDENTIFY": V2ServerConnection._identify,
    b"FIN": V2ServerConnection._fin,
    b"RDY": V2ServerConnection._rdy,
    b"REQ": V2ServerConnection._req,
    b"PUB": V2ServerConnection._pub,
    b"MPUB": V2ServerConnection._mpub,
    b"DPUB": V2ServerConnection._dpub,
    b"NOP": V2ServerConnection._nop,
    b"TOUCH": V2ServerConnection._touch,
    b"SUB": V2ServerConnection._sub,
    b"CLS": V2ServerConnection._cls,
    b"AUTH": V2ServerConnection._auth,
}

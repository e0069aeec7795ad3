"""One V2 client's session, with no I/O (nsqd/protocol_v2.go's command handling).

The session owns what a client's commands change: the protocol parser (the state machine),
the output buffer, and the requests its transport must carry out because they need I/O: a
stream upgrade after IDENTIFY, an AUTH query, an fsync before answering publishes in
crash-safe mode. It turns each parsed command into a call on the broker core and its
outcome into nsqd's response bytes. It never awaits; the transport (_connection.py) reads,
writes, waits and runs the requests, and tells the session how they went.

Work is done in bounded turns: :meth:`V2Session.run_commands` stops after
:data:`COMMANDS_PER_TURN` commands or :data:`MESSAGES_PER_TURN` message copies published (one
per channel of the topic), whichever comes first, and the transport lets other clients run
before calling it again. A large MPUB is therefore read (by the parser, in steps) and
published (through a core :class:`Publication`, in steps) over many turns; its one OK (or
error) comes after the last message, as in nsqd.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final, Protocol

import attrs

from ...protocol import (
    BUSY,
    CLOSE_WAIT_FRAME,
    CLOSED,
    NEED_DATA,
    OK_FRAME,
    Auth,
    Close,
    ConnectionMustClose,
    DeferredPublish,
    Finish,
    Identify,
    IdentifyResult,
    MultiPublish,
    Nop,
    ProtocolError,
    Publish,
    Ready,
    Requeue,
    Subscribe,
    Touch,
    V2ServerConnection,
    encode_error,
    encode_response,
    go_quote,
    negotiate_identify,
)
from ..core._authstate import AuthState
from ..core._broker import CoreError, Publication
from ..core._channel import Channel, ChannelError
from ..core._client import Client
from ..core._services import BrokerServices

__all__ = [
    "COMMANDS_PER_TURN",
    "MESSAGES_PER_TURN",
    "AuthRequest",
    "Progress",
    "SessionHost",
    "V2Session",
]

log = logging.getLogger("trinsq.broker")

# What one run_commands call may do, a few milliseconds at most: cheap commands (NOP, FIN, RDY,
# TOUCH: 1-1.5 us each; a 64 KiB read of FINs from a consumer, ~3,100, fits in one turn),
# and message copies published (~2.5 us each, with their disk writes; a topic makes one copy
# per channel).
COMMANDS_PER_TURN: Final = 4096
MESSAGES_PER_TURN: Final = 1024


class Progress(enum.Enum):
    """How :meth:`V2Session.run_commands` stopped."""

    NEED_DATA = enum.auto()  # every buffered command ran: read more
    YIELD = enum.auto()  # the turn is used up, or a request waits: let others run, call again
    STOP = enum.auto()  # end the connection


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class SessionHost(Protocol):
    """What the session asks of its transport."""

    def wake(self) -> None:
        """The RDY window or the subscription changed: the pump should look again."""

    def output_ready(self) -> None:
        """A response was queued (``out`` is urgent): the transport should send it soon."""

    def slots_freed(self) -> None:
        """FIN freed RDY slots: the pump should take more, if the channel has any."""

    def set_heartbeat(self, interval: float) -> None:
        """IDENTIFY set a heartbeat interval in seconds (0: none, and no read deadline)."""


@attrs.frozen
class AuthRequest:
    """The auth servers must be asked about the client's secret. ``retry`` is the command
    to run again once an expired authorization has been renewed; None for AUTH itself."""

    retry: Callable[[], None] | None = None


class V2Session:
    """The protocol state and command handling of one V2 client.

    Args:
        services: the broker (its core, options and features).
        client: the client's record, which /stats shows.
        protocol: the sans-IO parser (magic already consumed or not).
        host: the transport, told of wake-ups and heartbeat changes.
        clock: monotonic seconds (authorizations expire on it).
    """

    def __init__(
        self,
        services: BrokerServices,
        client: Client,
        protocol: V2ServerConnection,
        host: SessionHost,
        clock: Callable[[], float],
    ) -> None:
        self.services = services
        self.client = client
        self.protocol = protocol
        client.state_source = protocol  # the parser's state machine is the client's
        self.host = host
        self.clock = clock
        self.out = bytearray()  # bytes for the client, written only by the pump
        # Crash-safe mode: responses wait here until the publishes before them are fsynced.
        self.held: bytearray | None = None
        self.urgent = False  # a response waits: flush without delay
        # Requests for the transport; each stops command processing until it is done.
        self._upgrade: IdentifyResult | None = None
        self._auth_request: AuthRequest | None = None
        self._auth_just_queried = False
        self._budget = MESSAGES_PER_TURN  # messages this turn may still publish
        self._turn_over = False  # a command ended the turn: a request waits, or the budget is spent
        # A publish carried out over several turns, and its command's name (PUB, MPUB, DPUB).
        self._publishing: tuple[str, Publication, int] | None = None

    # -- requests for the transport (setting one ends the turn) ----------------------------------

    @property
    def upgrade(self) -> IdentifyResult | None:
        """The stream upgrade IDENTIFY negotiated, for the transport to carry out."""
        return self._upgrade

    @upgrade.setter
    def upgrade(self, result: IdentifyResult | None) -> None:
        self._upgrade = result
        if result is not None:
            self._turn_over = True

    @property
    def auth_request(self) -> AuthRequest | None:
        """A question for the auth servers, for the transport to ask."""
        return self._auth_request

    @auth_request.setter
    def auth_request(self, request: AuthRequest | None) -> None:
        self._auth_request = request
        if request is not None:
            self._turn_over = True

    # -- input and output ------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray) -> None:
        self.protocol.receive_data(data)

    def respond(self, frame: bytes) -> None:
        if self.held is not None:
            self.held += frame
            return
        self.out += frame
        self.urgent = True
        self.host.output_ready()

    def fail(self, error: ProtocolError) -> bool:
        """Answer a command's error as nsqd does; returns whether the connection must end."""
        log.error("[%s] - %s", self.client.remote_address, error)
        self.respond(encode_error(error))
        return error.fatal

    def run_commands(self) -> Progress:
        """Run buffered commands until the input runs out, one needs the transport (an
        upgrade, an auth query), or the turn is used up (:data:`COMMANDS_PER_TURN` commands or
        :data:`MESSAGES_PER_TURN` messages published)."""
        protocol = self.protocol
        dispatch = _DISPATCH
        self._budget = MESSAGES_PER_TURN
        self._turn_over = False
        if self._publishing is not None:  # a publish begun in an earlier turn goes first
            try:
                if not self._publish_step():
                    return Progress.YIELD
            except ProtocolError as error:
                if self.fail(error):
                    return Progress.STOP
        commands = COMMANDS_PER_TURN
        while True:
            try:
                finished = protocol.next_finishes(commands)
                if finished:  # a consumer's run of FINs, in one call
                    self._finish_many(finished)
                    commands -= len(finished)
                    if not commands:
                        return Progress.YIELD
                    continue
                command = protocol.next_command()
                if command is NEED_DATA:
                    return Progress.NEED_DATA
                if command is CLOSED:
                    return Progress.STOP
                if command is BUSY:
                    return Progress.YIELD
                dispatch[type(command)](self, command)
                commands -= 1
                if self._turn_over or not commands:
                    return Progress.YIELD  # the transport takes its turn, then comes back
            except ProtocolError as error:
                if self.fail(error):
                    return Progress.STOP
            except ConnectionMustClose as reason:
                log.error("[%s] - failed to read command - %s", self.client.remote_address, reason)
                return Progress.STOP

    def release_held(self) -> None:
        """Crash-safe mode: the publishes answered so far are on disk; send the answers."""
        held, self.held = self.held, None
        if held:
            self.respond(bytes(held))

    def tls_established(self, *, common_name: str, version: str, cipher_suite: str) -> None:
        """The transport completed the TLS upgrade IDENTIFY asked for."""
        self.protocol.tls_active = True
        client = self.client
        client.tls = True
        client.tls_common_name = common_name
        client.tls_version = version
        client.tls_cipher_suite = cipher_suite

    def compression_established(self, *, snappy: bool) -> None:
        """The transport wrapped the stream in snappy (or else deflate) framing."""
        if snappy:
            self.client.snappy = True
        else:
            self.client.deflate = True

    def take_messages(self, channel: Channel, window: int) -> int:
        """Move up to ``window`` messages into the output buffer; return the window left."""
        client = self.client
        settings = client.settings
        count = channel.take_into(
            client, window, settings.msg_timeout_ms / 1000, self.out, settings.sample_rate
        )
        client.in_flight_count += count
        client.message_count += count
        return window - count

    # -- commands ------------------------------------------------------------------------------

    def _identify(self, command: Identify) -> None:
        client = self.client
        result = negotiate_identify(command.body, client.settings, self.services.features)
        client.identified(result)
        heartbeat_ms = result.settings.heartbeat_interval_ms
        self.protocol.heartbeats_disabled = heartbeat_ms == 0
        self.host.set_heartbeat(heartbeat_ms / 1000)
        self.respond(OK_FRAME if result.response is None else encode_response(result.response))
        if result.tls_v1 or result.snappy or result.deflate:
            self.upgrade = result

    def _subscribe(self, command: Subscribe) -> None:
        client = self.client
        retry = partial(self._subscribe, command)
        if not self._authorized("SUB", command.topic, command.channel, retry):
            return
        try:
            self.services.core.subscribe(client, command.topic, command.channel)
        except ChannelError as error:
            raise ProtocolError("E_SUB_FAILED", f"SUB failed {error}") from None
        self.protocol.subscribed()
        self.respond(OK_FRAME)

    def _publish_bodies(
        self, name: str, topic_name: str, bodies: Sequence[bytes], defer_ms: int, answers: int = 1
    ) -> None:
        """Publish ``bodies`` as one command (``answers`` PUBs run together answer OK each)."""
        if self.services.options.auth_http_addresses:
            retry = partial(self._publish_bodies, name, topic_name, bodies, defer_ms, answers)
            if not self._authorized(name, topic_name, "", retry):
                return
        try:
            publication = self.services.core.start_publish(topic_name, bodies, defer_ms)
        except CoreError as error:  # exiting
            raise ProtocolError(f"E_{name}_FAILED", f"{name} failed {error}") from None
        # More than this turn allows goes on over the next turns (see run_commands).
        self._publishing = (name, publication, answers)
        if self._publish_step() and self._budget <= 0:
            self._turn_over = True

    def _publish_step(self) -> bool:
        """Publish the next messages of the pending publish, as many as the turn allows (at
        least one); answer it once the last is in. Returns whether it is finished; if not,
        the turn is used up.

        Raises:
            ProtocolError: E_PUB_FAILED and the like; the messages of earlier steps stay.
        """
        assert self._publishing is not None
        name, publication, answers = self._publishing
        try:
            budget = self._budget
            self._budget -= publication.step(budget if budget > 1 else 1)
        except CoreError as error:  # exiting, or the disk write failed
            self._publishing = None
            raise ProtocolError(f"E_{name}_FAILED", f"{name} failed {error}") from None
        if not publication.finished:
            self._budget = 0
            self._turn_over = True
            return False
        self._publishing = None
        self._published(publication.topic.name, len(publication.bodies), answers)
        return True

    def _published(self, topic_name: str, count: int, answers: int) -> None:
        if self.services.storage.crash_safe and self.held is None:
            self.held = bytearray()
        self.client.published(topic_name, count)
        self.respond(OK_FRAME * answers)

    def _publish(self, command: Publish) -> None:
        # A pipelining producer's further PUBs to the same topic, already here, are put with
        # this one in one publish and answered OK each, in order. No more than one step of a
        # publish takes (a copy per channel each), so the put is whole or nothing: if it fails,
        # the first PUB's E_PUB_FAILED ends the connection, as it would have one at a time
        # before the others were read, and none of them was accepted.
        topic = self.services.core.topics.get(command.topic)
        fanout = (len(topic.channels) or 1) if topic is not None else 1
        more = self.protocol.next_publishes(command.topic, self._budget // fanout - 1)
        if more:
            more.insert(0, command.body)
            self._publish_bodies("PUB", command.topic, more, 0, len(more))
        else:
            self._publish_bodies("PUB", command.topic, (command.body,), 0)

    def _multi_publish(self, command: MultiPublish) -> None:
        self._publish_bodies("MPUB", command.topic, command.bodies, 0)

    def _deferred_publish(self, command: DeferredPublish) -> None:
        self._publish_bodies("DPUB", command.topic, (command.body,), command.defer_ms)

    def _ready(self, command: Ready) -> None:
        self.client.ready_count = command.count
        self.host.wake()

    def _finish(self, command: Finish) -> None:
        self._finish_many([command.message_id])

    def _finish_many(self, message_ids: list[bytes]) -> None:
        for message_id, error in self.services.core.finish_many(self.client, message_ids):
            self.fail(ProtocolError("E_FIN_FAILED", f"FIN {_text(message_id)} failed {error}"))
        self.host.slots_freed()

    def _requeue(self, command: Requeue) -> None:
        if command.timeout_ms != command.requested_ms:
            log.info(
                "[%s] REQ timeout %dms out of range, using %dms",
                self.client.remote_address,
                command.requested_ms,
                command.timeout_ms,
            )
        try:
            self.services.core.requeue(self.client, command.message_id, command.timeout_ms / 1000)
        except ChannelError as error:
            raise ProtocolError(
                "E_REQ_FAILED", f"REQ {_text(command.message_id)} failed {error}"
            ) from None
        self.host.wake()

    def _touch(self, command: Touch) -> None:
        try:
            self.services.core.touch(self.client, command.message_id)
        except ChannelError as error:
            raise ProtocolError(
                "E_TOUCH_FAILED", f"TOUCH {_text(command.message_id)} failed {error}"
            ) from None

    def _close(self, command: Close) -> None:
        self.client.ready_count = 0  # the parser is CLOSING now
        self.respond(CLOSE_WAIT_FRAME)

    def _nop(self, command: Nop) -> None:
        pass

    # -- AUTH (nsqd's AUTH and CheckAuth) --------------------------------------------------------

    def _auth(self, command: Auth) -> None:
        client = self.client
        if client.auth is not None and client.auth.authorizations:
            raise ProtocolError("E_INVALID", "AUTH already set")
        if not self.services.options.auth_http_addresses:
            raise ProtocolError("E_AUTH_DISABLED", "AUTH disabled")
        client.auth_secret = command.secret.decode("utf-8", "surrogateescape")
        self.auth_request = AuthRequest()

    def auth_answered(self, request: AuthRequest, state: AuthState) -> None:
        """The auth servers answered ``request``: AUTH is answered, or the command that
        waited for a renewed authorization runs again.

        Raises:
            ProtocolError: AUTH found no authorizations, or the retried command failed.
        """
        self.client.auth = state
        if request.retry is not None:
            self._auth_just_queried = True
            request.retry()
            return
        if not state.authorizations:
            raise ProtocolError("E_UNAUTHORIZED", "AUTH no authorizations found")
        reply = {
            "identity": state.identity,
            "identity_url": state.identity_url,
            "permission_count": len(state.authorizations),
        }
        self.respond(encode_response(json.dumps(reply, separators=(",", ":")).encode()))

    def _authorized(self, name: str, topic: str, channel: str, retry: Callable[[], None]) -> bool:
        """nsqd's CheckAuth. False means an expired authorization must be asked for again
        first, after which ``retry`` runs the command anew."""
        if not self.services.options.auth_http_addresses:
            return True
        state = self.client.auth
        if self._auth_just_queried:
            # nsqd checks for authorizations before asking again; the fresh answer is then
            # judged by what it allows alone.
            self._auth_just_queried = False
        elif state is None or not state.authorizations:
            raise ProtocolError("E_AUTH_FIRST", f"AUTH required before {name}")
        elif state.expired(self.clock()):
            self.auth_request = AuthRequest(retry)
            return False
        assert state is not None
        if not state.allows(topic, channel):
            quoted = f"{go_quote(topic.encode())} {go_quote(channel.encode())}"
            raise ProtocolError("E_UNAUTHORIZED", f"AUTH failed for {name} on {quoted}")
        return True


# By command type; one table for every session, as in the protocol.
_DISPATCH: Final[dict[type[Any], Callable[[V2Session, Any], None]]] = {
    Identify: V2Session._identify,
    Auth: V2Session._auth,
    Subscribe: V2Session._subscribe,
    Publish: V2Session._publish,
    MultiPublish: V2Session._multi_publish,
    DeferredPublish: V2Session._deferred_publish,
    Ready: V2Session._ready,
    Finish: V2Session._finish,
    Requeue: V2Session._requeue,
    Touch: V2Session._touch,
    Close: V2Session._close,
    Nop: V2Session._nop,
}

"""One broker's V1 session with the registry, with no I/O (nsqlookupd/lookup_protocol_v1.go).

The transport feeds received bytes in and sends what :meth:`PeerSession.step` returns; the
session owns the peer's state (the V1 parser, who the peer said it is) and turns commands
into registration database calls. Work per step is bounded, so a peer that sends thousands
of commands at once is served in slices with other connections served in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import attrs

from ..protocol import CLOSED, NEED_DATA, ConnectionMustClose, ProtocolError
from ..protocol._v1 import (
    LookupIdentify,
    LookupPing,
    LookupRegister,
    LookupUnregister,
    V1ServerConnection,
    encode_v1_error,
    encode_v1_response,
)
from ._db import CLIENT, PeerInfo, RegistrationDB

__all__ = ["COMMANDS_PER_STEP", "PeerSession", "Step"]

log = logging.getLogger("trinsq.registry")

OK: Final = encode_v1_response(b"OK")
# Commands run per step before the transport yields to other connections.
COMMANDS_PER_STEP: Final = 1000


@attrs.frozen
class Step:
    """What one step produced: bytes to send, whether to close after sending them, and
    whether more buffered input is waiting for another step."""

    replies: bytes
    closing: bool
    more: bool


@attrs.define(eq=False)
class PeerSession:
    """A broker connected to the registry.

    Args:
        db: the registration database.
        remote: the peer's address, which is also its id in the database.
        identify_reply: the JSON body answering IDENTIFY (it names our bound ports).
    """

    db: RegistrationDB
    remote: str
    identify_reply: Callable[[], bytes]
    protocol: V1ServerConnection = attrs.field(factory=V1ServerConnection)
    peer: PeerInfo | None = None

    def receive_data(self, data: bytes | bytearray) -> None:
        """Bytes from the peer (``b""`` when it closed its side)."""
        self.protocol.receive_data(data)

    def step(self, max_commands: int = COMMANDS_PER_STEP) -> Step:
        """Run up to ``max_commands`` buffered commands."""
        replies = bytearray()
        for _ in range(max_commands):
            try:
                command = self.protocol.next_command()
            except ProtocolError as error:
                log.error("[%s] - %s", self.remote, error)
                return Step(bytes(replies) + encode_v1_error(error), closing=True, more=False)
            except ConnectionMustClose:
                return Step(bytes(replies), closing=True, more=False)
            if command is NEED_DATA:
                return Step(bytes(replies), closing=False, more=False)
            if command is CLOSED:
                return Step(bytes(replies), closing=True, more=False)
            replies += self._execute(command)
        return Step(bytes(replies), closing=False, more=True)

    def close(self) -> None:
        """The connection ended: the peer's registrations go with it, as in nsqlookupd."""
        peer, self.peer = self.peer, None
        if peer is not None:
            for registration in self.db.remove_peer(peer.id):
                log.info("DB: client(%s) UNREGISTER %s", self.remote, registration.log_text)

    def _execute(
        self, command: LookupPing | LookupIdentify | LookupRegister | LookupUnregister
    ) -> bytes:
        db, peer, remote = self.db, self.peer, self.remote
        if isinstance(command, LookupPing):
            if peer is not None:
                db.touch(peer)
            return OK
        if isinstance(command, LookupIdentify):
            identity = command.peer
            self.peer = PeerInfo(
                id=remote,
                remote_address=remote,
                hostname=identity.hostname,
                broadcast_address=identity.broadcast_address,
                tcp_port=identity.tcp_port,
                http_port=identity.http_port,
                version=identity.version,
            )
            log.info(
                "CLIENT(%s): IDENTIFY Address:%s TCP:%d HTTP:%d Version:%s",
                remote,
                identity.broadcast_address,
                identity.tcp_port,
                identity.http_port,
                identity.version,
            )
            if db.identify(self.peer):
                log.info("DB: client(%s) REGISTER %s", remote, CLIENT.log_text)
            return encode_v1_response(self.identify_reply())
        assert peer is not None, "the protocol refuses REGISTER/UNREGISTER before IDENTIFY"
        if isinstance(command, LookupRegister):
            for registration in db.register(peer, command.topic, command.channel or ""):
                log.info("DB: client(%s) REGISTER %s", remote, registration.log_text)
            return OK
        for registration in db.unregister(peer.id, command.topic, command.channel or ""):
            if command.channel or registration.category != "channel":
                log.info("DB: client(%s) UNREGISTER %s", remote, registration.log_text)
            else:  # a topic UNREGISTER that took channels along: nsqd never relies on it
                log.warning("client(%s) unexpected UNREGISTER %s", remote, registration.log_text)
        return OK

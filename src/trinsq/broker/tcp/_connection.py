"""One client connection: a reader loop and a pump in one nursery (nsqd/protocol_v2.go).

The reader buffers whatever arrives, runs every complete command in it without awaiting, and
appends responses to the output buffer. The pump is the only task that writes: it takes as
many messages as the client's RDY window allows in one call, encodes them into the same
buffer, and sends it in one ``send_all`` when nsqd would flush (a response is waiting, the
client is not ready for more, the buffer is full, or the output-buffer timeout passed). It also
sends heartbeats. Whichever task ends the connection cancels the other.

Time limits are cancel scopes: the read deadline (two heartbeat intervals) is pushed forward on
every read, and each write must finish within one interval, as nsqd's deadlines do.

Stream upgrades (TLS, snappy, deflate after IDENTIFY): the reader stops running commands after
an IDENTIFY that negotiated one, has the pump flush the JSON reply and park, wraps
``self.stream`` in nsqd's order (TLS, then snappy or deflate, each answered with OK over the new
layer), replays into it the bytes the parser already held, and lets the pump go on. The pump
always writes to ``self.stream``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final

import trio

from ...protocol import (
    CLOSE_WAIT_FRAME,
    CLOSED,
    HEARTBEAT_FRAME,
    NEED_DATA,
    OK_FRAME,
    Auth,
    ClientState,
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
    append_message_frame,
    encode_error,
    encode_response,
    negotiate_identify,
)
from ..config._tls import tls_version_name
from ..core._broker import CoreError
from ..core._channel import Channel, ChannelError
from ..core._client import Client
from ..core._services import BrokerServices
from ._connection_auth import AuthCommands, common_name
from ._streams import DeflateStream, PrefixedStream, SnappyStream

__all__ = ["ClientConnection"]

log = logging.getLogger("trinsq.broker")

RECEIVE_SIZE: Final = 64 * 1024
TLS_HANDSHAKE_TIMEOUT: Final = 5.0  # nsqd's deadline for the upgrade handshake
# Stop reading from a client while this much of our output to it is still unsent (its
# responses pile up when it publishes without reading): bounds memory per connection.
MAX_PENDING_OUTPUT: Final = 1024 * 1024


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class ClientConnection(AuthCommands):
    """Serve one V2 client on ``stream`` until either side ends the connection.

    Args:
        server: the broker this client belongs to.
        stream: the transport (a socket stream, later possibly TLS/compressed layers).
        client: the client's state, registered with the server for /stats.
        protocol: the sans-IO protocol state (magic already consumed or not).
    """

    def __init__(
        self,
        server: BrokerServices,
        stream: trio.abc.Stream,
        client: Client,
        protocol: V2ServerConnection,
    ) -> None:
        self.server = server
        self.stream = stream
        self.client = client
        self.protocol = protocol
        self._out = bytearray()
        # Crash-safe mode: responses wait here until the publishes before them are fsynced.
        self._held: bytearray | None = None
        self._urgent = False  # a response waits: flush without delay
        self._finishing = False  # flush what is left, then end
        self._woken = False
        self._wake_event = trio.Event()
        self._drained = trio.Event()
        self._heartbeat_interval = client.settings.heartbeat_interval_ms / 1000
        self._heartbeat_due = math.inf
        self._flush_due = math.inf
        self._read_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        # Stream upgrades: what IDENTIFY negotiated, and the pump's parking handshake.
        self._upgrade: IdentifyResult | None = None
        # A command that must await (AUTH, an expired authorization): the reader runs it, in
        # order, before the commands still buffered behind it.
        self._async_step: Callable[[], Awaitable[None]] | None = None
        self._auth_just_queried = False
        self._pump_parking = False
        self._pump_parked = trio.Event()
        self._pump_resume = trio.Event()
        self._dispatch: dict[type[Any], Callable[[Any], None]] = {
            Identify: self._identify,
            Auth: self._auth,
            Subscribe: self._subscribe,
            Publish: self._publish,
            MultiPublish: self._multi_publish,
            DeferredPublish: self._deferred_publish,
            Ready: self._ready,
            Finish: self._finish,
            Requeue: self._requeue,
            Touch: self._touch,
            Close: self._close,
            Nop: self._nop,
        }
        client.on_wake = self._wake
        client.on_close = self._abort

    async def run(self) -> None:
        """Serve the client, then release its subscription.

        Resource handling: does not close ``stream``; the caller does.
        Error handling: a broken or closed stream ends the connection quietly (the caller
        catches it); protocol errors are answered as nsqd does and never propagate.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._set_heartbeat(self._heartbeat_interval)
                nursery.start_soon(self._reader)
                nursery.start_soon(self._pump)
        finally:
            self.server.core.disconnect(self.client)

    # -- coordination between the two tasks --------------------------------------------------

    def _wake(self) -> None:
        self._woken = True
        self._wake_event.set()

    def _abort(self) -> None:
        """End the connection now (its channel is being deleted, or the broker stops)."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _finish_up(self) -> None:
        """Stop reading; the pump flushes what is queued and ends the connection."""
        self._finishing = True
        self._wake()

    def _respond(self, frame: bytes) -> None:
        if self._held is not None:
            self._held += frame
            return
        self._out += frame
        self._urgent = True
        self._wake()

    def _set_heartbeat(self, interval: float) -> None:
        """Apply a heartbeat interval (0 disables heartbeats and the read deadline)."""
        self._heartbeat_interval = interval
        now = trio.current_time()
        self._heartbeat_due = now + interval if interval > 0 else math.inf
        self._extend_read_deadline(now)
        self._wake()

    def _extend_read_deadline(self, now: float) -> None:
        interval = self._heartbeat_interval
        self._read_scope.deadline = now + 2 * interval if interval > 0 else math.inf

    # -- reader --------------------------------------------------------------------------------

    async def _reader(self) -> None:
        protocol = self.protocol
        with self._read_scope:
            while True:
                data = await self.stream.receive_some(RECEIVE_SIZE)
                self._extend_read_deadline(trio.current_time())
                protocol.receive_data(data)
                if await self._run_buffered():
                    break
                while len(self._out) > MAX_PENDING_OUTPUT:
                    self._drained = trio.Event()
                    await self._drained.wait()
        if self._read_scope.cancelled_caught:
            log.info(
                "[%s] closing: no data for two heartbeat intervals", self.client.remote_address
            )
            failure = protocol.read_failure()
            if failure is not None:
                self._out += encode_error(failure)
        self._finish_up()

    async def _run_buffered(self) -> bool:
        """Run every buffered command in order, awaiting those that need I/O; return whether
        to stop reading."""
        while True:
            stop = self._execute_commands()
            if self._held is not None:
                await self._release_when_durable()
            if self._upgrade is not None:
                await self._upgrade_stream(self._upgrade)
                self._upgrade = None
            step, self._async_step = self._async_step, None
            if step is None:
                return stop
            try:
                await step()
            except ProtocolError as error:
                log.error("[%s] - %s", self.client.remote_address, error)
                self._respond(encode_error(error))
                if error.fatal:
                    return True
            if stop:
                return True

    async def _release_when_durable(self) -> None:
        """Crash-safe mode: one fsync covers every publish of this batch (and any other
        connection's that is due), then their responses go out in order."""
        await self.server.storage.sync()
        held, self._held = self._held, None
        if held:
            self._respond(bytes(held))

    def _execute_commands(self) -> bool:
        """Run every complete command buffered; return whether to stop reading."""
        protocol = self.protocol
        dispatch = self._dispatch
        while True:
            try:
                command = protocol.next_command()
                if command is NEED_DATA:
                    return False
                if command is CLOSED:
                    return True
                dispatch[type(command)](command)
                if self._upgrade is not None or self._async_step is not None:
                    return False  # the reader takes over, then comes back for the rest
            except ProtocolError as error:
                log.error("[%s] - %s", self.client.remote_address, error)
                self._respond(encode_error(error))
                if error.fatal:
                    return True
            except ConnectionMustClose as reason:
                log.error("[%s] - failed to read command - %s", self.client.remote_address, reason)
                return True

    # -- pump ------------------------------------------------------------------------------------

    async def _pump(self) -> None:
        client = self.client
        while True:
            self._woken = False
            if self._pump_parking:
                if self._out:
                    await self._flush()
                    continue
                self._pump_resume = trio.Event()
                self._pump_parked.set()
                await self._pump_resume.wait()
                continue
            channel = client.channel
            window = client.ready_window
            now = trio.current_time()
            if window and channel is not None and not self._finishing:
                # A connection on its way out takes nothing new: it would only time out.
                window = self._take_messages(channel, window, now)
            if now >= self._heartbeat_due:
                self._out += HEARTBEAT_FRAME
                self._urgent = True
                self._heartbeat_due = now + self._heartbeat_interval
            if self._out and (
                self._urgent
                or self._finishing
                or window == 0
                or len(self._out) >= client.settings.output_buffer_size
                or now >= self._flush_due
            ):
                await self._flush()
                continue
            if self._finishing:
                return
            if window and channel is not None:
                channel.waiting[client] = None
            if not self._woken:
                self._wake_event = trio.Event()
                with trio.move_on_at(min(self._heartbeat_due, self._flush_due)):
                    await self._wake_event.wait()
            if channel is not None:
                channel.waiting.pop(client, None)

    def _take_messages(self, channel: Channel, window: int, now: float) -> int:
        """Move up to ``window`` messages into the output buffer; return the window left."""
        client = self.client
        settings = client.settings
        batch = channel.take(client, window, settings.msg_timeout_ms / 1000, settings.sample_rate)
        if not batch:
            return window
        client.in_flight_count += len(batch)
        client.message_count += len(batch)
        out = self._out
        for message in batch:
            append_message_frame(out, message.timestamp, message.attempts, message.id, message.body)
        if self._flush_due == math.inf:
            timeout = settings.output_buffer_timeout_ms / 1000
            # A timeout of 0 ("no timed flush") means no reason to hold messages back.
            self._flush_due = now + timeout
        return window - len(batch)

    async def _flush(self) -> None:
        data = self._out
        self._out = bytearray()
        self._urgent = False
        self._flush_due = math.inf
        interval = self._heartbeat_interval
        with trio.fail_after(interval) if interval > 0 else trio.CancelScope():
            await self.stream.send_all(data)
        self._drained.set()

    # -- commands ------------------------------------------------------------------------------

    def _identify(self, command: Identify) -> None:
        client = self.client
        result = negotiate_identify(command.body, client.settings, self.server.features)
        client.identified(result)
        heartbeat_ms = result.settings.heartbeat_interval_ms
        self.protocol.heartbeats_disabled = heartbeat_ms == 0
        self._set_heartbeat(heartbeat_ms / 1000)
        self._respond(OK_FRAME if result.response is None else encode_response(result.response))
        if result.tls_v1 or result.snappy or result.deflate:
            self._upgrade = result

    async def _upgrade_stream(self, result: IdentifyResult) -> None:
        """Wrap the stream in what IDENTIFY negotiated (nsqd's order: TLS, then compression)."""
        replay = self.protocol.take_trailing_data()
        self._pump_parking = True
        self._pump_parked = trio.Event()
        self._wake()
        await self._pump_parked.wait()  # the JSON reply is out, in the clear
        try:
            stream = self.stream
            if result.tls_v1:
                context = self.server.ssl_context
                assert context is not None, "tls_v1 is only negotiated with a TLS config"
                transport = PrefixedStream(stream, replay) if replay else stream
                replay = b""
                tls = trio.SSLStream(transport, context, server_side=True)
                with trio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                    await tls.do_handshake()
                self.protocol.tls_active = True
                self.client.tls_common_name = common_name(tls)
                cipher = tls.cipher()
                self.client.tls_version = tls_version_name(tls.version())
                self.client.tls_cipher_suite = cipher[0] if cipher else ""
                self.client.tls = True
                stream = tls
                await stream.send_all(OK_FRAME)
            if result.snappy or result.deflate:
                transport = PrefixedStream(stream, replay) if replay else stream
                if result.snappy:
                    stream = SnappyStream(transport)
                    self.client.snappy = True
                else:
                    stream = DeflateStream(transport, result.deflate_level)
                    self.client.deflate = True
                await stream.send_all(OK_FRAME)
            self.stream = stream
        finally:
            self._pump_parking = False
            self._pump_resume.set()

    def _subscribe(self, command: Subscribe) -> None:
        client = self.client
        if not self._authorized(
            "SUB", command.topic, command.channel, partial(self._subscribe, command)
        ):
            return
        try:
            self.server.core.subscribe(client, command.topic, command.channel)
        except ChannelError as error:
            raise ProtocolError("E_SUB_FAILED", f"SUB failed {error}") from None
        client.state = ClientState.SUBSCRIBED
        self.protocol.subscribed()
        self._respond(OK_FRAME)

    def _publish_bodies(
        self, name: str, topic_name: str, bodies: list[bytes], defer_ms: int
    ) -> None:
        retry = partial(self._publish_bodies, name, topic_name, bodies, defer_ms)
        if not self._authorized(name, topic_name, "", retry):
            return
        server = self.server
        try:
            server.core.publish(topic_name, bodies, defer_ms)
        except CoreError as error:  # exiting, or the disk write failed
            raise ProtocolError(f"E_{name}_FAILED", f"{name} failed {error}") from None
        if server.storage.crash_safe and self._held is None:
            self._held = bytearray()
        self.client.published(topic_name, len(bodies))
        self._respond(OK_FRAME)

    def _publish(self, command: Publish) -> None:
        self._publish_bodies("PUB", command.topic, [command.body], 0)

    def _multi_publish(self, command: MultiPublish) -> None:
        self._publish_bodies("MPUB", command.topic, list(command.bodies), 0)

    def _deferred_publish(self, command: DeferredPublish) -> None:
        self._publish_bodies("DPUB", command.topic, [command.body], command.defer_ms)

    def _ready(self, command: Ready) -> None:
        self.client.ready_count = command.count
        self._wake()

    def _finish(self, command: Finish) -> None:
        try:
            self.server.core.finish(self.client, command.message_id)
        except ChannelError as error:
            raise ProtocolError(
                "E_FIN_FAILED", f"FIN {_text(command.message_id)} failed {error}"
            ) from None
        self._wake()

    def _requeue(self, command: Requeue) -> None:
        if command.timeout_ms != command.requested_ms:
            log.info(
                "[%s] REQ timeout %dms out of range, using %dms",
                self.client.remote_address,
                command.requested_ms,
                command.timeout_ms,
            )
        try:
            self.server.core.requeue(self.client, command.message_id, command.timeout_ms / 1000)
        except ChannelError as error:
            raise ProtocolError(
                "E_REQ_FAILED", f"REQ {_text(command.message_id)} failed {error}"
            ) from None
        self._wake()

    def _touch(self, command: Touch) -> None:
        try:
            self.server.core.touch(self.client, command.message_id)
        except ChannelError as error:
            raise ProtocolError(
                "E_TOUCH_FAILED", f"TOUCH {_text(command.message_id)} failed {error}"
            ) from None

    def _close(self, command: Close) -> None:
        self.client.ready_count = 0
        self.client.state = ClientState.CLOSING
        self._respond(CLOSE_WAIT_FRAME)

    def _nop(self, command: Nop) -> None:
        pass

"""One client connection's transport: a reader loop and a pump in one nursery
(nsqd/protocol_v2.go's IOLoop and messagePump).

The reader feeds whatever arrives to the client's sans-IO session (_session.py), which runs
complete commands without awaiting and appends responses to its output buffer; the reader
then carries out what the session asked for (a stream upgrade, an AUTH query, an fsync before
publishes are answered in crash-safe mode). The session works in bounded turns (a few
thousand commands or a thousand published messages, a few milliseconds at most); between
turns the reader passes a checkpoint so every other client gets its turn, and it reads more
only once everything buffered has run. So no input, however large (a million-message MPUB)
or however compressed, holds the event loop for more than a turn. Once a read's commands
have all run, the reader sends their responses itself, in one ``send_all``, as nsqd's IOLoop
does (a publisher waiting for its OK should not wait for another task's turn too). The pump
has the session encode as many messages as the client's RDY window allows in one call into
the same buffer, and sends it in one ``send_all`` when nsqd would flush (a response is
waiting, the client is not ready for more, the buffer is full, or the output-buffer timeout
passed). It also sends heartbeats. One task sends at a time; the other waits, and finds the
buffer it would have sent already on its way. Whichever task ends the connection cancels the
other.

Time limits, as nsqd's deadlines: a command must arrive within two heartbeat intervals of the
reader starting to wait for it, body included (nsqd sets the read deadline once per command,
so a client trickling a body byte by byte is closed like one that sends nothing); time spent
on input already received, or on anyone else's, never counts, since the connection is only
cut while the reader waits. Each write must finish within one interval. These are due times,
kept with the heartbeat and output-buffer flush due times in the broker's ``PumpTimers``: its
one task calls :meth:`ClientConnection._timer_due`, which cancels the scope of the task that
overran (the reader's long-lived read scope, which also covers its writes, or the pump's) or
wakes the pump for a heartbeat or flush. A per-read trio deadline would cost a registration
with trio's deadline heap on every read and write; this costs a float and a comparison.

Stream upgrades (TLS, snappy, deflate after IDENTIFY): the reader stops running commands after
an IDENTIFY that negotiated one, has the pump flush the JSON reply and park, has
_upgrade.py wrap ``self.stream``, and lets the pump go on. The pump always writes to
``self.stream``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Final

import trio

from ...common._logging import error_text
from ...common._sockets import SocketStream
from ...protocol import (
    HEARTBEAT_FRAME,
    ClientSettings,
    IdentifyResult,
    ProtocolError,
    V2ServerConnection,
    encode_error,
)
from ..core._channel import Channel
from ..core._client import Client
from ..core._services import BrokerServices
from ._connection_auth import query_auth
from ._pumptimers import PumpTimer, PumpTimers
from ._session import AuthRequest, Progress, V2Session
from ._upgrade import upgrade_stream

__all__ = ["ClientConnection", "serve_client"]

log = logging.getLogger("trinsq.broker")

RECEIVE_SIZE: Final = 64 * 1024
# Stop reading from a client while this much of our output to it is still unsent (its
# responses pile up when it publishes without reading): bounds memory per connection.
MAX_PENDING_OUTPUT: Final = 1024 * 1024


async def serve_client(
    server: BrokerServices,
    stream: trio.abc.Stream,
    remote_address: str,
    settings: ClientSettings,
    timers: PumpTimers,
) -> None:
    """Serve one V2 client connected through ``stream`` (a socket, or any other
    ``trio.abc.Stream``) until either side ends the connection.

    Args:
        server: the broker.
        stream: the client's byte stream; the client starts by sending the protocol magic.
        remote_address: ``host:port`` of the peer, as logs and /stats show it.
        settings: the client's settings until its IDENTIFY (the broker's defaults).
        timers: the broker's pump timers (heartbeats, output-buffer flushes).

    Resource handling: ``stream`` is closed before this returns.
    Error handling: never raises for client misbehaviour or a broken stream; an internal
    error ends this connection only, and is logged.
    """
    client = server.core.connect(remote_address, time.time(), settings)
    log.info("TCP: new client(%s)", remote_address)
    protocol = V2ServerConnection(server.limits)
    protocol.tls_required = server.options.tls_required != "false"
    try:
        await ClientConnection(server, stream, client, protocol, timers).run()
    except* (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError) as group:
        log.info("[%s] connection ended: %s", remote_address, error_text(group.exceptions[0]))
    except* Exception:
        log.exception("[%s] internal error serving client; closing its connection", remote_address)
    finally:
        server.core.disconnect(client)
        await trio.aclose_forcefully(stream)
        log.info("[%s] disconnected", remote_address)


class ClientConnection:
    """Serve one V2 client on ``stream`` until either side ends the connection.

    Args:
        server: the broker this client belongs to.
        stream: the transport (any trio stream; later possibly TLS/compressed layers).
        client: the client's state, registered with the broker for /stats.
        protocol: the sans-IO protocol state (magic already consumed or not).
        timers: wakes the pump when its next heartbeat or output flush is due.
    """

    def __init__(
        self,
        server: BrokerServices,
        stream: trio.abc.Stream,
        client: Client,
        protocol: V2ServerConnection,
        timers: PumpTimers,
    ) -> None:
        self.server = server
        self.stream = stream
        self.client = client
        self.session = V2Session(server, client, protocol, self, trio.current_time)
        self._finishing = False  # flush what is left, then end
        self._woken = False
        self._pump_idle = False  # parked, waiting for its event
        self._wake_event = trio.Event()
        self._drained = trio.Event()
        self._reader_turn = False  # the reader is running the session's commands
        self._output_waiting = False  # responses were queued during that turn
        self._wake_deferred = False  # the pump was woken during that turn
        self._sending = False  # a send_all is under way
        self._sent = trio.Event()  # set when it ends, if awaited
        self._sent_awaited = False
        self._reader_sending = False  # the send under way is the reader's
        self._send_overran = False  # a write took longer than its deadline
        self._heartbeat_interval = client.settings.heartbeat_interval_ms / 1000
        self._heartbeat_due = math.inf
        self._flush_due = math.inf
        # The current command's read began then (the reader waits in receive_some meanwhile
        # only while _read_waiting); a send under way began at _sending_since.
        self._reading_since = math.inf
        self._read_waiting = False
        self._sending_since = math.inf
        self._read_scope = trio.CancelScope()
        self._pump_scope = trio.CancelScope()
        self._timers = timers
        self._timer = PumpTimer(self._timer_due)
        self._nursery: trio.Nursery | None = None
        # The pump's parking handshake for stream upgrades.
        self._pump_parking = False
        self._pump_parked = trio.Event()
        self._pump_resume = trio.Event()
        client.on_wake = self.wake
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
                self.set_heartbeat(self._heartbeat_interval)
                nursery.start_soon(self._pump)
                await self._reader()  # in this task: one task fewer to start per connection
        finally:
            self._timer.cancel()
            self.server.core.disconnect(self.client)

    # -- what the session asks of its transport ------------------------------------------------

    def wake(self) -> None:
        self._woken = True
        if self._reader_turn:
            self._wake_deferred = True  # once when the turn ends, not once per FIN or RDY
        else:
            self._wake_event.set()

    def output_ready(self) -> None:
        # During the reader's turn the reader itself sends the responses when the turn ends,
        # so waking the pump would only cost it a scheduling round for nothing.
        if self._reader_turn:
            self._output_waiting = True
        else:
            self.wake()

    def slots_freed(self) -> None:
        # A consumer that keeps up FINs each message before the next is published: its pump
        # would wake only to find the channel empty and park again. Park it in the channel's
        # waiting list directly instead, as the pump itself would.
        client = self.client
        channel = client.channel
        if (
            self._pump_idle
            and channel is not None
            and (channel.paused or channel.depth == 0)
            and client.ready_window
            and not self.session.out
            and not self._finishing
        ):
            channel.waiting[client] = None
        else:
            self.wake()

    def set_heartbeat(self, interval: float) -> None:
        """Apply a heartbeat interval (0 disables heartbeats and the read deadline)."""
        self._heartbeat_interval = interval
        now = trio.current_time()
        self._heartbeat_due = now + interval if interval > 0 else math.inf
        self.wake()  # the reader applies the read deadline when it next waits

    # -- time limits -----------------------------------------------------------------------------

    def _timer_due(self) -> None:
        """Called by the broker's timers at a due time: cut a connection that overran a read or
        write deadline, else wake the pump for its heartbeat or flush; then ask to be called
        again for whatever is still pending."""
        now = trio.current_time()
        interval = self._heartbeat_interval
        if interval > 0:
            if now >= self._sending_since + interval:
                self._send_overran = True
                (self._read_scope if self._reader_sending else self._pump_scope).cancel()
                return
            if self._read_waiting and now >= self._reading_since + 2 * interval:
                self._read_scope.cancel()
                return
        due = math.inf
        if now >= self._heartbeat_due and now < self._flush_due and self._heartbeat_now(now):
            due = min(self._heartbeat_due, self._flush_due)
        elif now >= self._heartbeat_due or now >= self._flush_due or self.session.urgent:
            self.wake()  # the pump asks again for these when it parks
        else:
            due = min(self._heartbeat_due, self._flush_due)
        if interval > 0:
            for deadline in (self._sending_since + interval, self._reading_since + 2 * interval):
                if now < deadline < due:
                    due = deadline
        if due < math.inf:
            self._timers.schedule(self._timer, due)

    def _heartbeat_now(self, now: float) -> bool:
        """Send a heartbeat from the timer itself if the pump is parked with nothing to send
        and the socket takes it at once (an idle client's heartbeat then wakes no task);
        return whether it went out."""
        stream = self.stream
        if (
            not self._pump_idle
            or self._sending
            or self.session.out
            or self._finishing
            or type(stream) is not SocketStream
        ):
            return False
        try:
            sent = stream.send_now(HEARTBEAT_FRAME)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            # The pump meets the error (or finishes its send) itself; this runs in the
            # broker's timer task, which must never fail for one connection.
            return False
        if sent:
            self._heartbeat_due = now + self._heartbeat_interval
        if sent < len(HEARTBEAT_FRAME):
            if sent:  # the rest goes out through the pump, which the caller wakes
                self.session.out += HEARTBEAT_FRAME[sent:]
                self.session.urgent = True
            return False
        return True

    # -- coordination between the two tasks --------------------------------------------------

    def _abort(self) -> None:
        """End the connection now (its channel is being deleted, or the broker stops)."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _finish_up(self) -> None:
        """Stop reading; the pump flushes what is queued and ends the connection."""
        self._finishing = True
        self.wake()

    # -- reader --------------------------------------------------------------------------------

    async def _reader(self) -> None:
        session = self.session
        protocol = session.protocol
        scope = self._read_scope
        timers = self._timers
        timer = self._timer
        with scope:
            while True:
                # The deadline runs from when the reader starts waiting for a new command.
                if protocol.between_commands:
                    self._reading_since = trio.current_time()
                interval = self._heartbeat_interval
                if interval > 0:
                    timers.schedule(timer, self._reading_since + 2 * interval)
                self._read_waiting = True
                try:
                    data = await self.stream.receive_some(RECEIVE_SIZE)
                finally:
                    self._read_waiting = False
                session.receive_data(data)
                if await self._run_buffered():
                    break
        if scope.cancelled_caught and self._send_overran:
            raise trio.TooSlowError  # the client did not take its answers in time
        if scope.cancelled_caught:
            log.info(
                "[%s] closing: no data for two heartbeat intervals", self.client.remote_address
            )
            failure = session.protocol.read_failure()
            if failure is not None:
                session.out += encode_error(failure)
        self._finish_up()

    async def _run_buffered(self) -> bool:
        """Run every buffered command in order, one bounded turn at a time with a checkpoint
        between turns, carrying out what the session asks for in between; return whether to
        stop reading."""
        session = self.session
        while True:
            self._reader_turn = True
            try:
                progress = session.run_commands()
            finally:
                self._reader_turn = False
            output, self._output_waiting = self._output_waiting, False
            if self._wake_deferred:
                self._wake_deferred = False
                self._wake_event.set()
            if (
                progress is Progress.NEED_DATA
                and session.held is None
                and session.upgrade is None
                and session.auth_request is None
                and len(session.out) <= MAX_PENDING_OUTPUT
            ):
                # The common case: all of it ran without a checkpoint. Its responses go out
                # from here, as nsqd's IOLoop sends them, rather than through the pump a
                # scheduling round later; unless a send is under way (the pump's turn).
                if session.urgent and not self._sending and not self._pump_parking:
                    await self._flush(by_reader=True)
                elif output:
                    self.wake()
                return False
            if output:
                self.wake()
            if session.held is not None:
                # Crash-safe mode: one fsync covers every publish of this turn (and any other
                # connection's that is due), then their responses go out in order.
                await self.server.storage.sync()
                session.release_held()
            if session.upgrade is not None:
                await self._upgrade_stream(session.upgrade)
                session.upgrade = None
            request, session.auth_request = session.auth_request, None
            if request is not None:
                try:
                    await self._answer_auth(request)
                except ProtocolError as error:
                    if session.fail(error):
                        return True
            if progress is Progress.STOP:
                return True
            while len(session.out) > MAX_PENDING_OUTPUT:
                self._drained = trio.Event()
                await self._drained.wait()
            if progress is Progress.NEED_DATA:
                return False
            await trio.lowlevel.checkpoint()  # let everyone else have a turn

    async def _answer_auth(self, request: AuthRequest) -> None:
        """Ask the auth servers (only this connection waits) and give the session the answer.

        Raises:
            ProtocolError: the query failed, or what the session did with the answer.
        """
        state = await query_auth(self.server, self.client)
        self.session.auth_answered(request, state)

    # -- pump ------------------------------------------------------------------------------------

    async def _pump(self) -> None:
        # The pump's scope times its writes (see _flush); nothing else cancels it.
        with self._pump_scope:
            await self._pump_loop()
        if self._pump_scope.cancelled_caught:
            raise trio.TooSlowError  # the client did not take its messages in time

    async def _pump_loop(self) -> None:
        client = self.client
        session = self.session
        while True:
            self._woken = False
            if self._pump_parking:
                if session.out:
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
                session.out += HEARTBEAT_FRAME
                session.urgent = True
                self._heartbeat_due = now + self._heartbeat_interval
            if session.out and (
                session.urgent
                or self._finishing
                or window == 0
                or len(session.out) >= client.settings.output_buffer_size
                or now >= self._flush_due
            ):
                await self._flush()
                continue
            if self._finishing:
                return
            if window and channel is not None:
                channel.waiting[client] = None
            if not self._woken:
                self._timers.schedule(self._timer, min(self._heartbeat_due, self._flush_due))
                self._wake_event = trio.Event()
                self._pump_idle = True
                try:
                    await self._wake_event.wait()
                finally:
                    self._pump_idle = False
            if channel is not None:
                channel.waiting.pop(client, None)

    def _take_messages(self, channel: Channel, window: int, now: float) -> int:
        """Have the session encode up to ``window`` messages; start the output-buffer timer."""
        left = self.session.take_messages(channel, window)
        if left != window and self._flush_due == math.inf:
            timeout = self.client.settings.output_buffer_timeout_ms / 1000
            # A timeout of 0 ("no timed flush") means no reason to hold messages back.
            self._flush_due = now + timeout
        return left

    async def _flush(self, *, by_reader: bool = False) -> None:
        """Send everything in the output buffer, within a heartbeat interval. Either task may
        call it; one sends at a time (a trio stream takes one ``send_all`` at a time), the
        other waits its turn."""
        while self._sending:
            self._sent_awaited = True
            await self._sent.wait()
        session = self.session
        data = session.out
        if not data:
            return
        session.out = bytearray()
        session.urgent = False
        self._flush_due = math.inf
        stream = self.stream
        if by_reader and type(stream) is SocketStream:
            # Sent at once, an answer needs no write deadline (a timer heap entry). Not for
            # the pump: its send_all passes the checkpoints that keep a fast reader fair.
            sent = stream.send_now(data)
            if sent == len(data):
                self._drained.set()
                return
            del data[:sent]
        interval = self._heartbeat_interval
        self._sending = True
        self._reader_sending = by_reader  # whose scope a write timeout cancels
        try:
            if interval > 0:
                self._sending_since = now = trio.current_time()
                self._timers.schedule(self._timer, now + interval)
            await stream.send_all(data)
        finally:
            self._sending_since = math.inf
            self._sending = False
            if self._sent_awaited:
                self._sent_awaited = False
                self._sent.set()
                self._sent = trio.Event()
        self._drained.set()

    # -- stream upgrades -------------------------------------------------------------------------

    async def _upgrade_stream(self, result: IdentifyResult) -> None:
        """Wrap the stream in what IDENTIFY negotiated (nsqd's order: TLS, then compression)."""
        replay = self.session.protocol.take_trailing_data()
        self._pump_parking = True
        self._pump_parked = trio.Event()
        self.wake()
        await self._pump_parked.wait()  # the JSON reply is out, in the clear
        try:
            self.stream = await upgrade_stream(
                self.stream, replay, result, self.server, self.session
            )
        finally:
            self._pump_parking = False
            self._pump_resume.set()

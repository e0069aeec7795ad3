"""A topic: fans every published message out to all of its channels (nsqd/topic.go).

nsqd runs one pump goroutine per topic; here the fan-out happens synchronously inside the
publish call, so a publish costs no task switch. Messages wait in the topic only while it
cannot deliver: no channels yet, paused, or not started.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

import attrs

from ._backend import Backend
from ._channel import Channel
from ._message import Message, MessageIdFactory

__all__ = ["Topic"]


@attrs.define(eq=False)
class Topic:
    """One topic and its channels.

    Attributes:
        started: nsqd holds delivery until a new topic has learnt its channels (from
            nsqd.dat or nsqlookupd); until then publishes wait in the topic.
    """

    name: str
    ephemeral: bool
    mem_queue_size: int
    backend: Backend
    ids: MessageIdFactory
    new_channel: Callable[[Topic, str], Channel]
    channels: dict[str, Channel] = attrs.field(factory=dict)
    paused: bool = False
    started: bool = True
    exiting: bool = False
    queue: deque[Message] = attrs.field(factory=deque)
    message_count: int = 0
    message_bytes: int = 0

    @property
    def depth(self) -> int:
        return len(self.queue) + self.backend.depth

    @property
    def backend_depth(self) -> int:
        return self.backend.depth

    @property
    def can_deliver(self) -> bool:
        return self.started and not self.paused and bool(self.channels)

    def put_messages(self, messages: list[Message]) -> None:
        """Accept published messages: fan out now, or hold them until the topic can deliver."""
        self.message_count += len(messages)
        self.message_bytes += sum(len(message.body) for message in messages)
        if self.can_deliver:
            self._fan_out(messages)
            return
        for message in messages:
            if len(self.queue) < self.mem_queue_size:
                self.queue.append(message)
            else:
                self.backend.put(message)

    def _fan_out(self, messages: list[Message]) -> None:
        first = True
        for channel in list(self.channels.values()):
            copies = messages if first else [message.copy_for_channel() for message in messages]
            first = False
            channel.put_messages(copies)

    def _deliver_backlog(self) -> None:
        """Hand everything the topic holds to its channels once it can deliver."""
        if not self.can_deliver:
            return
        backlog = list(self.queue)
        self.queue.clear()
        while (message := self.backend.pop()) is not None:
            backlog.append(message)
        if backlog:
            self._fan_out(backlog)

    def get_channel(self, name: str) -> Channel:
        """Return the named channel, creating it (and delivering any backlog to it)."""
        channel = self.channels.get(name)
        if channel is None:
            channel = self.new_channel(self, name)
            self.channels[name] = channel
            self._deliver_backlog()
        return channel

    def start(self) -> None:
        self.started = True
        self._deliver_backlog()

    def pause(self) -> None:
        self.paused = True

    def unpause(self) -> None:
        self.paused = False
        self._deliver_backlog()

    def empty(self) -> None:
        """Drop what waits in the topic itself; channels keep theirs (HTTP /topic/empty)."""
        self.queue.clear()
        self.backend.empty()

    def remove_channel(self, name: str) -> Channel | None:
        """Take a channel out of the topic, closing its clients and dropping its messages."""
        channel = self.channels.pop(name, None)
        if channel is not None:
            channel.close_clients()
            channel.empty()
        return channel

    def close_all(self) -> Iterable[Channel]:
        """Mark the topic exiting and close every channel's clients."""
        self.exiting = True
        channels = list(self.channels.values())
        for channel in channels:
            channel.close_clients()
        return channels

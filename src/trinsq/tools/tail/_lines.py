"""What ``trinsq tail`` writes for a message, and when it has shown enough: nsq_tail's
``TailHandler``, without the writing."""

from __future__ import annotations

import attrs

__all__ = ["TopicTail", "tail_line"]


def tail_line(body: bytes, topic: str | None = None) -> bytes:
    """nsq_tail's output for one message: the body as it is and a newline, after
    ``<topic> | `` with --print-topic."""
    if topic is None:
        return body + b"\n"
    return topic.encode() + b" | " + body + b"\n"


@attrs.define
class TopicTail:
    """One topic's count of messages shown (nsq_tail keeps one per topic, and exits when any
    topic's count reaches ``-n``; 0 or less shows messages until stopped)."""

    topic: str
    limit: int = 0
    shown: int = 0

    def show(self) -> bool:
        """Count one more message shown; True when that was the last one ``-n`` asks for."""
        self.shown += 1
        return 0 < self.limit <= self.shown

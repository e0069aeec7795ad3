"""nsq_tail's output line and its per-topic ``-n`` count."""

from __future__ import annotations

from trinsq.tools.tail._flags import ephemeral_channel
from trinsq.tools.tail._lines import TopicTail, tail_line


def test_a_line_is_the_body_verbatim_then_a_newline() -> None:
    assert tail_line(b"a\x00\xff\nb") == b"a\x00\xff\nb\n"


def test_print_topic_puts_the_topic_and_a_bar_first() -> None:
    assert tail_line(b"body", "events") == b"events | body\n"


def test_the_limit_is_reached_on_the_nth_message_only() -> None:
    tail = TopicTail("t", limit=2)
    assert [tail.show(), tail.show(), tail.show()] == [False, True, True]


def test_no_limit_never_ends() -> None:
    tail = TopicTail("t", limit=0)
    assert not any(tail.show() for _ in range(1000))


def test_the_default_channel_is_nsq_tails() -> None:
    class Fixed:
        def randrange(self, stop: int) -> int:
            assert stop == 999999
            return 42

    assert ephemeral_channel(Fixed()) == "tail000042#ephemeral"  # type: ignore[arg-type]

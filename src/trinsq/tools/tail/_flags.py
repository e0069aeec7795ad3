"""The ``trinsq tail`` command line: nsq_tail v1.3.0's flags (apps/nsq_tail/nsq_tail.go), and its
start-up checks with its words, in its order.

Go flag syntax is :mod:`trinsq.common._flagparse`'s. A bad flag, including a ``--consumer-opt``
that go-nsq refuses, is reported as Go's flag package does (exit status 2); a refused value with
``log.Fatal`` (a timestamped line, exit status 1), whose text :meth:`TailOptions.problem` gives.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import attrs

from trinsq._version import NSQ_COMPAT_VERSION, __version__
from trinsq.common._flagparse import Flag, FlagSet, option, option_flags
from trinsq.protocol import is_valid_channel_name, is_valid_topic_name
from trinsq.tools._goconfig import consumer_opt_option, flag_config_values

if TYPE_CHECKING:  # the client (and trio) are imported only when consuming
    from trinsq.client import ClientConfig

__all__ = ["TailOptions", "ephemeral_channel", "parse_tail_args"]

#: What nsq_tail sends as its user agent, with trinsq's versions.
USER_AGENT = f"nsq_tail/{NSQ_COMPAT_VERSION} trinsq/{__version__}"


def ephemeral_channel(rng: random.Random | None = None) -> str:
    """nsq_tail's default channel: ``tail`` and six digits (0..999998), ephemeral."""
    return f"tail{(rng or random.Random()).randrange(999999):06d}#ephemeral"


@attrs.define(kw_only=True)
class TailOptions:
    """What nsq_tail is told: the topics to show, and where to find the nodes carrying them."""

    channel: str = option("", usage="NSQ channel", kind="string")
    max_in_flight: int = option(200, usage="max number of messages to allow in flight", kind="int")
    n: int = option(0, usage="total messages to show (will wait if starved)", kind="int")
    print_topic: bool = option(
        False, usage="print topic name where message was received", kind="bool"
    )
    nsqd_tcp_address: list[str] = option(
        factory=list, usage="nsqd TCP address (may be given multiple times)", kind="values"
    )
    lookupd_http_address: list[str] = option(
        factory=list, usage="lookupd HTTP address (may be given multiple times)", kind="values"
    )
    topic: list[str] = option(
        factory=list, usage="NSQ topic (may be given multiple times)", kind="values"
    )
    consumer_opt: list[str] = consumer_opt_option()
    #: ClientConfig keywords set by ``consumer_opt`` (filled in by :meth:`validate`).
    config_values: dict[str, Any] = attrs.field(factory=dict)

    def validate(self) -> None:
        """nsq_tail's random ephemeral channel when none is given, and go-nsq's
        ``ConfigFlag.Set`` on every ``--consumer-opt``, as flag parsing does.

        Raises:
            UsageError: Go's flag error for the first value go-nsq refuses.
        """
        if not self.channel:
            self.channel = ephemeral_channel()
        self.config_values.update(flag_config_values(self.consumer_opt, "consumer-opt"))

    def problem(self) -> str | None:
        """nsq_tail's start-up refusal, word for word, or None when the options can be used."""
        if not self.nsqd_tcp_address and not self.lookupd_http_address:
            return "--nsqd-tcp-address or --lookupd-http-address required"
        if self.nsqd_tcp_address and self.lookupd_http_address:
            return "use --nsqd-tcp-address or --lookupd-http-address not both"
        if not self.topic:
            return "--topic required"
        if self.effective_max_in_flight < 0:  # go-nsq's Config.Validate
            return f"invalid MaxInFlight ! {self.effective_max_in_flight} < 0"
        try:
            self.client_config()
        except ValueError as exc:  # ClientConfig's own checks, where go-nsq's Validate is
            return str(exc)
        for topic in self.topic:  # go-nsq's NewConsumer, for each topic in turn
            if not is_valid_topic_name(topic):
                return "invalid topic name"
            if self.channel and not is_valid_channel_name(self.channel):
                return "invalid channel name"
        return None

    @property
    def effective_max_in_flight(self) -> int:
        """nsq_tail does not ask for more messages than it will show."""
        if 0 < self.n < self.max_in_flight:
            return self.n
        return self.max_in_flight

    def client_config(self) -> ClientConfig:
        """The consumers' config: ``--consumer-opt`` values, then nsq_tail's own user agent
        and max in flight over them, as nsq_tail sets them after parsing.

        Raises:
            ValueError: a combination ClientConfig refuses (e.g. heartbeat_interval not below
                read_timeout).
        """
        from trinsq.client import ClientConfig

        return ClientConfig(
            **{
                **self.config_values,
                "user_agent": USER_AGENT,
                "max_in_flight": self.effective_max_in_flight,
            }
        )


_TAIL = FlagSet(
    program="trinsq tail",
    version_line=f"trinsq tail v{__version__} (nsq_tail v{NSQ_COMPAT_VERSION} compatible)",
    flags=(
        Flag("version", "bool", "print version string", sets_option=False),
        *option_flags(TailOptions),
    ),
    options=TailOptions,
)


def parse_tail_args(argv: list[str]) -> TailOptions | None:
    """TailOptions from nsq_tail-style arguments (without the program name), ``--consumer-opt``
    checked, the rest not yet (see :meth:`TailOptions.problem`).

    Returns None when the request was --version or --help, which have been printed to stdout.

    Raises:
        UsageError: for an unknown flag or a value that does not parse.
    """
    return _TAIL.parse(argv)

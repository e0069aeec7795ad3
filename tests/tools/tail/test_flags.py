"""``trinsq tail``'s command line: nsq_tail's flags, defaults and the options it derives."""

from __future__ import annotations

import re

import pytest

from trinsq.common._flagparse import UsageError
from trinsq.tools.tail import TailOptions, parse_tail_args


def _parse(*argv: str) -> TailOptions:
    options = parse_tail_args(list(argv))
    assert options is not None
    return options


def test_repeated_flags_keep_each_value_whole() -> None:
    """app.StringArray: no splitting at commas (``name,value`` is one --consumer-opt)."""
    options = _parse(
        "--topic=a", "-topic", "b", "--consumer-opt=client_id,x,y", "--consumer-opt=snappy"
    )
    assert options.topic == ["a", "b"]
    assert options.consumer_opt == ["client_id,x,y", "snappy"]
    assert options.config_values == {"client_id": "x,y", "snappy": True}


def test_defaults_and_the_random_ephemeral_channel() -> None:
    options = _parse("--topic=t")
    assert (options.max_in_flight, options.n, options.print_topic) == (200, 0, False)
    assert re.fullmatch(r"tail\d{6}#ephemeral", options.channel)
    assert _parse("--channel=mine").channel == "mine"


@pytest.mark.parametrize(
    ("argv", "max_in_flight"),
    [(["-n=5"], 5), (["-n=500"], 200), (["-n=0", "--max-in-flight=9"], 9), (["-n=-3"], 200)],
)
def test_max_in_flight_is_no_more_than_n(argv: list[str], max_in_flight: int) -> None:
    """nsq_tail does not ask for more messages than it will show."""
    config = _parse("--topic=t", "--nsqd-tcp-address=a:1", *argv).client_config()
    assert config.max_in_flight == max_in_flight


def test_nsq_tails_own_settings_beat_consumer_opt() -> None:
    config = _parse(
        "--consumer-opt=max_in_flight,50", "--consumer-opt=user_agent,me", "--max-in-flight=4"
    ).client_config()
    assert config.max_in_flight == 4
    assert config.user_agent.startswith("nsq_tail/1.3.0 trinsq/")


def test_a_refused_consumer_opt_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r'^invalid value "x" for flag -consumer-opt: '):
        _parse("--consumer-opt=x")

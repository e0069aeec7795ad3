"""``trinsq to-file``'s --consumer-opt: go-nsq's ConfigFlag values as ClientConfig keywords,
refused with Go's flag error (nsq_to_file's flag; the same parser as tail's and pub's)."""

from __future__ import annotations

import pytest

from trinsq.common._flagparse import UsageError
from trinsq.tools.tofile import parse_to_file_args


def test_consumer_opts_become_client_config_values() -> None:
    options = parse_to_file_args(
        ["--topic=t", "--consumer-opt=snappy", "--consumer-opt=client_id,a,b", "--channel=c"]
    )
    assert options is not None
    assert options.consumer_opt == ["snappy", "client_id,a,b"]
    assert options.config_values == {"snappy": True, "client_id": "a,b"}


def test_a_consumer_opt_go_nsq_refuses_is_a_flag_error() -> None:
    with pytest.raises(UsageError, match=r'invalid value "nope,1" for flag -consumer-opt: '):
        parse_to_file_args(["--consumer-opt=nope,1"])

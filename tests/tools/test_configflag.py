"""go-nsq's ConfigFlag (``--producer-opt name,value``) as ClientConfig fields, with go-nsq's
words for what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from trinsq.client import ClientConfig
from trinsq.tools._configflag import ConfigFlagError, config_fields


def test_values_are_coerced_as_go_nsq_does() -> None:
    fields = config_fields(
        [
            "max_in_flight,200",
            "heartbeat-interval,10s",  # dashes are underscores to go-nsq
            "snappy",  # a bare name is true
            "tls_v1,true",
            "tls_insecure_skip_verify,1",
            "sample_rate,20",
            "lookupd_poll_jitter,0.5",
            "client_id,a,b",  # only the first comma splits
            "output_buffer_timeout,100ms",
            "rdy_redistribute_interval,1s",  # accepted, nothing in trinsq.client uses it
        ],
        "producer-opt",
    )
    assert fields == {
        "max_in_flight": 200,
        "heartbeat_interval": 10.0,
        "snappy": True,
        "tls": True,
        "tls_verify": False,
        "sample_rate": 20,
        "lookupd_poll_jitter": 0.5,
        "client_id": "a,b",
        "output_buffer_timeout": 0.1,
    }
    config = ClientConfig(**fields)
    assert config.identify_body()["heartbeat_interval"] == 10_000


def test_a_later_value_wins() -> None:
    assert config_fields(["deflate_level,2", "deflate_level,9"], "x") == {"deflate_level": 9}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("nope,1", "invalid option nope"),
        (
            "max_in_flight,x",
            'failed to coerce option max_in_flight (x) - strconv.ParseInt: parsing "x": '
            "invalid syntax",
        ),
        (
            "max_attempts,-1",
            'failed to coerce option max_attempts (-1) - strconv.ParseUint: parsing "-1": '
            "invalid syntax",
        ),
        (
            "snappy,yes",
            'failed to coerce option snappy (yes) - strconv.ParseBool: parsing "yes": '
            "invalid syntax",
        ),
        ("read_timeout", "failed to coerce option read_timeout (true) - invalid value type"),
        ("read_timeout,10ms", "invalid read_timeout ! 10ms < 100ms"),
        ("read_timeout,6m", "invalid read_timeout ! 6m0s > 5m0s"),
        ("sample_rate,100", "invalid sample_rate ! 100 > 99"),
        ("deflate_level,0", "invalid deflate_level ! 0 < 1"),
        ("tls_min_version,tls9", "ERROR: tls9 is not a tls version"),
        (
            "backoff_strategy,linear",
            "failed to coerce option backoff_strategy (linear) - invalid value type",
        ),
    ],
)
def test_refusals_are_worded_as_go_flag_and_go_nsq_word_them(value: str, reason: str) -> None:
    with pytest.raises(ConfigFlagError) as caught:
        config_fields(["snappy", value], "producer-opt")
    assert str(caught.value) == f'invalid value "{value}" for flag -producer-opt: {reason}'


def test_a_missing_ca_file_is_refused_when_given(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(ConfigFlagError, match="failed to read custom Certificate Authority file"):
        config_fields([f"tls_root_ca_file,{missing}"], "producer-opt")
    missing.write_text("")
    assert config_fields([f"tls_root_ca_file,{missing}"], "producer-opt") == {
        "tls_ca_file": str(missing)
    }

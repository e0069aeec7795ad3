"""go-nsq's ``--consumer-opt`` values mapped onto ClientConfig, with go-nsq's errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tlsutil import make_certificates
from trinsq.client import BackoffStrategy, ClientConfig
from trinsq.tools._goconfig import ConfigFlagError, client_config_values


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["read_timeout,2m"], {"read_timeout": 120.0}),
        (["heartbeat_interval,-1ms"], {"heartbeat_interval": -1}),
        (["output_buffer_size,-1"], {"output_buffer_size": -1}),
        (["snappy"], {"snappy": True}),  # a name alone is true
        (["deflate,false", "deflate_level,9"], {"deflate": False, "deflate_level": 9}),
        (["tls-v1", "tls_insecure_skip_verify,true"], {"tls": True, "tls_verify": False}),
        (["backoff_strategy,full_jitter"], {"backoff_strategy": "full_jitter"}),
        (
            ["lookupd_poll_jitter,0.5", "max_attempts,0"],
            {"lookupd_poll_jitter": 0.5, "max_attempts": 0},
        ),
        (["client_id,a,b"], {"client_id": "a,b"}),  # split at the first comma only
        (["sample_rate,10", "sample_rate,20"], {"sample_rate": 20}),  # the last one wins
        (["skip_lookupd_authorization"], {}),  # go-nsq's default, nothing to change
    ],
)
def test_values_map_onto_client_config(flags: list[str], expected: dict[str, Any]) -> None:
    values = client_config_values(flags)
    assert values == expected
    ClientConfig(**values)  # usable as they are


def test_full_jitter_becomes_the_strategy() -> None:
    config = ClientConfig(**client_config_values(["backoff_strategy,full_jitter"]))
    assert config.backoff_strategy is BackoffStrategy.FULL_JITTER


def test_tls_files_are_named_and_a_missing_ca_is_refused(tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path)
    values = client_config_values(
        [
            f"tls_root_ca_file,{certificates.ca_file}",
            f"tls_cert,{certificates.client_cert_file}",
            f"tls_key,{certificates.client_key_file}",
        ]
    )
    assert values == {
        "tls_ca_file": certificates.ca_file,
        "tls_cert_file": certificates.client_cert_file,
        "tls_key_file": certificates.client_key_file,
    }
    with pytest.raises(ConfigFlagError) as refused:
        client_config_values([f"tls_root_ca_file,{tmp_path / 'none.pem'}"])
    assert str(refused.value) == (
        "ERROR: failed to read custom Certificate Authority file open "
        f"{tmp_path / 'none.pem'}: no such file or directory"
    )


@pytest.mark.parametrize(
    ("flag", "error"),
    [
        ("nope,1", "invalid option nope"),
        ("read_timeout,6m", "invalid read_timeout ! 6m0s > 5m0s"),
        ("rdy_redistribute_interval,0s", "invalid rdy_redistribute_interval ! 0s < 1ms"),
        ("sample_rate,100", "invalid sample_rate ! 100 > 99"),
        ("lookupd_poll_jitter,1.5", "invalid lookupd_poll_jitter ! 1.5 > 1"),
        (
            "max_attempts,-1",
            "failed to coerce option max_attempts (-1) - "
            'strconv.ParseUint: parsing "-1": invalid syntax',
        ),
        (
            "dial_timeout,soon",
            'failed to coerce option dial_timeout (soon) - time: invalid duration "soon"',
        ),
        (
            "snappy,yes",
            "failed to coerce option snappy (yes) - "
            'strconv.ParseBool: parsing "yes": invalid syntax',
        ),
        ("max_in_flight", "failed to coerce option max_in_flight (true) - invalid value type"),
        (
            "backoff_strategy,linear",
            "failed to coerce option backoff_strategy (linear) - invalid value type",
        ),
        ("tls_min_version,tls1.2", "option tls_min_version is not supported by trinsq"),
        (
            "skip_lookupd_authorization,false",
            "option skip_lookupd_authorization false is not supported by trinsq",
        ),
    ],
)
def test_refusals_have_go_nsqs_words(flag: str, error: str) -> None:
    with pytest.raises(ConfigFlagError) as refused:
        client_config_values([flag])
    assert str(refused.value) == error

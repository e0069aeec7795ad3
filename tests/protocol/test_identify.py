"""IDENTIFY: JSON decoding as Go's encoding/json into nsqd's identifyDataV2, the Set* range
checks of nsqd/client_v2.go, and the negotiated reply of nsqd/protocol_v2.go."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from trinsq.protocol import (
    ClientSettings,
    IdentifyRequest,
    ProtocolError,
    ServerFeatures,
    negotiate_identify,
    parse_identify,
)

SERVER = ServerFeatures(version="1.3.0")
DEFAULTS = ClientSettings()
DECODE_FAILED = b"E_BAD_BODY IDENTIFY failed to decode JSON body"


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _decode_error(body: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_identify(body)
    return caught.value


# -- decoding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{}", b"null", b" {} ", b"\n\t{\r\n}\n", b" null "])
def test_empty_documents_give_defaults(body: bytes) -> None:
    assert parse_identify(body) == IdentifyRequest()


def test_defaults_are_go_zero_values() -> None:
    request = IdentifyRequest()
    assert attrs.asdict(request) == {
        "client_id": "",
        "hostname": "",
        "heartbeat_interval": 0,
        "output_buffer_size": 0,
        "output_buffer_timeout": 0,
        "feature_negotiation": False,
        "tls_v1": False,
        "deflate": False,
        "deflate_level": 0,
        "snappy": False,
        "sample_rate": 0,
        "user_agent": "",
        "msg_timeout": 0,
    }


def test_every_field_decoded() -> None:
    fields: dict[str, Any] = {
        "client_id": "worker-1",
        "hostname": "host.example",
        "heartbeat_interval": 15000,
        "output_buffer_size": 8192,
        "output_buffer_timeout": 100,
        "feature_negotiation": True,
        "tls_v1": True,
        "deflate": True,
        "deflate_level": 3,
        "snappy": False,
        "sample_rate": 42,
        "user_agent": "pynsq/0.9.1",
        "msg_timeout": 30000,
    }
    assert parse_identify(_body(**fields)) == IdentifyRequest(**fields)


@pytest.mark.parametrize(
    "extra",
    [
        {"short_id": "old", "long_id": "older"},  # go-nsq still sends these
        {"unknown": {"nested": [1, 2, {"deep": None}]}},
        {"unknown": [1, "two", 3.5, True, None]},
        {"topology_region": "eu", "topology_zone": "eu-1a"},
        {"heartbeat interval": "not the field (space, not underscore)"},
        {"clientid": 123},
        {"": 1},
    ],
)
def test_unknown_keys_ignored(extra: dict[str, Any]) -> None:
    request = parse_identify(_body(client_id="c", **extra))
    assert request == IdentifyRequest(client_id="c")


@pytest.mark.parametrize(
    "field",
    [field.name for field in attrs.fields(IdentifyRequest)],
)
def test_null_leaves_default(field: str) -> None:
    assert parse_identify(json.dumps({field: None}).encode()) == IdentifyRequest()


@pytest.mark.parametrize(
    "body",
    [
        # not JSON at all
        b"",
        b" ",
        b"{",
        b"}",
        b"not json",
        b"{'client_id': 'x'}",
        b'{"client_id": "x",}',
        b'{"client_id" "x"}',
        b"{} {}",
        b"{} x",
        b"\xef\xbb\xbf{}",  # a byte order mark is not JSON whitespace
        b'{"client_id": "a\x01b"}',  # raw control character inside a string
        b'{"client_id": "\\x41"}',  # not a JSON escape
        b'{"heartbeat_interval": 01}',
        b'{"heartbeat_interval": +1}',
        b'{"heartbeat_interval": .5}',
        b'{"x": NaN}',
        b'{"x": Infinity}',
        b'{"x": -Infinity}',
        b"\xff",
        # JSON, but not an object
        b"[]",
        b"[{}]",
        b"1",
        b'"string"',
        b"true",
        b"false",
        # wrong JSON type for a string field
        b'{"client_id": 1}',
        b'{"hostname": true}',
        b'{"user_agent": ["a"]}',
        b'{"client_id": {}}',
        # wrong JSON type for an int field
        b'{"heartbeat_interval": "1000"}',
        b'{"heartbeat_interval": true}',
        b'{"output_buffer_size": false}',
        b'{"output_buffer_timeout": [250]}',
        b'{"msg_timeout": {}}',
        b'{"deflate_level": "6"}',
        # floats are never ints, even integral ones
        b'{"heartbeat_interval": 1000.0}',
        b'{"heartbeat_interval": 1000.5}',
        b'{"msg_timeout": 1e3}',
        b'{"msg_timeout": 1E3}',
        b'{"sample_rate": 5.0}',
        b'{"deflate_level": -0.0}',
        # wrong JSON type for a bool field
        b'{"feature_negotiation": 1}',
        b'{"feature_negotiation": "true"}',
        b'{"tls_v1": 0}',
        b'{"snappy": []}',
        b'{"deflate": "false"}',
        # out of range for Go's int (int64) and sample_rate's int32
        b'{"heartbeat_interval": 9223372036854775808}',
        b'{"heartbeat_interval": -9223372036854775809}',
        b'{"msg_timeout": 100000000000000000000000}',
        b'{"sample_rate": 2147483648}',
        b'{"sample_rate": -2147483649}',
        b'{"sample_rate": 4294967296}',
    ],
)
def test_decode_failures(body: bytes) -> None:
    error = _decode_error(body)
    assert error.code == "E_BAD_BODY"
    assert error.description == "IDENTIFY failed to decode JSON body"
    assert error.frame_data == DECODE_FAILED
    assert error.fatal


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        (b'{"heartbeat_interval": 9223372036854775807}', "heartbeat_interval", (1 << 63) - 1),
        (b'{"heartbeat_interval": -9223372036854775808}', "heartbeat_interval", -(1 << 63)),
        (b'{"sample_rate": 2147483647}', "sample_rate", 2147483647),
        (b'{"sample_rate": -2147483648}', "sample_rate", -2147483648),
        (b'{"msg_timeout": -0}', "msg_timeout", 0),
        (b'{"deflate_level": -1}', "deflate_level", -1),
        (b'{"client_id": "caf\\u00e9 \\ud83d\\ude00"}', "client_id", "café 😀"),
        ('{"client_id": "café"}'.encode(), "client_id", "café"),
        (b'{"user_agent": ""}', "user_agent", ""),
        (b'{"feature_negotiation": false}', "feature_negotiation", False),
    ],
)
def test_decode_boundaries(body: bytes, field: str, value: object) -> None:
    assert getattr(parse_identify(body), field) == value


@pytest.mark.parametrize(
    ("key", "field", "value", "expected"),
    [
        ("CLIENT_ID", "client_id", "x", "x"),
        ("Client_Id", "client_id", "x", "x"),
        ("HEARTBEAT_INTERVAL", "heartbeat_interval", 5000, 5000),
        ("Feature_Negotiation", "feature_negotiation", True, True),
        ("SAMPLE_RATE", "sample_rate", 7, 7),
        ("Msg_Timeout", "msg_timeout", 2000, 2000),
        ("TLS_V1", "tls_v1", True, True),
        ("ouTput_bUffer_sIze", "output_buffer_size", 100, 100),
        # Go folds with unicode.SimpleFold: U+017F LONG S matches "s"
        ("\u017fample_rate", "sample_rate", 9, 9),
        ("\u017fnappy", "snappy", True, True),
        ("ho\u017ftname", "hostname", "h", "h"),
    ],
)
def test_keys_match_case_insensitively(key: str, field: str, value: Any, expected: Any) -> None:
    request = parse_identify(json.dumps({key: value}, ensure_ascii=False).encode())
    assert getattr(request, field) == expected


@pytest.mark.parametrize(
    "key",
    ["client-id", "clientid", "client_id ", "\u0130d", "sample_rate\u0000", "\u017fample-rate"],
)
def test_near_miss_keys_ignored(key: str) -> None:
    assert parse_identify(json.dumps({key: 5}).encode()) == IdentifyRequest()


def test_case_insensitive_wrong_type_still_fails() -> None:
    assert _decode_error(b'{"HEARTBEAT_INTERVAL": "1000"}').frame_data == DECODE_FAILED


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        # members apply in document order, so the last one wins...
        (
            b'{"heartbeat_interval": 1000, "heartbeat_interval": 3000}',
            "heartbeat_interval",
            3000,
        ),
        # ...whatever its spelling
        (
            b'{"heartbeat_interval":1000,"HEARTBEAT_INTERVAL":2000,"heartbeat_interval":3000}',
            "heartbeat_interval",
            3000,
        ),
        (b'{"client_id": "a", "Client_ID": "b"}', "client_id", "b"),
        (b'{"Client_ID": "b", "client_id": "a"}', "client_id", "a"),
        # a later null leaves what an earlier member set
        (b'{"heartbeat_interval": 2000, "heartbeat_interval": null}', "heartbeat_interval", 2000),
        (b'{"sample_rate": 10, "SAMPLE_RATE": null}', "sample_rate", 10),
    ],
)
def test_duplicate_keys_apply_in_order(body: bytes, field: str, expected: object) -> None:
    assert getattr(parse_identify(body), field) == expected


@pytest.mark.parametrize(
    "body",
    [
        # Go records the type error and still fails after decoding the rest
        b'{"heartbeat_interval": "x", "heartbeat_interval": 1000}',
        b'{"HEARTBEAT_INTERVAL": 1.5, "heartbeat_interval": 1000}',
        b'{"tls_v1": 1, "tls_v1": true}',
    ],
)
def test_wrongly_typed_duplicate_fails(body: bytes) -> None:
    assert _decode_error(body).frame_data == DECODE_FAILED


def _nested(depth: int) -> bytes:
    return b'{"unknown": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [10_001, 20_000, 200_000])
def test_nesting_beyond_go_limit_is_a_decode_error(depth: int) -> None:
    # Go's scanner stops at 10000 levels ("exceeded max depth"); Python must not crash either
    assert _decode_error(_nested(depth)).frame_data == DECODE_FAILED


@pytest.mark.parametrize("depth", [1, 50, 500])
def test_nested_unknown_values_ignored(depth: int) -> None:
    assert parse_identify(_nested(depth)) == IdentifyRequest()


@pytest.mark.xfail(
    reason="Go accepts up to 10000 levels; trinsq refuses more than MAX_JSON_DEPTH (512), "
    "as Python's JSON decoder stops near the recursion limit",
    raises=ProtocolError,
    strict=True,
)
def test_nesting_between_python_and_go_limits() -> None:
    assert parse_identify(_nested(5_000)) == IdentifyRequest()


@pytest.mark.parametrize(
    ("body", "client_id"),
    [
        # unpaired surrogate escapes become U+FFFD, as Go's decoder does
        (b'{"client_id": "\\ud800"}', "\ufffd"),
        (b'{"client_id": "a\\udc00b"}', "a\ufffdb"),
        (b'{"client_id": "\\ud83d\\u0041"}', "\ufffdA"),
        (b'{"client_id": "\\ude00\\ud83d"}', "\ufffd\ufffd"),
        (b'{"client_id": "\\ud83d\\ude00"}', "\U0001f600"),  # a valid pair
        # every invalid UTF-8 byte inside a string becomes its own U+FFFD
        (b'{"client_id": "\xff"}', "\ufffd"),
        (b'{"client_id": "a\xe2\x82b"}', "a\ufffd\ufffdb"),
        (b'{"client_id": "\xf0\x9f\x98"}', "\ufffd\ufffd\ufffd"),
        (b'{"client_id": "\xed\xa0\x80"}', "\ufffd\ufffd\ufffd"),
        (b'{"client_id": "\xc0\xaf"}', "\ufffd\ufffd"),
    ],
)
def test_strings_decoded_like_go(body: bytes, client_id: str) -> None:
    assert parse_identify(body).client_id == client_id


# -- range checks (client_v2.go Set*) -------------------------------------------------------------


def _negotiate(
    *,
    current: ClientSettings = DEFAULTS,
    server: ServerFeatures = SERVER,
    **fields: Any,
) -> ClientSettings:
    return negotiate_identify(_body(**fields), current, server).settings


def _rejection(server: ServerFeatures = SERVER, **fields: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        negotiate_identify(_body(**fields), DEFAULTS, server)
    return caught.value


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"heartbeat_interval": 999}, "IDENTIFY heartbeat interval (999) is invalid"),
        ({"heartbeat_interval": 1}, "IDENTIFY heartbeat interval (1) is invalid"),
        ({"heartbeat_interval": 60001}, "IDENTIFY heartbeat interval (60001) is invalid"),
        ({"heartbeat_interval": -2}, "IDENTIFY heartbeat interval (-2) is invalid"),
        (
            {"heartbeat_interval": -9223372036854775808},
            "IDENTIFY heartbeat interval (-9223372036854775808) is invalid",
        ),
        ({"output_buffer_timeout": 24}, "IDENTIFY output buffer timeout (24) is invalid"),
        ({"output_buffer_timeout": 1}, "IDENTIFY output buffer timeout (1) is invalid"),
        ({"output_buffer_timeout": 30001}, "IDENTIFY output buffer timeout (30001) is invalid"),
        ({"output_buffer_timeout": -2}, "IDENTIFY output buffer timeout (-2) is invalid"),
        ({"output_buffer_size": 63}, "IDENTIFY output buffer size (63) is invalid"),
        ({"output_buffer_size": 1}, "IDENTIFY output buffer size (1) is invalid"),
        ({"output_buffer_size": 65537}, "IDENTIFY output buffer size (65537) is invalid"),
        ({"output_buffer_size": -2}, "IDENTIFY output buffer size (-2) is invalid"),
        ({"sample_rate": -1}, "IDENTIFY sample rate (-1) is invalid"),
        ({"sample_rate": 100}, "IDENTIFY sample rate (100) is invalid"),
        ({"sample_rate": 2147483647}, "IDENTIFY sample rate (2147483647) is invalid"),
        ({"msg_timeout": 999}, "IDENTIFY msg timeout (999) is invalid"),
        ({"msg_timeout": -1}, "IDENTIFY msg timeout (-1) is invalid"),
        ({"msg_timeout": 900001}, "IDENTIFY msg timeout (900001) is invalid"),
        # check order: heartbeat, output buffer timeout, output buffer size, sample rate,
        # msg timeout
        (
            {
                "heartbeat_interval": 1,
                "output_buffer_timeout": 1,
                "output_buffer_size": 1,
                "sample_rate": 100,
                "msg_timeout": 1,
            },
            "IDENTIFY heartbeat interval (1) is invalid",
        ),
        (
            {
                "output_buffer_timeout": 1,
                "output_buffer_size": 1,
                "sample_rate": 100,
                "msg_timeout": 1,
            },
            "IDENTIFY output buffer timeout (1) is invalid",
        ),
        (
            {"output_buffer_size": 1, "sample_rate": 100, "msg_timeout": 1},
            "IDENTIFY output buffer size (1) is invalid",
        ),
        ({"sample_rate": 100, "msg_timeout": 1}, "IDENTIFY sample rate (100) is invalid"),
        # -1 for the buffer size does not excuse a bad timeout: the timeout is checked first
        (
            {"output_buffer_size": -1, "output_buffer_timeout": 10},
            "IDENTIFY output buffer timeout (10) is invalid",
        ),
        # -1 means "disable" only for heartbeat and output buffer fields
        ({"msg_timeout": -1, "heartbeat_interval": -1}, "IDENTIFY msg timeout (-1) is invalid"),
    ],
)
def test_range_checks(fields: dict[str, Any], text: str) -> None:
    error = _rejection(**fields)
    assert (error.code, error.description) == ("E_BAD_BODY", text)
    assert error.frame_data == b"E_BAD_BODY " + text.encode()
    assert error.fatal


@pytest.mark.parametrize(
    ("server", "fields", "text"),
    [
        # nsqd's own tests (protocol_v2_test.go), with their non-default options
        (
            ServerFeatures(version="1.3.0", max_heartbeat_interval_ms=300_000),
            {"heartbeat_interval": 300_001},
            "IDENTIFY heartbeat interval (300001) is invalid",
        ),
        (
            ServerFeatures(
                version="1.3.0",
                max_output_buffer_size=512 * 1024,
                max_output_buffer_timeout_ms=1000,
            ),
            {"output_buffer_size": 512 * 1024 + 1, "output_buffer_timeout": 0},
            "IDENTIFY output buffer size (524289) is invalid",
        ),
        (
            ServerFeatures(
                version="1.3.0",
                max_output_buffer_size=512 * 1024,
                max_output_buffer_timeout_ms=1000,
            ),
            {"output_buffer_size": 0, "output_buffer_timeout": 1001},
            "IDENTIFY output buffer timeout (1001) is invalid",
        ),
        (
            ServerFeatures(version="1.3.0", min_output_buffer_timeout_ms=100),
            {"output_buffer_timeout": 99},
            "IDENTIFY output buffer timeout (99) is invalid",
        ),
        (
            ServerFeatures(version="1.3.0", max_msg_timeout_ms=5000),
            {"msg_timeout": 5001},
            "IDENTIFY msg timeout (5001) is invalid",
        ),
    ],
)
def test_range_checks_follow_server_options(
    server: ServerFeatures, fields: dict[str, Any], text: str
) -> None:
    assert _rejection(server, **fields).frame_data == b"E_BAD_BODY " + text.encode()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, DEFAULTS),
        # heartbeat: 0 keeps the current value, -1 turns heartbeats off
        ({"heartbeat_interval": 0}, DEFAULTS),
        ({"heartbeat_interval": -1}, attrs.evolve(DEFAULTS, heartbeat_interval_ms=0)),
        ({"heartbeat_interval": 1000}, attrs.evolve(DEFAULTS, heartbeat_interval_ms=1000)),
        ({"heartbeat_interval": 60000}, attrs.evolve(DEFAULTS, heartbeat_interval_ms=60000)),
        # output buffer timeout
        ({"output_buffer_timeout": 0}, DEFAULTS),
        ({"output_buffer_timeout": -1}, attrs.evolve(DEFAULTS, output_buffer_timeout_ms=0)),
        ({"output_buffer_timeout": 25}, attrs.evolve(DEFAULTS, output_buffer_timeout_ms=25)),
        ({"output_buffer_timeout": 30000}, attrs.evolve(DEFAULTS, output_buffer_timeout_ms=30000)),
        # output buffer size; -1 means unbuffered: size 1 and no timed flush
        ({"output_buffer_size": 0}, DEFAULTS),
        (
            {"output_buffer_size": -1},
            attrs.evolve(DEFAULTS, output_buffer_size=1, output_buffer_timeout_ms=0),
        ),
        (
            {"output_buffer_size": -1, "output_buffer_timeout": 500},
            attrs.evolve(DEFAULTS, output_buffer_size=1, output_buffer_timeout_ms=0),
        ),
        (
            {"output_buffer_size": -1, "output_buffer_timeout": -1},
            attrs.evolve(DEFAULTS, output_buffer_size=1, output_buffer_timeout_ms=0),
        ),
        ({"output_buffer_size": 64}, attrs.evolve(DEFAULTS, output_buffer_size=64)),
        ({"output_buffer_size": 65536}, attrs.evolve(DEFAULTS, output_buffer_size=65536)),
        (
            {"output_buffer_size": 100, "output_buffer_timeout": 1000},
            attrs.evolve(DEFAULTS, output_buffer_size=100, output_buffer_timeout_ms=1000),
        ),
        # sample rate
        ({"sample_rate": 0}, DEFAULTS),
        ({"sample_rate": 1}, attrs.evolve(DEFAULTS, sample_rate=1)),
        ({"sample_rate": 99}, attrs.evolve(DEFAULTS, sample_rate=99)),
        # msg timeout
        ({"msg_timeout": 0}, DEFAULTS),
        ({"msg_timeout": 1000}, attrs.evolve(DEFAULTS, msg_timeout_ms=1000)),
        ({"msg_timeout": 900000}, attrs.evolve(DEFAULTS, msg_timeout_ms=900000)),
    ],
)
def test_accepted_values(fields: dict[str, Any], expected: ClientSettings) -> None:
    assert _negotiate(**fields) == expected


def test_zero_keeps_current_settings() -> None:
    current = ClientSettings(
        heartbeat_interval_ms=5000,
        output_buffer_size=128,
        output_buffer_timeout_ms=40,
        sample_rate=0,
        msg_timeout_ms=7000,
    )
    assert _negotiate(current=current) == current
    assert (
        _negotiate(
            current=current,
            heartbeat_interval=0,
            output_buffer_size=0,
            output_buffer_timeout=0,
            msg_timeout=0,
        )
        == current
    )


def test_sample_rate_always_replaced() -> None:
    # SetSampleRate stores whatever was sent, 0 included (no "0 keeps the default" rule)
    assert _negotiate(current=attrs.evolve(DEFAULTS, sample_rate=50)).sample_rate == 0


def test_default_client_settings() -> None:
    assert (
        ClientSettings(
            heartbeat_interval_ms=30_000,
            output_buffer_size=16_384,
            output_buffer_timeout_ms=250,
            sample_rate=0,
            msg_timeout_ms=60_000,
        )
        == DEFAULTS
    )


def test_decode_error_comes_before_range_checks() -> None:
    with pytest.raises(ProtocolError) as caught:
        negotiate_identify(b'{"heartbeat_interval": 1, "tls_v1": "yes"}', DEFAULTS, SERVER)
    assert caught.value.frame_data == DECODE_FAILED


# -- negotiation and reply (protocol_v2.go IDENTIFY) ----------------------------------------------


@pytest.mark.parametrize("negotiation", [None, False])
def test_without_feature_negotiation_reply_is_ok(negotiation: bool | None) -> None:
    fields: dict[str, Any] = {"tls_v1": True, "snappy": True, "deflate": True, "msg_timeout": 2000}
    if negotiation is not None:
        fields["feature_negotiation"] = negotiation
    server = ServerFeatures(version="1.3.0", tls_available=True)
    result = negotiate_identify(_body(**fields), DEFAULTS, server)
    # nsqd bails out before negotiating: no JSON, no upgrades, no snappy+deflate conflict
    assert result.response is None
    assert (result.tls_v1, result.snappy, result.deflate) == (False, False, False)
    assert result.settings.msg_timeout_ms == 2000
    assert result.request.snappy
    assert result.request.deflate


def test_default_negotiated_reply_bytes() -> None:
    result = negotiate_identify(b'{"feature_negotiation":true}', DEFAULTS, SERVER)
    assert result.response == (
        b'{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,'
        b'"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,'
        b'"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,'
        b'"output_buffer_size":16384,"output_buffer_timeout":250}'
    )


def test_reply_key_order() -> None:
    result = negotiate_identify(b'{"feature_negotiation":true}', DEFAULTS, SERVER)
    assert result.response is not None
    assert list(json.loads(result.response)) == [
        "max_rdy_count",
        "version",
        "max_msg_timeout",
        "msg_timeout",
        "tls_v1",
        "deflate",
        "deflate_level",
        "max_deflate_level",
        "snappy",
        "sample_rate",
        "auth_required",
        "output_buffer_size",
        "output_buffer_timeout",
    ]


def test_reply_reflects_settings_and_server() -> None:
    server = ServerFeatures(
        version="1.3.0-trinsq",
        max_rdy_count=50,
        max_msg_timeout_ms=120_000,
        tls_available=True,
        max_deflate_level=9,
        auth_required=True,
    )
    body = _body(
        feature_negotiation=True,
        tls_v1=True,
        deflate=True,
        deflate_level=8,
        sample_rate=42,
        msg_timeout=90_000,
        output_buffer_size=-1,
        output_buffer_timeout=500,
    )
    result = negotiate_identify(body, DEFAULTS, server)
    assert result.response == (
        b'{"max_rdy_count":50,"version":"1.3.0-trinsq","max_msg_timeout":120000,'
        b'"msg_timeout":90000,"tls_v1":true,"deflate":true,"deflate_level":8,'
        b'"max_deflate_level":9,"snappy":false,"sample_rate":42,"auth_required":true,'
        b'"output_buffer_size":1,"output_buffer_timeout":0}'
    )
    assert (result.tls_v1, result.deflate, result.deflate_level, result.snappy) == (
        True,
        True,
        8,
        False,
    )


def _negotiated(server: ServerFeatures = SERVER, **fields: Any) -> dict[str, Any]:
    result = negotiate_identify(_body(feature_negotiation=True, **fields), DEFAULTS, server)
    assert result.response is not None
    reply: dict[str, Any] = json.loads(result.response)
    # the result's flags and the reply always agree
    assert (reply["tls_v1"], reply["deflate"], reply["snappy"]) == (
        result.tls_v1,
        result.deflate,
        result.snappy,
    )
    assert reply["deflate_level"] == result.deflate_level
    return reply


@pytest.mark.parametrize(
    ("available", "requested", "negotiated"),
    [(False, False, False), (False, True, False), (True, False, False), (True, True, True)],
)
def test_tls_negotiation(available: bool, requested: bool, negotiated: bool) -> None:
    server = ServerFeatures(version="1.3.0", tls_available=available)
    assert _negotiated(server, tls_v1=requested)["tls_v1"] is negotiated


@pytest.mark.parametrize(
    ("enabled", "requested", "negotiated"),
    [(False, False, False), (False, True, False), (True, False, False), (True, True, True)],
)
def test_snappy_negotiation(enabled: bool, requested: bool, negotiated: bool) -> None:
    server = ServerFeatures(version="1.3.0", snappy_enabled=enabled)
    assert _negotiated(server, snappy=requested)["snappy"] is negotiated


@pytest.mark.parametrize(
    ("enabled", "requested", "level", "max_level", "negotiated", "reported_level"),
    [
        (True, True, None, 6, True, 6),
        (True, True, 0, 6, True, 6),
        (True, True, -1, 6, True, 6),
        (True, True, 1, 6, True, 1),
        (True, True, 5, 6, True, 5),
        (True, True, 6, 6, True, 6),
        (True, True, 9, 6, True, 6),  # clamped to the server's maximum
        (True, True, 9, 9, True, 9),
        (True, True, 3, 2, True, 2),
        # not negotiated: the client's level is ignored, 6 is reported, still clamped to max
        (True, False, 3, 6, False, 6),
        (False, True, 3, 6, False, 6),
        (False, False, 1, 3, False, 3),
        (True, False, 9, 9, False, 6),
    ],
)
def test_deflate_negotiation(
    enabled: bool,
    requested: bool,
    level: int | None,
    max_level: int,
    negotiated: bool,
    reported_level: int,
) -> None:
    server = ServerFeatures(version="1.3.0", deflate_enabled=enabled, max_deflate_level=max_level)
    fields: dict[str, Any] = {"deflate": requested}
    if level is not None:
        fields["deflate_level"] = level
    reply = _negotiated(server, **fields)
    assert reply["deflate"] is negotiated
    assert reply["deflate_level"] == reported_level
    assert reply["max_deflate_level"] == max_level


def test_snappy_and_deflate_together_fail() -> None:
    with pytest.raises(ProtocolError) as caught:
        negotiate_identify(
            _body(feature_negotiation=True, snappy=True, deflate=True), DEFAULTS, SERVER
        )
    error = caught.value
    assert error.code == "E_IDENTIFY_FAILED"
    assert (
        error.frame_data == b"E_IDENTIFY_FAILED cannot enable both deflate and snappy compression"
    )
    assert error.fatal


@pytest.mark.parametrize(
    ("server", "snappy", "deflate"),
    [
        (ServerFeatures(version="1.3.0", snappy_enabled=False), False, True),
        (ServerFeatures(version="1.3.0", deflate_enabled=False), True, False),
    ],
)
def test_both_requested_but_one_disabled_is_fine(
    server: ServerFeatures, snappy: bool, deflate: bool
) -> None:
    reply = _negotiated(server, snappy=True, deflate=True)
    assert (reply["snappy"], reply["deflate"]) == (snappy, deflate)


def test_range_check_comes_before_compression_conflict() -> None:
    error = _rejection(feature_negotiation=True, snappy=True, deflate=True, sample_rate=100)
    assert error.frame_data == b"E_BAD_BODY IDENTIFY sample rate (100) is invalid"


def test_result_carries_request() -> None:
    result = negotiate_identify(_body(client_id="c1", user_agent="ua"), DEFAULTS, SERVER)
    assert result.request == IdentifyRequest(client_id="c1", user_agent="ua")
    assert result.settings == DEFAULTS

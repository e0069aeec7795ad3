"""The client's sans-IO protocol (trinsq/client/_protocol.py): commands as the broker's own
parser reads them, events from frames, heartbeats answered, handshake answers, typed errors."""

from __future__ import annotations

import json
import ssl
from typing import Any

import pytest

from trinsq.client import ClientConfig
from trinsq.client import _errors as errors
from trinsq.client._protocol import (
    MAGIC_V2,
    AuthIdentity,
    ClientProtocol,
    ErrorReply,
    MessageFrame,
    Negotiated,
    Response,
    encode_auth,
    encode_cls,
    encode_dpub,
    encode_fin,
    encode_identify,
    encode_mpub,
    encode_nop,
    encode_pub,
    encode_rdy,
    encode_req,
    encode_sub,
    encode_touch,
    expect_ok,
    parse_auth_response,
    parse_identify_response,
)
from trinsq.protocol import (
    NEED_DATA,
    Auth,
    Close,
    DeferredPublish,
    Finish,
    Frame,
    FrameType,
    Identify,
    Limits,
    MultiPublish,
    Nop,
    Publish,
    Ready,
    Requeue,
    Subscribe,
    Touch,
    V2ServerConnection,
    encode_error,
    encode_message,
    encode_response,
    parse_identify,
)
from trinsq.protocol import ProtocolError as ServerError

MESSAGE_ID = b"0123456789abcdef"


def parsed(data: bytes, *, subscribed: bool = False) -> list[object]:
    """What nsqd's parser (the broker's sans-IO V2 connection) reads from ``data``, on a
    connection that has subscribed if ``subscribed``."""
    server = V2ServerConnection(Limits())
    if subscribed:
        server.subscribed()
    server.receive_data(MAGIC_V2 + data)
    commands: list[object] = []
    while (command := server.next_command()) is not NEED_DATA:
        commands.append(command)
    return commands


@pytest.mark.parametrize(
    ("data", "command"),
    [
        (encode_sub("t", "c#ephemeral"), Subscribe("t", "c#ephemeral")),
        (encode_rdy(2500), Ready(2500)),
        (encode_fin(MESSAGE_ID), Finish(MESSAGE_ID)),
        (encode_req(MESSAGE_ID, 1.5), Requeue(MESSAGE_ID, 1500, 1500)),
        (encode_touch(MESSAGE_ID), Touch(MESSAGE_ID)),
        (encode_pub("t", b"hello\nworld"), Publish("t", b"hello\nworld")),
        (encode_dpub("t", b"later", 2.25), DeferredPublish("t", b"later", 2250)),
        (encode_nop(), Nop()),
        (encode_cls(), Close()),
        (encode_auth("s3cret é"), Auth("s3cret é".encode())),
    ],
)
def test_each_command_reads_back_as_nsqd_parses_it(data: bytes, command: object) -> None:
    subscribed = isinstance(command, Ready | Finish | Requeue | Touch | Close)
    assert parsed(data, subscribed=subscribed) == [command]


def test_mpub_reads_back_with_every_body() -> None:
    bodies = [b"one", b"\x00" * 1000, b"three"]
    (command,) = parsed(encode_mpub("t", bodies))
    assert isinstance(command, MultiPublish)
    assert list(command.bodies) == bodies


def test_identify_carries_go_nsqs_fields_in_milliseconds() -> None:
    config = ClientConfig(
        client_id="me",
        heartbeat_interval=1.5,
        output_buffer_timeout=-1,
        msg_timeout=30,
        snappy=True,
        sample_rate=10,
    )
    (command,) = parsed(encode_identify(config.identify_body()))
    assert isinstance(command, Identify)
    request = parse_identify(command.body)
    assert request.client_id == "me"
    assert request.heartbeat_interval == 1500
    assert request.output_buffer_timeout == -1
    assert request.msg_timeout == 30_000
    assert (request.snappy, request.feature_negotiation, request.deflate) == (True, True, False)
    assert request.sample_rate == 10
    assert request.user_agent.startswith("trinsq/")


@pytest.mark.parametrize(
    ("make", "error", "text"),
    [
        (lambda: encode_pub("bad topic", b"x"), errors.BadTopicError, 'PUB topic name "bad topic"'),
        (lambda: encode_mpub("a\nb", [b"x"]), errors.BadTopicError, 'MPUB topic name "a\\nb"'),
        (lambda: encode_dpub("", b"x", 1), errors.BadTopicError, 'DPUB topic name ""'),
        (lambda: encode_sub("t", "c c"), errors.BadChannelError, 'SUB channel name "c c"'),
        (lambda: encode_pub("t", b""), errors.BadMessageError, "PUB invalid message body size 0"),
        (lambda: encode_mpub("t", [b"x", b""]), errors.BadMessageError, "MPUB invalid"),
        (lambda: encode_mpub("t", []), errors.BadBodyError, "MPUB invalid message count 0"),
    ],
)
def test_bad_names_and_empty_bodies_fail_before_anything_is_written(
    make: Any, error: type[errors.ProtocolError], text: str
) -> None:
    with pytest.raises(error) as raised:
        make()
    assert str(raised.value).split(" ", 1)[1].startswith(text)


def test_bad_message_ids_and_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        encode_fin(b"short")
    with pytest.raises(ValueError, match="RDY"):
        encode_rdy(-1)


def test_events_from_frames_split_anywhere_and_heartbeats_answered() -> None:
    frames = (
        encode_response(b"OK")
        + encode_response(b"_heartbeat_")
        + encode_message(123, 2, MESSAGE_ID, b"body")
        + encode_error(ServerError("E_FIN_FAILED", "FIN failed"))
        + encode_response(b"CLOSE_WAIT")
    )
    protocol = ClientProtocol()
    events = []
    for byte in frames:
        events += protocol.receive_data(bytes([byte]))
    assert events[0] == Response(b"OK")
    assert events[1] == MessageFrame(MESSAGE_ID, b"body", 123, 2)
    assert isinstance(events[2], ErrorReply)
    assert isinstance(events[2].error, errors.FinFailedError)
    assert not events[2].error.fatal
    assert events[3] == Response(b"CLOSE_WAIT")
    assert len(events) == 4
    assert protocol.heartbeats == 1
    assert protocol.data_to_send() == b"NOP\n"
    assert protocol.data_to_send() == b""


def test_commands_queue_in_order() -> None:
    protocol = ClientProtocol()
    protocol.send(encode_pub("t", b"a"))
    protocol.send(encode_nop())
    assert protocol.output_size == len(encode_pub("t", b"a")) + 4
    assert parsed(protocol.data_to_send()) == [Publish("t", b"a"), Nop()]
    assert protocol.output_size == 0


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00\x02xxxx",  # a size below the 4 bytes of the type
        b"\x00\x00\x00\x05\x00\x00\x00\x07x",  # an unknown frame type
        b"\x00\x00\x00\x08\x00\x00\x00\x02abcd",  # a message frame too short for its header
    ],
)
def test_garbage_from_the_server_is_a_closed_connection(data: bytes) -> None:
    with pytest.raises(errors.ConnectionClosedError, match="invalid"):
        ClientProtocol().receive_data(data)


def test_unparsed_bytes_after_a_frame_are_handed_over() -> None:
    protocol = ClientProtocol()
    assert protocol.receive_data(b"") == []
    protocol.feed(encode_response(b"{}") + b"\xff\x06compressed")
    assert protocol.next_frame() == Frame(FrameType.RESPONSE, b"{}")
    assert protocol.take_unparsed() == b"\xff\x06compressed"
    assert protocol.next_frame() is None


@pytest.mark.parametrize(
    ("code", "kind", "fatal"),
    [
        ("E_INVALID", errors.InvalidError, True),
        ("E_BAD_PROTOCOL", errors.BadProtocolError, True),
        ("E_BAD_BODY", errors.BadBodyError, True),
        ("E_BAD_TOPIC", errors.BadTopicError, True),
        ("E_BAD_CHANNEL", errors.BadChannelError, True),
        ("E_BAD_MESSAGE", errors.BadMessageError, True),
        ("E_PUB_FAILED", errors.PubFailedError, True),
        ("E_MPUB_FAILED", errors.MPubFailedError, True),
        ("E_DPUB_FAILED", errors.DPubFailedError, True),
        ("E_FIN_FAILED", errors.FinFailedError, False),
        ("E_REQ_FAILED", errors.ReqFailedError, False),
        ("E_TOUCH_FAILED", errors.TouchFailedError, False),
        ("E_IDENTIFY_FAILED", errors.IdentifyError, True),
        ("E_AUTH_FAILED", errors.AuthFailedError, True),
        ("E_UNAUTHORIZED", errors.UnauthorizedError, True),
        ("E_AUTH_FIRST", errors.AuthError, True),
        ("E_SOMETHING_NEW", errors.ProtocolError, True),
    ],
)
def test_error_frames_become_typed_errors(
    code: str, kind: type[errors.ProtocolError], fatal: bool
) -> None:
    error = errors.error_from_frame(f"{code} it went wrong".encode())
    assert type(error) is kind
    assert isinstance(error, errors.NSQError)
    assert (error.code, error.text, error.fatal) == (code, "it went wrong", fatal)
    assert str(error) == f"{code} it went wrong"


def test_publish_failures_share_a_base() -> None:
    assert issubclass(errors.MPubFailedError, errors.PubFailedError)
    assert issubclass(errors.DPubFailedError, errors.PubFailedError)
    assert issubclass(errors.ConnectError, errors.ConnectionClosedError)


def identify_answer(**fields: object) -> Frame:
    return Frame(FrameType.RESPONSE, json.dumps(fields).encode())


def test_identify_answer_is_read_into_negotiated_settings() -> None:
    negotiated = parse_identify_response(
        identify_answer(
            max_rdy_count=100,
            version="1.3.0",
            max_msg_timeout=900000,
            msg_timeout=60000,
            tls_v1=True,
            deflate=False,
            deflate_level=6,
            max_deflate_level=6,
            snappy=True,
            sample_rate=0,
            auth_required=True,
            output_buffer_size=16384,
            output_buffer_timeout=250,
        )
    )
    assert negotiated == Negotiated(
        feature_negotiation=True,
        version="1.3.0",
        max_rdy_count=100,
        max_msg_timeout=900.0,
        msg_timeout=60.0,
        tls=True,
        snappy=True,
        deflate=False,
        deflate_level=6,
        max_deflate_level=6,
        sample_rate=0,
        auth_required=True,
        output_buffer_size=16384,
        output_buffer_timeout=0.25,
    )


def test_identify_answer_ok_means_no_feature_negotiation() -> None:
    negotiated = parse_identify_response(Frame(FrameType.RESPONSE, b"OK"))
    assert not negotiated.feature_negotiation
    assert negotiated.max_rdy_count == 2500


@pytest.mark.parametrize(
    "frame",
    [
        Frame(FrameType.RESPONSE, b"{not json"),
        Frame(FrameType.RESPONSE, b"[1]"),
        identify_answer(max_rdy_count="many"),
        identify_answer(tls_v1=1),
        Frame(FrameType.MESSAGE, b"x" * 30),
    ],
)
def test_bad_identify_answers_fail_the_connect(frame: Frame) -> None:
    with pytest.raises(errors.ConnectError):
        parse_identify_response(frame)


def test_identify_error_frame_is_typed() -> None:
    frame = Frame(FrameType.ERROR, b"E_BAD_BODY IDENTIFY heartbeat interval (5) is invalid")
    with pytest.raises(errors.BadBodyError, match="heartbeat interval"):
        parse_identify_response(frame)


def test_auth_answer_and_refusal() -> None:
    frame = Frame(
        FrameType.RESPONSE, b'{"identity":"alice","identity_url":"u","permission_count":2}'
    )
    assert parse_auth_response(frame) == AuthIdentity("alice", "u", 2)
    with pytest.raises(errors.AuthFailedError, match="AUTH failed"):
        parse_auth_response(Frame(FrameType.ERROR, b"E_AUTH_FAILED AUTH failed"))


def test_upgrade_ok() -> None:
    expect_ok(Frame(FrameType.RESPONSE, b"OK"), "TLS")
    with pytest.raises(errors.ConnectError, match="snappy upgrade"):
        expect_ok(Frame(FrameType.RESPONSE, b"KO"), "snappy")


def test_config_checks_values_and_builds_tls_contexts(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="heartbeat_interval"):
        ClientConfig(heartbeat_interval=0.5)
    with pytest.raises(ValueError, match="msg_timeout"):
        ClientConfig(msg_timeout=-1)
    with pytest.raises(ValueError, match="less than read_timeout"):
        ClientConfig(heartbeat_interval=60, read_timeout=60)
    with pytest.raises(ValueError, match="both"):
        ClientConfig(snappy=True, deflate=True)
    with pytest.raises(ValueError, match="go together"):
        ClientConfig(tls=True, tls_cert_file="x")
    assert ClientConfig().ssl_context() is None
    context = ClientConfig(tls=True, tls_verify=False).ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    given = ssl.create_default_context()
    assert ClientConfig(tls=given).ssl_context() is given
    assert ClientConfig(tls=given).with_ssl_context().tls is given
    built = ClientConfig(tls=True, tls_verify=False).with_ssl_context()
    assert isinstance(built.tls, ssl.SSLContext)
    assert built.ssl_context() is built.tls
    assert ClientConfig(heartbeat_interval=-1).identify_body()["heartbeat_interval"] == -1

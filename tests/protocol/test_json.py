"""decode_json: untrusted JSON, with one error for anything malformed or nested too deep."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest

from trinsq.protocol import MAX_JSON_DEPTH, JsonError, decode_json
from trinsq.protocol._json import nesting_exceeds


def nested(depth: int, inner: str = "") -> str:
    """``depth`` levels: arrays and objects in turn, ``inner`` in the middle."""
    opening = "".join('{"k":' if level % 2 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    return opening + inner + closing


@pytest.mark.parametrize("depth", [1, 2, 9, 10, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH])
def test_nesting_up_to_the_limit_decodes(depth: int) -> None:
    text = nested(depth, "1")
    assert decode_json(text) == json.loads(text)
    assert decode_json(text.encode()) == json.loads(text)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, MAX_JSON_DEPTH + 9, 2000, 200_000])
def test_nesting_beyond_the_limit_is_refused(depth: int) -> None:
    with pytest.raises(JsonError, match=r"^exceeded max depth$"):
        decode_json(nested(depth, "1"))


@pytest.mark.parametrize("data", [b"[" * 100_000, b'{"a":' * 100_000, "[" * 5_000_000])
def test_unclosed_nesting_is_refused_as_too_deep(data: str | bytes) -> None:
    with pytest.raises(JsonError, match=r"^exceeded max depth$"):
        decode_json(data)


def test_the_limit_holds_however_deep_the_callers_stack() -> None:
    # Python's decoder alone fails or not depending on the stack it starts from.
    text = nested(MAX_JSON_DEPTH + 1)

    def at_depth(frames: int) -> Any:
        return decode_json(text) if frames == 0 else at_depth(frames - 1)

    for frames in (0, 50, 200):
        with pytest.raises(JsonError, match=r"^exceeded max depth$"):
            at_depth(frames)


def test_a_deep_stack_never_leaks_a_recursion_error() -> None:
    text = nested(MAX_JSON_DEPTH)

    def at_depth(frames: int) -> Any:
        return decode_json(text) if frames == 0 else at_depth(frames - 1)

    with pytest.raises(JsonError, match=r"^exceeded max depth$"):
        at_depth(sys.getrecursionlimit() - MAX_JSON_DEPTH // 2)


@pytest.mark.parametrize(
    "text",
    [
        '["' + "[" * 10_000 + '"]',
        '["' + "]" * 10_000 + '", ' + nested(MAX_JSON_DEPTH - 1) + "]",
        '["\\\\", "' + "[" * 10_000 + '"]',
        '["\\"' + "{" * 10_000 + '\\\\\\"", "\\\\"]',
        '{"' + "[" * 600 + '": "' + "}" * 600 + '"}',
    ],
    ids=["openers", "closers-before-deep", "escaped-backslash", "escaped-quotes", "key"],
)
def test_brackets_in_strings_do_not_count(text: str) -> None:
    assert decode_json(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "deeper"),
    [
        (nested(MAX_JSON_DEPTH) + "," + nested(MAX_JSON_DEPTH), False),
        ("[" + ",".join([nested(MAX_JSON_DEPTH - 1)] * 3) + "]", False),
        ("[" + ",".join([nested(MAX_JSON_DEPTH - 1)] * 3 + [nested(MAX_JSON_DEPTH)]) + "]", True),
        ("[" + "[]," * 100_000 + nested(MAX_JSON_DEPTH) + "]", True),
        ("[" * MAX_JSON_DEPTH + "[]," * 100_000 + "[]" + "]" * MAX_JSON_DEPTH, True),
        ("[" * (MAX_JSON_DEPTH - 1) + "[]," * 100_000 + "[]" + "]" * (MAX_JSON_DEPTH - 1), False),
        # the deepest point far along, past what the cheap passes take away
        ("[" + ("[" * 20 + "]" * 20 + ",") * 2000 + nested(MAX_JSON_DEPTH) + "]", True),
        ("[" + ("[" * 20 + "]" * 20 + ",") * 2000 + nested(MAX_JSON_DEPTH - 1) + "]", False),
    ],
)
def test_depth_is_the_deepest_point_anywhere(text: str, deeper: bool) -> None:
    assert nesting_exceeds(text, MAX_JSON_DEPTH) is deeper


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[1,", b'"\\', b"\xff\xfe[\x00", b"\xc3\x28", b"[1] 2", b'["\x01"]'],
)
def test_malformed_json_is_one_error_with_the_decoders_words(data: bytes) -> None:
    try:
        json.loads(data)
    except ValueError as error:
        plain = error
    else:
        pytest.fail("json.loads took it")
    with pytest.raises(JsonError) as raised:
        decode_json(data)
    assert str(raised.value) == str(plain)


def test_options_reach_the_decoder_and_their_errors_are_json_errors() -> None:
    def refuse(name: str) -> Any:
        raise ValueError(f"no {name}")

    assert decode_json(b'{"a": 1, "a": 2}', object_pairs_hook=list) == [("a", 1), ("a", 2)]
    with pytest.raises(JsonError, match=r"^no NaN$"):
        decode_json("[NaN]", parse_constant=refuse)


def test_a_bom_and_other_encodings_decode_as_json_loads_does() -> None:
    for data in (b"\xef\xbb\xbf[1]", "[1]".encode("utf-16"), "[1]".encode("utf-32-be")):
        assert decode_json(data) == json.loads(data) == [1]


def test_refusing_a_huge_nesting_is_cheap() -> None:
    data = b"[" * 5_000_000  # a whole default --max-body-size of it
    started = time.perf_counter()
    with pytest.raises(JsonError):
        decode_json(data)
    assert time.perf_counter() - started < 2.0  # about 0.03 s; generous for a busy machine

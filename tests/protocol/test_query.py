"""Query strings parsed by Go's url.ParseQuery rules (nsqd's http_api reads them so)."""

from __future__ import annotations

import pytest

from trinsq.protocol import QueryError, parse_go_query


def test_plus_is_a_space_and_an_escaped_plus_stays_a_plus() -> None:
    assert parse_go_query(b"topic=a%2Bb+c&x=%41%42") == {"topic": ["a+b c"], "x": ["AB"]}


def test_every_value_of_a_key_in_order_and_empty_parts_skipped() -> None:
    assert parse_go_query(b"a=1&&a=2&b&=3") == {"a": ["1", "2"], "b": [""], "": ["3"]}


def test_undecodable_bytes_are_kept() -> None:
    (value,) = parse_go_query(b"t=%FF")["t"]
    assert value.encode("utf-8", "surrogateescape") == b"\xff"


@pytest.mark.parametrize("raw", [b"a=%zz", b"a=%4", b"a=1;b=2", b"a%=1"])
def test_malformed_queries_are_refused(raw: bytes) -> None:
    with pytest.raises(QueryError):
        parse_go_query(raw)

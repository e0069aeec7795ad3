"""nsqd.dat and the data-path lock, against the format nsqd v1.3.0 writes (nsqd.md §5, §12)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from trinsq.broker.storage._metadata import (
    ChannelMetadata,
    DataPathLock,
    MetadataError,
    TopicMetadata,
    encode_metadata,
    read_metadata,
    write_metadata,
)

# Written by hand from the description: struct field order, compact, no channels -> null.
GOLDEN = (
    b'{"topics":[{"name":"t1","paused":false,"channels":[{"name":"c1","paused":true}]},'
    b'{"name":"t2","paused":true,"channels":null}],"version":"1.3.0"}'
)


def test_encode_matches_nsqd() -> None:
    topics = [
        TopicMetadata("t1", False, (ChannelMetadata("c1", True), ChannelMetadata("x#ephemeral"))),
        TopicMetadata("t2", True),
        TopicMetadata("gone#ephemeral"),
    ]
    assert encode_metadata(topics, "1.3.0") == GOLDEN


def test_no_topics_is_null() -> None:
    assert encode_metadata([], "1.3.0") == b'{"topics":null,"version":"1.3.0"}'


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    assert read_metadata(str(tmp_path)) is None  # fresh start
    (tmp_path / "nsqd.dat").write_bytes(GOLDEN)
    assert read_metadata(str(tmp_path)) == [
        TopicMetadata("t1", False, (ChannelMetadata("c1", True),)),
        TopicMetadata("t2", True, ()),
    ]
    write_metadata(str(tmp_path), b"{}")
    assert (tmp_path / "nsqd.dat").read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == ["nsqd.dat"]  # no temporary left behind


def test_invalid_names_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "nsqd.dat").write_bytes(
        b'{"topics":[{"name":"bad!","paused":false,"channels":null},'
        b'{"name":"ok","paused":false,"channels":[{"name":"b@d","paused":false}]}],'
        b'"version":"1.3.0"}'
    )
    with caplog.at_level(logging.WARNING, "trinsq.broker"):
        assert read_metadata(str(tmp_path)) == [TopicMetadata("ok")]
    assert "skipping creation of invalid topic bad!" in caplog.text
    assert "skipping creation of invalid channel b@d" in caplog.text


@pytest.mark.parametrize("content", [b"not json", b'{"topics":[{"name":1}]}', b"[]"])
def test_unparsable_metadata_fails_start_up(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "nsqd.dat").write_bytes(content)
    with pytest.raises(MetadataError, match=r"^failed to parse metadata in "):
        read_metadata(str(tmp_path))


def test_data_path_lock_keeps_a_second_owner_out(tmp_path: Path) -> None:
    first, second = DataPathLock(str(tmp_path)), DataPathLock(str(tmp_path))
    first.acquire()
    with pytest.raises(MetadataError) as caught:
        second.acquire()
    assert str(caught.value) == (
        f"failed to lock data-path: cannot flock directory {tmp_path} - resource temporarily "
        "unavailable (possibly in use by another instance of nsqd)"
    )
    first.release()
    second.acquire()
    second.release()


def test_lock_on_a_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(MetadataError) as caught:
        DataPathLock(str(missing)).acquire()
    assert str(caught.value) == (
        f"failed to lock data-path: cannot open directory {missing} - no such file or directory"
    )

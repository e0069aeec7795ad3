"""``nsqd.dat`` (which topics and channels exist, and which are paused) and the data-path lock.

Same file, same JSON as nsqd v1.3.0 (nsqd/nsqd.go ``Metadata``, ``PersistMetadata``), so a
data directory moves between Go nsqd and trinsq in either direction. No trio here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
from collections.abc import Callable, Collection, Iterable

from ...common._startup import StartupError, os_reason
from ...protocol import decode_json, is_ephemeral, is_valid_channel_name, is_valid_topic_name
from ..core._snapshot import ChannelMetadata, TopicMetadata

__all__ = [
    "ChannelMetadata",
    "DataPathLock",
    "MetadataError",
    "MetadataFile",
    "TopicMetadata",
    "decode_metadata",
    "encode_metadata",
    "metadata_path",
    "read_metadata",
    "write_initial_metadata",
    "write_metadata",
]

log = logging.getLogger("trinsq.broker")


class MetadataError(StartupError):
    """nsqd.dat cannot be read or written, or the data path cannot be locked (start-up
    fails)."""


def metadata_path(data_path: str) -> str:
    return os.path.join(data_path, "nsqd.dat")


def _topic_json(topic: TopicMetadata) -> bytes:
    """One topic's entry in nsqd.dat: ephemeral channels left out, no channels as ``null``."""
    channels = [
        {"name": channel.name, "paused": channel.paused}
        for channel in topic.channels
        if not is_ephemeral(channel.name)
    ]
    entry = {"name": topic.name, "paused": topic.paused, "channels": channels or None}
    return json.dumps(entry, separators=(",", ":")).encode()


def _document(entries: Collection[bytes], version: str) -> bytes:
    # What json.dumps of {"topics": [...] or None, "version": ...} gives, from encoded entries.
    topics = b"[" + b",".join(entries) + b"]" if entries else b"null"
    return b'{"topics":' + topics + b',"version":' + json.dumps(version).encode() + b"}"


def encode_metadata(topics: Iterable[TopicMetadata], version: str) -> bytes:
    """nsqd's JSON: ephemeral topics and channels left out, an empty list as ``null``."""
    return _document([_topic_json(t) for t in topics if not is_ephemeral(t.name)], version)


class MetadataFile:
    """nsqd.dat's contents, kept encoded a topic at a time.

    A change re-encodes only the topics it touched, so rewriting the file costs a join of
    cached entries rather than a walk over every channel of the graph (which, at thousands
    of channels, took milliseconds of the event loop per created channel).
    """

    def __init__(self, version: str) -> None:
        self.version = version
        self._entries: dict[str, bytes] = {}  # by topic name, in the graph's order
        self._changed: dict[str, None] = {}  # topics to re-encode (an ordered set)

    @property
    def pending(self) -> bool:
        """Whether a topic changed since the last :meth:`encode`."""
        return bool(self._changed)

    def topic_changed(self, name: str) -> None:
        """The topic was created, deleted, paused or unpaused, or its channels changed."""
        if not is_ephemeral(name):
            self._changed[name] = None

    def encode(self, describe: Callable[[str], TopicMetadata | None]) -> bytes:
        """The whole file as it should read now.

        Args:
            describe: a topic's current metadata by name; None once it no longer exists.
        """
        changed, self._changed = self._changed, {}
        for name in changed:
            topic = describe(name)
            if topic is None:
                self._entries.pop(name, None)
            else:
                self._entries[name] = _topic_json(topic)
        return _document(self._entries.values(), self.version)


def _typed(value: object, kind: type[str] | type[bool]) -> object:
    """A JSON value for a Go struct field: null leaves the zero value, a wrong type fails."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {value!r}")
    return value


def decode_metadata(data: bytes, source: str) -> list[TopicMetadata]:
    """Parse nsqd.dat; invalid topic or channel names are skipped with a warning, as nsqd does.

    Raises:
        MetadataError: the file is not the JSON nsqd writes.
    """
    try:
        document = decode_json(data)
        topics = document.get("topics") or []
        result: list[TopicMetadata] = []
        for topic in topics:
            name = str(_typed(topic.get("name"), str))
            if not is_valid_topic_name(name):
                log.warning("skipping creation of invalid topic %s", name)
                continue
            channels: list[ChannelMetadata] = []
            for channel in topic.get("channels") or []:
                channel_name = str(_typed(channel.get("name"), str))
                if not is_valid_channel_name(channel_name):
                    log.warning("skipping creation of invalid channel %s", channel_name)
                    continue
                channels.append(
                    ChannelMetadata(channel_name, bool(_typed(channel.get("paused"), bool)))
                )
            result.append(
                TopicMetadata(name, bool(_typed(topic.get("paused"), bool)), tuple(channels))
            )
    except (ValueError, TypeError, AttributeError) as error:
        raise MetadataError(f"failed to parse metadata in {source} - {error}") from None
    return result


def read_metadata(data_path: str) -> list[TopicMetadata] | None:
    """Return the topics recorded in ``data_path``, or None on a fresh start (no nsqd.dat)."""
    path = metadata_path(data_path)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise MetadataError(f"failed to read metadata {path} - {os_reason(error)}") from error
    return decode_metadata(data, path)


def write_metadata(data_path: str, data: bytes) -> None:
    """Replace nsqd.dat atomically: write a temporary file, fsync it, rename it into place.

    Blocking (it fsyncs): run it off the event loop except at shutdown.
    """
    path = metadata_path(data_path)
    temporary = f"{path}.{random.getrandbits(63)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.write(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except OSError:
        # Not left behind for every failed attempt (a full disk retries on each change).
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_initial_metadata(data_path: str, data: bytes) -> None:
    """Rewrite nsqd.dat at start-up, as nsqd does, which shows the data path is writable.

    Raises:
        MetadataError: it cannot be written (e.g. "permission denied").
    """
    try:
        write_metadata(data_path, data)
    except OSError as error:
        path = metadata_path(data_path)
        raise MetadataError(
            f"failed to write metadata {path} - {os_reason(error)}", error.errno
        ) from error


class DataPathLock:
    """An exclusive flock on the data directory itself, as nsqd's dirlock takes it, so Go nsqd
    and trinsq also keep each other off the same directory."""

    def __init__(self, data_path: str) -> None:
        self.data_path = data_path
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Raises:
        MetadataError: with nsqd's message when another process holds the directory."""
        try:
            descriptor = os.open(self.data_path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as error:
            raise MetadataError(
                f"failed to lock data-path: cannot open directory {self.data_path} - "
                f"{os_reason(error)}",
                error.errno,
            ) from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            raise MetadataError(
                f"failed to lock data-path: cannot flock directory {self.data_path} - "
                f"{os_reason(error)} (possibly in use by another instance of nsqd)",
                error.errno,
            ) from error
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
            os.close(self._descriptor)
            self._descriptor = None

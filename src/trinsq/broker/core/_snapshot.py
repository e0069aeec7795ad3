"""The graph as nsqd.dat records it: topics and channels with their paused flags."""

from __future__ import annotations

import attrs

__all__ = ["ChannelMetadata", "TopicMetadata"]


@attrs.frozen
class ChannelMetadata:
    name: str
    paused: bool = False


@attrs.frozen
class TopicMetadata:
    name: str
    paused: bool = False
    channels: tuple[ChannelMetadata, ...] = ()

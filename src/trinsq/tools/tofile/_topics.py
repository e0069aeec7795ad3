"""Which topics ``trinsq to-file`` logs (nsq_to_file v1.3.0's topic_discoverer.go), sans-IO:
the ``--topic-pattern`` filter and the topic list read from the registries' ``/topics``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Final

__all__ = ["TOPICS_TARGET", "TopicListError", "is_topic_allowed", "lookupd_topics"]

TOPICS_TARGET: Final = "/topics"


class TopicListError(Exception):
    """Some registry did not answer; nsq_to_file then keeps its topics until the next refresh."""


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def is_topic_allowed(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches ``--topic-pattern`` anywhere in it (Go's
    ``regexp.MatchString``); no pattern allows every topic, an invalid one none."""
    if not pattern:
        return True
    compiled = _compiled(pattern)
    return compiled is not None and compiled.search(topic) is not None


def lookupd_topics(answers: Sequence[object]) -> list[str]:
    """Every topic the registries know, sorted and each once, from their ``/topics``
    documents; an answer that is an exception is a registry that failed.

    Raises:
        TopicListError: any registry failed (nsq's clusterinfo reports even a partial failure,
            and nsq_to_file then skips the refresh).
    """
    topics: set[str] = set()
    errors: list[str] = []
    for answer in answers:
        if isinstance(answer, BaseException):
            errors.append(str(answer))
            continue
        listed = answer.get("topics") if isinstance(answer, Mapping) else None
        if not isinstance(listed, list) or not all(isinstance(t, str) for t in listed):
            errors.append(f"unexpected /topics answer: {answer!r:.200}")
            continue
        topics.update(listed)
    if errors:
        prefix = "Failed to query any nsqlookupd: " if len(errors) == len(answers) else ""
        raise TopicListError(prefix + "\n".join(errors))
    return sorted(topics)

"""nsq_to_file's topic selection: --topic-pattern (Go's unanchored MatchString) and the
registries' /topics answers, partial failures included."""

from __future__ import annotations

import pytest

from trinsq.tools.tofile._topics import TopicListError, is_topic_allowed, lookupd_topics


def test_pattern_matches_anywhere_and_an_invalid_one_matches_nothing() -> None:
    assert is_topic_allowed("", "anything")
    assert is_topic_allowed("lick", "clicks")  # unanchored, as regexp.MatchString
    assert not is_topic_allowed("^lick", "clicks")
    assert not is_topic_allowed("(", "(")


def test_topics_of_every_registry_sorted_once() -> None:
    answers = [{"topics": ["b", "a"]}, {"topics": ["c", "a"]}]
    assert lookupd_topics(answers) == ["a", "b", "c"]


def test_any_failure_skips_the_refresh() -> None:
    with pytest.raises(TopicListError, match=r"^boom$"):
        lookupd_topics([{"topics": ["a"]}, OSError("boom")])
    with pytest.raises(TopicListError, match=r"^Failed to query any nsqlookupd: "):
        lookupd_topics([{"topics": "not a list"}])

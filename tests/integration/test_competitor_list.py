"""The learned competitor domains on DynamoDB: versioned beside the rules, learned once, bounded, removable,
and a change that loses a race to another reads again instead of dropping either."""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.adapters.competitor_list import LEARNED_KEY, StoredCompetitorList
from chalicelib.adapters.dynamo import ContentStore, Tables
from chalicelib.domain.competitors import LearnedCompetitor


def entry(domain: str, at: datetime) -> LearnedCompetitor:
    return LearnedCompetitor(domain, at, "L1", "rep@us.example")


def test_domains_are_learned_once_in_versions_and_forgotten(tables: Tables, now: datetime) -> None:
    content = ContentStore(tables)
    competitors = StoredCompetitorList(content)
    assert competitors.entries() == []

    assert competitors.learn(entry("rival.example", now)) == "learned"
    assert competitors.learn(entry("rival.example", now + timedelta(hours=1))) == "known"
    assert competitors.learn(entry("other.example", now)) == "learned"
    assert [e.domain for e in competitors.entries()] == ["rival.example", "other.example"]
    assert competitors.entries()[0] == entry("rival.example", now)
    assert [v.version for v in content.versions(LEARNED_KEY)] == [2, 1]  # "known" wrote nothing

    assert competitors.forget("rival.example", actor="marketer", at=now) is True
    assert competitors.forget("rival.example", actor="marketer", at=now) is False
    assert [e.domain for e in competitors.entries()] == ["other.example"]
    assert content.latest(LEARNED_KEY).author == "marketer"  # type: ignore[union-attr]


def test_a_change_that_loses_a_race_reads_again(tables: Tables, now: datetime) -> None:
    content = ContentStore(tables)
    competitors = StoredCompetitorList(content)
    other = StoredCompetitorList(content)
    original = content.latest

    def latest_then_a_rival_saves(key: str):  # type: ignore[no-untyped-def]
        found = original(key)
        content.latest = original  # type: ignore[method-assign]
        other.learn(entry("first.example", now))  # lands between this read and this write
        return found

    content.latest = latest_then_a_rival_saves  # type: ignore[method-assign]
    assert competitors.learn(entry("second.example", now)) == "learned"
    assert [e.domain for e in competitors.entries()] == ["first.example", "second.example"]

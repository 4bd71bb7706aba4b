"""Claimed touches in the pure domain: a claim counts as sent for cadence and cooldown, holds the next touch
for its lease, backs off after failures, parks after the last try, and old stored messages read as sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from chalicelib.domain.apply import apply_event
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import State
from chalicelib.domain.messaging import (
    CLAIM_LEASE,
    MAX_TRIES,
    RETRY_AFTER,
    Choice,
    NoChoice,
    choose_next_message,
    claim_touch,
    mark_sent,
    parked,
    plan_next_touch,
    record_failure,
    retry_claim,
)
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules, parse_rules
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))


def meta(name: str, cooldown_days: int = 30) -> TemplateMeta:
    return TemplateMeta(
        name=name, subject="s", topics=(), stages=(), personas=(), cooldown_days=cooldown_days
    )


def nurtured(rules: Rules) -> Prospect:
    p = Prospect(lead_id="L1", created_at=NOW)
    identify = Event(
        message_id="m1", kind=EventKind.IDENTIFY, at=NOW, source="test", anonymous_id="a", email="a@b.example"
    )
    apply_event(p, identify, rules)
    reassess(p, rules, NOW)
    assert p.state is State.NURTURING
    return p


def test_a_claimed_message_counts_as_sent_for_cooldown_and_cadence(rules: Rules) -> None:
    p = nurtured(rules)
    claim = claim_touch(p, "L1-1", meta("roi"), "why", NOW)
    assert plan_next_touch(p, rules, NOW) == NOW + CLAIM_LEASE  # held for the lease, nobody else sends it
    assert isinstance(choose_next_message(p, [meta("roi")], rules, NOW), NoChoice)

    claim.at -= timedelta(days=2)  # an old claim, as if its sweep died: cadence counts it like a sent one
    retry_claim(claim, NOW)
    mark_sent(claim, 1, NOW)
    later = NOW + timedelta(days=rules.cadence.min_days_between + 1)
    choice = choose_next_message(p, [meta("roi"), meta("tour")], rules, later)
    assert isinstance(choice, Choice) and choice.template.name == "tour"  # roi cools down


def test_failures_back_off_then_park_until_the_lifecycle_moves_on(rules: Rules) -> None:
    p = nurtured(rules)
    claim = claim_touch(p, "L1-1", meta("roi"), "why", NOW)
    at = NOW
    for n in range(1, MAX_TRIES):
        assert record_failure(p, claim, "the mailer failed (StorageUnavailable)", at) is False
        assert plan_next_touch(p, rules, at) == at + RETRY_AFTER[n - 1]
        at += RETRY_AFTER[n - 1]
        retry_claim(claim, at)
    assert record_failure(p, claim, "the mailer failed (StorageUnavailable)", at) is True
    assert parked(p) is claim and plan_next_touch(p, rules, at) is None
    refused = choose_next_message(p, [meta("tour")], rules, at + timedelta(days=30))
    assert isinstance(refused, NoChoice) and "parked" in refused.why
    assert p.key_moments[-1].kind == "nurture_parked"
    assert len(p.messages) == 1


def test_stored_messages_from_before_claims_read_as_sent_and_claims_survive_storage(rules: Rules) -> None:
    p = nurtured(rules)
    claim = claim_touch(p, "L1-1", meta("roi"), "why", NOW)
    record_failure(p, claim, "the template did not render (roi: invalid)", NOW)
    again = prospect_from_doc(prospect_to_doc(p))
    assert again.messages == p.messages

    old = prospect_to_doc(p)
    old["msgs"] = [{"id": "s1", "tpl": "roi", "v": 1, "at": NOW.isoformat(), "why": "w", "out": {}}]
    [message] = prospect_from_doc(old).messages
    assert (message.status, message.tries, message.error) == ("sent", 1, None)

"""Competitor domains learned from sales: a rep's "competitor" disqualification teaches the rules the
company's domain, so colleagues stop reaching sales on score; mailboxes that name no company teach nothing;
a redelivered write learns once; marketing removes a domain learned by mistake."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from chalicelib.adapters.competitor_list import InMemoryCompetitorList
from chalicelib.commands import parse_command
from chalicelib.domain.competitors import (
    learnable_domain,
    learning_rule,
    says_competitor,
    with_learned_competitors,
)
from chalicelib.domain.rules import RulesError, parse_rules
from chalicelib.effects.outbox import LearnCompetitor, decode, encode
from chalicelib.errors import MalformedInput, NotFound
from chalicelib.ingest import crm
from chalicelib.usecases.competitors import CompetitorService
from chalicelib.wiring import load_default_rules
from tests.unit.test_lead_service import Store, event, hand_raise

RULES = load_default_rules()
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class LearningStore(Store):
    """The lead service of test_lead_service, its rules read with what sales taught them (as wiring does)."""

    def __init__(self) -> None:
        super().__init__()
        self.competitors = InMemoryCompetitorList()
        self.dispatcher.competitors = self.competitors
        self.dispatcher.rules = self.rules_now
        self.leads._rules = self.rules_now

    def rules_now(self):  # type: ignore[no-untyped-def]
        return with_learned_competitors(RULES, {e.domain for e in self.competitors.entries()})


def fit_lines(store: Store, email: str) -> dict[str, float]:
    breakdown = store.leads.summary(email)["scores"]["breakdown"]
    return {line["rule"]: line["points"] for line in breakdown if line["kind"] == "fit"}


@pytest.mark.parametrize(
    ("reason", "flag", "says"),
    [
        ("competitor", None, True),
        ("Competitor: fishing for our pricing", None, True),
        ("job seeker", True, True),
        ("Competitor's reseller, a customer", False, False),  # the rep's explicit flag wins
        ("not a competitor, a student", None, False),
        ("student", None, False),
    ],
)
def test_a_disqualification_says_competitor_by_its_flag_or_its_first_word(
    reason: str, flag: bool | None, says: bool
) -> None:
    assert says_competitor(reason, flag) is says


@pytest.mark.parametrize(
    ("email", "learned"),
    [
        ("ana@rival.example", "rival.example"),
        ("Ana@Intel.Rival.Example", "intel.rival.example"),
        ("ana@gmail.com", None),  # the rules' free-mailbox rule matches it
        ("ana@gmx.de", None),  # a consumer provider the rules do not list
        ("ana@cs.uni.edu", None),  # a student mailbox
        ("not an address", None),
        ("ana@localhost", None),
    ],
)
def test_only_a_company_domain_is_learned(email: str, learned: str | None) -> None:
    assert learnable_domain(email, RULES) == learned


def test_rules_without_a_learning_rule_learn_nothing_and_one_rule_at_most_may_learn() -> None:
    document = RULES.model_dump(mode="json")
    for rule in document["fit"]:
        rule.pop("learned_from_sales", None)
    plain = parse_rules(document)
    assert learning_rule(plain) is None and learnable_domain("ana@rival.example", plain) is None
    learning = {"trait": "email", "domains": [], "learned_from_sales": True, "points": -1}
    document["fit"][0], document["fit"][1] = {"id": "a", **learning}, {"id": "b", **learning}
    with pytest.raises(RulesError, match="one fit rule at most"):
        parse_rules(document)
    with pytest.raises(RulesError, match="learned_from_sales"):
        parse_rules({**document, "fit": [{"id": "c", "trait": "email", "matches": "x", "points": 1,
                                           "learned_from_sales": True}]})  # fmt: skip


def test_learned_domains_extend_the_rule_in_a_new_document_and_a_subdomain_counts() -> None:
    learned = with_learned_competitors(RULES, {"rival.example"})
    assert learned is not RULES and learned.version == RULES.version
    assert learning_rule(learned).domains == ("rival.example",)  # type: ignore[union-attr]
    assert learning_rule(RULES).domains == ()  # type: ignore[union-attr]
    assert learnable_domain("bo@eu.rival.example", learned) is None  # known already, under the learned one
    assert with_learned_competitors(RULES, set()) is RULES


def test_a_competitor_disqualification_stops_colleagues_on_fit_once_and_marketing_can_undo_it() -> None:
    store = LearningStore()
    store.leads.apply_events(hand_raise("ana@rival.example"))  # a demo request for intel: routed
    assert "competitor_domain" not in fit_lines(store, "ana@rival.example")

    store.leads.command("ana@rival.example", "disqualify", {"reason": "competitor"}, "rep@us.example")

    assert [e.domain for e in store.competitors.entries()] == ["rival.example"]
    entry = store.competitors.entries()[0]
    assert entry.actor == "rep@us.example" and entry.lead_id == store.leads.find("ana@rival.example").lead_id
    store.leads.apply_events([event(1, "bo@rival.example"), event(1, "cy@other.example")])
    assert fit_lines(store, "bo@rival.example")["competitor_domain"] == -100
    assert "competitor_domain" not in fit_lines(store, "cy@other.example")

    # The stream hands the disqualification over again: learned once, one feed entry.
    store.replay_stream()
    assert len(store.competitors.entries()) == 1
    feed = Counter(e.kind for e in store.activity.for_lead(entry.lead_id))
    assert feed["competitor_learned"] == 1

    service = CompetitorService(competitors=store.competitors, clock=lambda: NOW)
    assert service.list()["competitors"][0]["domain"] == "rival.example"
    assert service.forget("Rival.Example", "marketer") == {"removed": "rival.example"}
    assert "competitor_domain" not in fit_lines(store, "bo@rival.example")
    with pytest.raises(NotFound):
        service.forget("rival.example", "marketer")
    with pytest.raises(MalformedInput):
        service.forget("not a domain", "marketer")


def test_a_competitor_writing_from_a_free_mailbox_teaches_nothing() -> None:
    store = LearningStore()
    store.leads.apply_events(hand_raise("ana@gmail.com"))
    store.leads.command("ana@gmail.com", "disqualify", {"reason": "Competitor"}, "rep@us.example")
    assert store.competitors.entries() == []


def test_other_disqualifications_teach_nothing_and_the_flag_is_a_boolean() -> None:
    store = LearningStore()
    store.leads.apply_events(hand_raise("ana@school.example"))
    store.leads.command("ana@school.example", "disqualify", {"reason": "student"}, "rep@us.example")
    assert store.competitors.entries() == []
    assert parse_command("disqualify", {"reason": "intel", "competitor": True}).properties()["competitor"]
    with pytest.raises(MalformedInput, match="competitor"):
        parse_command("disqualify", {"reason": "intel", "competitor": "yes"})


def test_the_learning_effect_survives_the_outbox() -> None:
    effect = LearnCompetitor(NOW, "rival.example", "rep@us.example")
    assert decode(encode([effect])) == [effect]


def test_a_full_list_learns_nothing_more_and_says_so() -> None:
    from chalicelib.domain.competitors import MAX_LEARNED_COMPETITORS, LearnedCompetitor

    competitors = InMemoryCompetitorList()
    for n in range(MAX_LEARNED_COMPETITORS):
        assert competitors.learn(LearnedCompetitor(f"r{n}.example", NOW, "L1", "rep")) == "learned"
    assert competitors.learn(LearnedCompetitor("one-more.example", NOW, "L1", "rep")) == "full"
    assert competitors.learn(LearnedCompetitor("r0.example", NOW, "L1", "rep")) == "known"
    assert len(competitors.entries()) == MAX_LEARNED_COMPETITORS


def test_a_crm_disqualification_whose_reason_says_competitor_teaches_too() -> None:
    store = LearningStore()
    store.leads.apply_events(hand_raise("ana@rival.example"))
    reason = "Competitor - fishing for our pricing"
    event = {"id": "crm-1", "lead": "ana@rival.example", "action": "disqualify", "actor": "rep-in-crm"}
    body = {"events": [{**event, "reason": reason}]}
    store.leads.apply_events(crm.parse(json.dumps(body).encode(), received_at=NOW))
    assert [(e.domain, e.actor) for e in store.competitors.entries()] == [("rival.example", "rep-in-crm")]

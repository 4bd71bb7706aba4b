"""The pure domain: the lifecycle table, scoring with breakdown and decay, event folding, message choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
import yaml

from chalicelib.domain.apply import apply_event
from chalicelib.domain.catalogue import Stage, TemplateMeta
from chalicelib.domain.decisions import NotifySales
from chalicelib.domain.events import Event, EventKind, event_from_wire, event_to_wire
from chalicelib.domain.lifecycle import TRANSITIONS, IllegalTransition, State, Trigger, next_state
from chalicelib.domain.messaging import Choice, NoChoice, choose_next_message
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules, RulesError, parse_rules
from chalicelib.domain.scoring import score
from chalicelib.domain.sending import claim_touch, mark_sent
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

EXPECTED = {
    (State.ANONYMOUS, Trigger.IDENTIFIED): State.NURTURING,
    (State.NURTURING, Trigger.QUALIFIED): State.SALES_READY,
    (State.NURTURING, Trigger.HAND_RAISE): State.SALES_READY,
    (State.SALES_READY, Trigger.ACCEPT): State.ACCEPTED,
    (State.SALES_READY, Trigger.SLA_EXPIRED): State.NURTURING,
    (State.SALES_READY, Trigger.RECYCLE): State.NURTURING,
    (State.ACCEPTED, Trigger.RECYCLE): State.NURTURING,
    (State.OPPORTUNITY, Trigger.RECYCLE): State.NURTURING,
    (State.NURTURING, Trigger.DISQUALIFY): State.DISQUALIFIED,
    (State.SALES_READY, Trigger.DISQUALIFY): State.DISQUALIFIED,
    (State.ACCEPTED, Trigger.DISQUALIFY): State.DISQUALIFIED,
    (State.ACCEPTED, Trigger.OPPORTUNITY): State.OPPORTUNITY,
    (State.OPPORTUNITY, Trigger.WON): State.WON,
    (State.OPPORTUNITY, Trigger.LOST): State.LOST,
    (State.LOST, Trigger.REOPEN): State.NURTURING,
}


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))


@pytest.mark.parametrize(("state", "trigger"), list(product(State, Trigger)))
def test_every_transition_is_allowed_or_refused_as_designed(state: State, trigger: Trigger) -> None:
    if (state, trigger) in EXPECTED:
        assert next_state(state, trigger) is EXPECTED[state, trigger]
    else:
        with pytest.raises(IllegalTransition) as refused:
            next_state(state, trigger)
        assert refused.value.state is state and refused.value.trigger is trigger
        assert set(refused.value.allowed) == {t for (s, t) in EXPECTED if s is state}
        assert state.value in str(refused.value)


def test_the_table_is_exactly_the_design() -> None:
    assert TRANSITIONS == EXPECTED


def event(kind: EventKind, n: int, at: datetime = NOW, **fields: object) -> Event:
    return Event(message_id=f"m{n}", kind=kind, at=at, source="test", anonymous_id="a1", **fields)  # type: ignore[arg-type]


def page(n: int, path: str, at: datetime = NOW) -> Event:
    return event(EventKind.PAGE, n, at, properties={"path": path, "title": path})


def identify(n: int, **traits: object) -> Event:
    return event(EventKind.IDENTIFY, n, email="ada@bigco.example", traits=traits)


def test_scores_carry_a_breakdown_by_rule_with_caps(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    for n in range(5):
        apply_event(p, page(n, "/pricing"), rules)
    # Every question answered (industry and country outside the targets earn nothing): no unanswered line.
    traits = {"title": "VP Sales", "company": "BigCo", "company_size": 300}
    apply_event(p, identify(9, **traits, industry="mining", country="BR"), rules)
    s = score(p, rules, NOW)
    lines = {line.rule: line.points for line in s.breakdown}
    assert lines["pricing_page"] == 24  # 5 × 8 capped at 24
    assert lines["page_view"] == 5
    assert lines["title_executive"] == 25 and lines["company_size_target"] == 20
    assert s.fit == sum(
        v for k, v in lines.items() if k in ("title_executive", "company_size_target", "has_company")
    )
    assert s.engagement == 29


def test_engagement_decays_with_the_half_life_at_read_time(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, page(1, "/docs/intro"), rules)
    fresh = score(p, rules, NOW).engagement
    later = score(p, rules, NOW + timedelta(days=rules.engagement_half_life_days)).engagement
    assert fresh == 4 and later == 2


def test_a_duplicate_event_changes_nothing(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    assert apply_event(p, page(1, "/pricing"), rules) is not None
    assert apply_event(p, page(1, "/pricing"), rules) is None
    assert score(p, rules, NOW).engagement == 9


def test_hand_raise_routes_at_once_and_names_itself(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, identify(1), rules)
    apply_event(p, event(EventKind.TRACK, 2, name="Demo Requested"), rules)
    _, effects = reassess(p, rules, NOW)
    assert p.state is State.SALES_READY
    assert NotifySales(why="hand-raise: Demo Requested") in effects


def test_qualification_needs_both_fit_and_engagement(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, identify(1, title="CEO", company="BigCo", company_size=300), rules)
    for n, days_ago in ((30, 20), (31, 19)):  # seen on two earlier days: the history routing asks for
        apply_event(p, page(n, "/blog", NOW - timedelta(days=days_ago)), rules)
    for n in range(2, 8):  # on two days: a return to pricing is the recent intent routing also asks for
        apply_event(p, page(n, "/pricing", NOW - timedelta(days=1) if n == 2 else NOW), rules)
    reassess(p, rules, NOW)
    assert p.state is State.NURTURING  # fit 50, engagement 30 < 35
    apply_event(p, page(20, "/docs/api"), rules)
    apply_event(p, page(21, "/docs/sdk"), rules)
    apply_event(p, page(22, "/security"), rules)  # a week past price alone: recent_points
    apply_event(p, page(23, "/customers"), rules)
    reassess(p, rules, NOW)
    assert p.state is State.SALES_READY
    assert p.history[-1].reason.startswith("qualified: fit")


def test_hard_bounce_suppresses_and_stops_nurture(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, identify(1), rules)
    apply_event(p, event(EventKind.EMAIL, 2, name="bounced", properties={"bounce": "hard"}), rules)
    reassess(p, rules, NOW)
    assert p.suppression is not None and p.suppression.reason == "hard_bounce"
    assert p.next_touch_at is None
    assert isinstance(choose_next_message(p, [meta("any", ("pricing",))], rules, NOW), NoChoice)


def test_machine_opens_earn_nothing(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, event(EventKind.EMAIL, 1, name="opened", properties={"machine_open": True}), rules)
    assert score(p, rules, NOW).engagement == 0


def meta(name: str, topics: tuple[str, ...], **kw: object) -> TemplateMeta:
    return TemplateMeta(name=name, subject="s", topics=topics, stages=(), personas=(), **kw)  # type: ignore[arg-type]


def test_the_chooser_prefers_the_prospects_interests_and_explains_why(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, identify(1), rules)
    for n in range(2, 5):
        apply_event(p, page(n, "/security/soc2"), rules)
    apply_event(p, page(9, "/integrations"), rules)
    catalogue = [
        meta("pricing", ("pricing",)),
        meta("security", ("security",)),
        meta("api", ("integrations",)),
    ]
    choice = choose_next_message(p, catalogue, rules, NOW)
    assert isinstance(choice, Choice) and choice.template.name == "security"
    assert "security" in choice.why
    assert choose_next_message(p, list(reversed(catalogue)), rules, NOW) == choice  # deterministic


def test_the_chooser_honours_cooldown_and_the_recycle_reason(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, identify(1), rules)
    apply_event(p, event(EventKind.TRACK, 2, name="Demo Requested"), rules)
    reassess(p, rules, NOW)
    recycle = event(EventKind.SALES, 3, name="recycle", properties={"reason": "no_budget", "actor": "rep"})
    apply_event(p, recycle, rules)
    catalogue = [
        meta("tour", ("onboarding",), priority=5),
        meta("roi", ("roi",), recycle_reasons=("no_budget",)),
    ]
    choice = choose_next_message(p, catalogue, rules, NOW)
    assert isinstance(choice, Choice) and choice.template.name == "roi" and "no_budget" in choice.why
    mark_sent(claim_touch(p, "s1", choice.template, choice.why, NOW), 1, NOW)  # as nurture sends it
    later = choose_next_message(p, catalogue, rules, NOW + timedelta(days=5))
    assert isinstance(later, Choice) and later.template.name == "tour"  # roi is cooling down


def test_profiles_and_events_survive_their_storage_form(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, identify(1, title="CTO"), rules)
    apply_event(p, page(2, "/pricing"), rules)
    reassess(p, rules, NOW)
    assert prospect_to_doc(prospect_from_doc(prospect_to_doc(p))) == prospect_to_doc(p)
    e = page(5, "/x")
    assert event_from_wire(event_to_wire(e)) == e


def test_rules_errors_name_the_field() -> None:
    document = yaml.safe_load(DEFAULT_RULES.read_text())
    document["thresholds"]["fit"] = -1
    document["fit"][0]["matches"] = "(unclosed"
    with pytest.raises(RulesError) as refused:
        parse_rules(document)
    fields = {problem["field"] for problem in refused.value.problems}
    assert "thresholds.fit" in fields and "fit.0.matches" in fields
    assert Stage.REENGAGEMENT.value == "reengagement"

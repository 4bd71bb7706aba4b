"""Who owns a routed lead (CRM owner, territory, round robin), reassignment, and the SLA signals that
escalate to the team lead: the pure domain, a fixed clock, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.domain.apply import apply_event
from chalicelib.domain.assignment import choose_owner, team_for, team_lead
from chalicelib.domain.decisions import (
    Assigned,
    InvalidCommand,
    NotAssignable,
    Noted,
    NotifySales,
    ResolveSla,
    StartSla,
)
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules, RulesError, parse_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES_FILE = Path(__file__).resolve().parents[2] / "chalicelib" / "default_rules.yaml"


def rules_doc() -> dict[str, Any]:
    return dict(yaml.safe_load(RULES_FILE.read_text()))


@pytest.fixture
def rules() -> Rules:
    return parse_rules(rules_doc())


def prospect(**traits: Any) -> Prospect:
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=1), source="web", email="ada@bigco.example")
    p.state = State.NURTURING
    p.traits.update(traits)
    return p


def event(name: str, kind: EventKind = EventKind.SALES, at: datetime = NOW, **props: Any) -> Event:
    return Event(
        message_id=f"{name}-{props}-{at}",
        kind=kind,
        at=at,
        source="test",
        name=name,
        lead_id="L1",
        properties=props,
    )


def hand_raised(p: Prospect, rules: Rules, turns: dict[str, int] | None = None) -> list[Any]:
    p.pending_hand_raise = "Demo Requested"
    _, effects = reassess(p, rules, NOW, lambda team: (turns or {}).get(team, 0))
    return effects


@pytest.mark.parametrize(
    ("traits", "team"),
    [
        ({"company_size": 5000, "country": "US"}, "enterprise"),  # size wins: the first territory
        ({"company_size": 1000}, "enterprise"),  # edges are inclusive
        ({"company_size": 999, "country": "de"}, "emea"),  # country codes in any case
        ({"country": "CA"}, "americas"),
        ({"country": "JP"}, "americas"),  # no territory: the default team
        ({"company_size": "2,500"}, "enterprise"),  # sizes as forms send them
        ({}, "americas"),
    ],
)
def test_territory_by_company_size_then_country_else_default(
    rules: Rules, traits: dict[str, Any], team: str
) -> None:
    assert rules.assignment is not None
    assert team_for(prospect(**traits), rules.assignment)[0] == team


def test_round_robin_takes_turns_within_the_team(rules: Rules) -> None:
    assert rules.assignment is not None
    owners = [
        choose_owner(prospect(country="GB"), rules.assignment, lambda team, n=n: n).owner for n in range(5)
    ]
    assert owners == [
        "pierre@example.com",
        "greta@example.com",
        "pierre@example.com",
        "greta@example.com",
        "pierre@example.com",
    ]


def test_an_owner_known_from_the_crm_wins(rules: Rules) -> None:
    p = prospect(country="GB", company_size=20000)
    apply_event(p, event("", EventKind.CRM, owner="olga@example.com", actor="hubspot"), rules)
    effects = hand_raised(p, rules)
    assert p.owner == "olga@example.com"
    assigned = next(e for e in effects if isinstance(e, Assigned))
    assert assigned.team is None and "CRM" in assigned.why


def test_hubspot_owner_property_counts_as_the_crm_owner(rules: Rules) -> None:
    p = prospect()
    apply_event(p, event("", EventKind.CRM, crm_property="hubspot_owner_id", crm_value="4711"), rules)
    hand_raised(p, rules)
    assert p.owner == "4711"


def test_routing_assigns_before_notifying_and_starts_the_sla(rules: Rules) -> None:
    p = prospect(country="US")
    effects = hand_raised(p, rules, {"americas": 3})
    kinds = [type(e).__name__ for e in effects]
    assert kinds.index("Assigned") < kinds.index("NotifySales")
    assert p.state is State.SALES_READY and p.owner == "maria@example.com"  # turn 3 of 2 members -> second
    start = next(e for e in effects if isinstance(e, StartSla))
    assert (start.accept_seconds, start.escalate_seconds) == (240 * 60, 240 * 60)


def test_without_assignment_rules_a_routed_lead_waits_unassigned() -> None:
    doc = rules_doc()
    del doc["assignment"]
    rules = parse_rules(doc)
    p = prospect(country="US")
    effects = hand_raised(p, rules)
    assert p.state is State.SALES_READY and p.owner is None
    assert not any(isinstance(e, Assigned) for e in effects)


def test_sla_seconds_override_minutes(rules: Rules) -> None:
    doc = rules_doc()
    doc["sla"] = {"accept_minutes": 240, "escalate_minutes": 240, "accept_seconds": 2, "escalate_seconds": 1}
    p = prospect()
    start = next(e for e in hand_raised(p, parse_rules(doc)) if isinstance(e, StartSla))
    assert (start.accept_seconds, start.escalate_seconds) == (2, 1)
    assert p.sla is not None and p.sla.due_at == NOW + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"default_team": "nobody"}, "assignment"),
        ({"territories": [{"team": "emea"}]}, "assignment.territories.0"),
        ({"teams": {"emea": {"members": []}}}, "assignment.teams.emea.members"),
    ],
)
def test_bad_assignment_rules_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    doc = rules_doc()
    doc["assignment"] = {**doc["assignment"], **change}
    with pytest.raises(RulesError) as caught:
        parse_rules(doc)
    assert any(problem["field"] == field for problem in caught.value.problems), caught.value.problems


def test_reassign_moves_the_owner_and_says_who_did_it(rules: Rules) -> None:
    p = prospect(country="US")
    hand_raised(p, rules)
    effects = apply_event(p, event("reassign", owner="zoe@example.com", actor="manager"), rules)
    assert p.owner == "zoe@example.com"
    assert effects == [
        Assigned(
            owner="zoe@example.com",
            previous="sam@example.com",
            team=None,
            why="reassigned by manager",
            actor="manager",
        )
    ]


@pytest.mark.parametrize("state", [State.NURTURING, State.WON, State.DISQUALIFIED])
def test_reassign_outside_sales_is_refused(rules: Rules, state: State) -> None:
    p = prospect()
    p.state = state
    with pytest.raises(NotAssignable):
        apply_event(p, event("reassign", owner="zoe@example.com"), rules)


def test_reassign_needs_an_owner(rules: Rules) -> None:
    p = prospect()
    hand_raised(p, rules)
    with pytest.raises(InvalidCommand):
        apply_event(p, event("reassign", owner=" "), rules)


def test_escalation_keeps_the_new_token_and_notifies_the_team_lead(rules: Rules) -> None:
    p = prospect(country="US")
    hand_raised(p, rules)
    apply_event(p, event("sla_started", task_token="first", actor="sla"), rules)
    assert p.sla is not None and p.sla.task_token == "first"

    effects = apply_event(p, event("sla_escalated", at=NOW + timedelta(hours=5), task_token="second"), rules)

    assert p.sla.task_token == "second" and p.sla.status == "escalated"
    assert team_lead(rules.assignment, p.owner) == "alex@example.com"
    notify = next(e for e in effects if isinstance(e, NotifySales))
    assert "alex@example.com" in notify.why and "sam@example.com" in notify.why
    assert any(isinstance(e, Noted) and e.kind == "sla_escalated" for e in effects)

    accepted = apply_event(p, event("accept", at=NOW + timedelta(hours=6), actor="sam@example.com"), rules)
    assert ResolveSla(task_token="second", outcome="accept") in accepted
    assert p.sla.status == "late"


def test_a_signal_for_a_lead_already_worked_releases_the_workflow(rules: Rules) -> None:
    p = prospect()
    hand_raised(p, rules)
    apply_event(p, event("accept", actor="sam@example.com"), rules)
    effects = apply_event(p, event("sla_started", task_token="late-token"), rules)
    assert effects == [ResolveSla(task_token="late-token", outcome="already_worked")]


def test_sla_expired_returns_the_lead_to_nurture_without_an_owner(rules: Rules) -> None:
    p = prospect()
    hand_raised(p, rules)
    apply_event(p, event("sla_expired", at=NOW + timedelta(hours=9), actor="sla"), rules)
    assert p.state is State.NURTURING and p.owner is None
    assert p.sla is not None and p.sla.status == "missed"


def test_an_expired_lead_is_not_routed_again_on_the_same_score(rules: Rules) -> None:
    p = prospect(country="US", title="CEO", company_size=200, industry="software")
    apply_event(p, event("Demo Requested", EventKind.TRACK), rules)  # 40 engagement points: qualified too
    reassess(p, rules, NOW)
    assert p.state is State.SALES_READY
    apply_event(p, event("sla_expired", at=NOW + timedelta(minutes=1), actor="sla"), rules)
    _, effects = reassess(p, rules, NOW + timedelta(minutes=1))
    assert p.state is State.NURTURING and effects == []

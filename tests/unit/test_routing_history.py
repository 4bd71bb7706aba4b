"""A score route asks for a history as well as this week's intent (`routing.intent.earlier_days`): a lead
first seen this week is discovering, not deciding, however much it reads; a lead that researched on earlier
days, however long ago, is routed on the same week."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from chalicelib.domain.apply import apply_event
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules, RulesError, parse_rules
from chalicelib.domain.scoring import score
from tests.unit.test_routing import DAY, NOW, document, rules

__all__ = ["rules"]  # the fixture, shared with tests/unit/test_routing.py


class Lead:
    """One prospect's events, applied through the domain, with unique ids."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.p = Prospect(lead_id="L1", created_at=NOW - 200 * DAY)
        self.n = 0

    def send(self, kind: EventKind, at: datetime, **fields: Any) -> Lead:
        self.n += 1
        event = Event(message_id=f"m{self.n}", kind=kind, at=at, source="test", anonymous_id="a1", **fields)
        apply_event(self.p, event, self.rules)
        return self

    def page(self, path: str, at: datetime) -> Lead:
        return self.send(EventKind.PAGE, at, properties={"path": path, "title": path})

    def identified(self, at: datetime) -> Lead:
        traits = {"title": "VP Analytics", "company": "BigCo", "company_size": 300, "industry": "software"}
        return self.send(EventKind.IDENTIFY, at, email="ada@bigco.example", traits=traits)

    def deciding_week(self) -> Lead:
        """What a buyer about to call sales does in one week: pricing on two days, security and integration
        pages, a webinar: fit, engagement, a confirmer and this week's pace all hold."""
        self.page("/pricing", NOW - DAY).page("/pricing", NOW).page("/pricing", NOW)
        self.page("/security", NOW).page("/integrations", NOW).page("/docs/api", NOW)
        return self.send(EventKind.TRACK, NOW, name="Webinar Attended", properties={})

    def routed(self) -> bool:
        reassess(self.p, self.rules, NOW)
        return self.p.state is State.SALES_READY


def test_a_lead_first_seen_this_week_is_not_routed_on_score(rules: Rules) -> None:
    lead = Lead(rules).identified(NOW - 2 * DAY).deciding_week()
    scores = score(lead.p, rules, NOW)
    assert scores.fit >= rules.thresholds.fit and scores.engagement >= rules.thresholds.engagement
    assert not lead.routed()  # everything read in its first week: discovery, not a buying decision


def test_a_lead_that_researched_before_this_week_is_routed_and_told_why(rules: Rules) -> None:
    lead = Lead(rules).identified(NOW - 20 * DAY).page("/blog/reporting", NOW - 20 * DAY)
    lead.page("/customers", NOW - 12 * DAY).deciding_week()
    assert lead.routed()
    assert "seen on 2 earlier days; recent intent this week" in (lead.p.history[-1].reason or "")


def test_a_lead_back_after_months_of_quiet_has_a_history(rules: Rules) -> None:
    lead = Lead(rules).identified(NOW - 150 * DAY).page("/blog/reporting", NOW - 150 * DAY)
    lead.page("/customers", NOW - 149 * DAY).deciding_week()
    assert lead.routed()  # a dormant lead that comes back with a burst is a buying signal, not a newcomer


def test_a_hand_raise_in_the_first_week_is_routed_at_once(rules: Rules) -> None:
    lead = Lead(rules).identified(NOW - DAY).page("/pricing", NOW)
    lead.send(EventKind.TRACK, NOW, name="Demo Requested", properties={})
    assert lead.routed()  # buyers decide: the history asked of a score route never holds back a hand-raise


def test_without_the_setting_a_first_week_lead_routes_as_before() -> None:
    doc = document()
    doc["routing"]["intent"].pop("earlier_days", None)
    lead = Lead(parse_rules(doc)).identified(NOW - 2 * DAY).deciding_week()
    assert lead.routed()


@pytest.mark.parametrize("value", [0, -1, 91, "some"])
def test_earlier_days_is_validated_naming_the_field(value: Any) -> None:
    doc = document()
    doc["routing"]["intent"]["earlier_days"] = value
    with pytest.raises(RulesError) as refused:
        parse_rules(doc)
    assert "routing.intent.earlier_days" in {problem["field"] for problem in refused.value.problems}

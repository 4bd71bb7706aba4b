"""Routing sales can trust (issue 12, items 3-6): interest from what was read or downloaded and ranked by
recency and repetition; negative signals, intent confirmers, role-family fit and a flagged low-fit
hand-raise; recycles that listen for a surge of new engagement; reasons in plain words beside their rule id.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from chalicelib.domain.apply import apply_event
from chalicelib.domain.decisions import NotifySales
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules, RulesError, parse_rules
from chalicelib.domain.scoring import day_of, engagement_since, fit_lines, score, top_interests
from chalicelib.domain.summary import summarize
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEFAULT_RULES.read_text())
    return loaded


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(document())


class Feed:
    """Events for one prospect with unique ids."""

    def __init__(self, rules: Rules, email: str = "ada@bigco.example") -> None:
        self.rules = rules
        self.p = Prospect(lead_id="L1", created_at=NOW - 60 * DAY)
        self.n = 0
        self.email = email

    def send(self, kind: EventKind, at: datetime = NOW, **fields: Any) -> None:
        self.n += 1
        e = Event(message_id=f"m{self.n}", kind=kind, at=at, source="test", anonymous_id="a1", **fields)
        apply_event(self.p, e, self.rules)

    def who(self, at: datetime = NOW, **traits: Any) -> Feed:
        self.send(EventKind.IDENTIFY, at, email=self.email, traits=traits)
        return self

    def page(self, path: str, at: datetime = NOW, times: int = 1) -> Feed:
        for _ in range(times):
            self.send(EventKind.PAGE, at, properties={"path": path, "title": path})
        return self

    def track(self, event_name: str, at: datetime = NOW, /, **props: Any) -> Feed:
        self.send(EventKind.TRACK, at, name=event_name, properties=props)
        return self

    def sales(self, action: str, at: datetime = NOW, **props: Any) -> Feed:
        self.send(EventKind.SALES, at, name=action, properties={"actor": "rep@example.com", **props})
        return self

    def reassess(self, at: datetime = NOW) -> list[Any]:
        return reassess(self.p, self.rules, at)[1]


def topics(feed: Feed, at: datetime = NOW) -> list[str]:
    return [topic for topic, _ in top_interests(feed.p, feed.rules, at)]


# --- item 3: interest from what was actually read or downloaded -----------------------------------------


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"topic": "Security"}, "security"),
        ({"category": "Case Studies"}, "case_studies"),
        ({"name": "The SOC 2 compliance checklist"}, "security"),
        ({"asset_url": "https://acme.example/assets/roi-calculator-guide.pdf"}, "roi"),
        ({"title": "Connecting your warehouse: the integrations guide"}, "integrations"),
    ],
)
def test_a_download_shows_interest_in_what_was_downloaded(
    rules: Rules, props: dict[str, str], expected: str
) -> None:
    feed = Feed(rules).who().track("Content Downloaded", **props)
    assert topics(feed) == [expected]  # not case studies, whatever was downloaded


def test_a_download_that_says_nothing_of_its_topic_shows_no_interest(rules: Rules) -> None:
    feed = Feed(rules).who().track("Content Downloaded")
    assert topics(feed) == []
    assert score(feed.p, rules, NOW).engagement > 0  # it still counts as engagement


def test_recent_and_repeated_interest_outranks_one_old_burst(rules: Rules) -> None:
    feed = Feed(rules).who()
    feed.page("/pricing", NOW - 20 * DAY, times=10)  # one long session three weeks ago
    for days_ago in (0, 2, 4):
        feed.page("/security/soc2", NOW - days_ago * DAY)  # back on three days this week
    assert topics(feed)[:2] == ["security", "pricing"]


def test_a_download_weighs_more_than_a_glance(rules: Rules) -> None:
    feed = Feed(rules).who().page("/pricing").track("Content Downloaded", topic="security")
    weights = dict(top_interests(feed.p, rules, NOW))
    assert weights["security"] > weights["pricing"] > 0


# --- item 4: negative signals, intent confirmers, role families, low-fit hand-raise -----------------------


def read_everything(feed: Feed, at: datetime = NOW) -> Feed:
    """A lead who would qualify on engagement and intent: pricing on two days, API docs, a webinar."""
    feed.page("/pricing", at - DAY).page("/pricing", at, times=2)
    return feed.page("/docs/api", at, times=2).track("Webinar Attended", at)


def test_a_competitor_domain_is_never_routed_on_score() -> None:
    doc = document()
    competitor = next(rule for rule in doc["fit"] if rule["id"] == "competitor_domain")
    competitor["domains"] = ["rival.example"]
    rules = parse_rules(doc)
    feed = Feed(rules, email="spy@eu.rival.example").who(
        title="VP Product", company="Rival", company_size=400
    )
    read_everything(feed).reassess()
    assert feed.p.state is State.NURTURING
    lines = {line.rule: line.points for line in fit_lines(feed.p, rules)}
    assert lines["competitor_domain"] < 0


@pytest.mark.parametrize(
    ("email", "title", "rule"),
    [
        ("ada@student.mit.edu", "MSc student", "student_mailbox"),
        ("ada@gmail.com", "Analyst", "free_mailbox"),
        ("ada@bigco.example", "Marketing intern", "title_not_a_buyer"),
    ],
)
def test_students_free_mailboxes_and_interns_lose_fit(
    rules: Rules, email: str, title: str, rule: str
) -> None:
    feed = Feed(rules, email=email).who(title=title)
    lines = {line.rule: line.points for line in fit_lines(feed.p, rules)}
    assert lines[rule] < 0


def test_reading_job_openings_counts_against_engagement(rules: Rules) -> None:
    feed = Feed(rules).who().page("/careers", times=2).page("/careers/data-engineer")
    lines = {line.rule: line.points for line in score(feed.p, rules, NOW).breakdown}
    assert lines["careers_page"] < 0
    assert score(feed.p, rules, NOW).engagement < lines["page_view"]


def strong_fit(feed: Feed, at: datetime = NOW) -> Feed:
    # Seen on two days a month before: a score route asks for a history (routing.intent.earlier_days).
    feed.page("/blog", at - 30 * DAY).page("/blog", at - 29 * DAY)
    return feed.who(at, title="VP Analytics", company="BigCo", company_size=300, industry="software")


def test_points_alone_do_not_route_without_recent_intent(rules: Rules) -> None:
    feed = strong_fit(Feed(rules))
    # Plenty of points, all from research: downloads and a webinar, no intent page, one day only.
    feed.track("Content Downloaded", topic="case studies").track("Content Downloaded", topic="reporting")
    feed.track("Content Downloaded", topic="roi").track("Webinar Attended")
    assert score(feed.p, rules, NOW).engagement >= rules.thresholds.engagement
    feed.reassess()
    assert feed.p.state is State.NURTURING
    feed.page("/pricing").reassess()
    assert feed.p.state is State.NURTURING  # one look at pricing happens all through research
    feed.page("/pricing", NOW + DAY)
    effects = feed.reassess(NOW + DAY)
    assert feed.p.state is State.SALES_READY  # back to pricing the next day: deciding now
    why = feed.p.history[-1].reason or ""
    assert why.startswith("qualified: fit")
    assert why.endswith(
        "recent intent this week: read the pricing page twice [pricing_page], on 2 different days, "
        "63 points earned this week ≥ 50"
    )
    assert NotifySales(why=why) in effects


def test_a_second_visit_this_week_to_an_intent_page_confirms_intent(rules: Rules) -> None:
    earlier = NOW - 3 * DAY
    feed = strong_fit(Feed(rules), earlier)
    feed.track("Content Downloaded", earlier, topic="reporting").track(
        "Content Downloaded", earlier, topic="roi"
    ).track("Content Downloaded", earlier, topic="pricing")
    feed.track("Webinar Attended", earlier).page("/security", earlier).reassess(earlier)
    assert feed.p.state is State.NURTURING  # enough points, one look at security: still researching
    feed.page("/blog/roi", NOW - DAY).reassess(NOW - DAY)
    assert feed.p.state is State.NURTURING  # a second visit, but not to what buyers read before a call
    feed.page("/security/soc2").reassess()
    assert feed.p.state is State.SALES_READY
    assert "read the security pages twice [security_page], on 2 different days" in (
        feed.p.history[-1].reason or ""
    )


def with_pace(points: float) -> Rules:
    doc = document()
    doc["routing"]["intent"]["recent_points"] = points
    return parse_rules(doc)


def test_a_researcher_with_old_points_waits_for_this_weeks_pace() -> None:
    rules = with_pace(25)
    month_ago = NOW - 20 * DAY
    feed = strong_fit(Feed(rules), month_ago)
    # Weeks of research: enough accumulated points (decayed, still above the threshold)...
    for n in range(3):
        feed.track("Content Downloaded", month_ago + n * DAY, topic="reporting")
        feed.track("Webinar Attended", month_ago + n * DAY)
    feed.page("/pricing", NOW - DAY).reassess(NOW - DAY)
    # ...and a second pricing visit this week: intent, but this week's pace is two page reads.
    feed.page("/pricing").reassess()
    assert score(feed.p, rules, NOW).engagement >= rules.thresholds.engagement
    assert feed.p.state is State.NURTURING
    feed.page("/security").page("/integrations").track("Content Downloaded", NOW, topic="security")
    feed.reassess()
    assert feed.p.state is State.SALES_READY  # deciding now: 40 points this week
    assert (feed.p.history[-1].reason or "").endswith("on 2 different days, 40 points earned this week ≥ 25")


def test_a_lead_must_come_back_on_enough_days_this_week() -> None:
    doc = document()
    doc["routing"]["intent"]["recent_days"] = 3
    rules = parse_rules(doc)
    feed = strong_fit(Feed(rules), NOW - DAY)
    feed.track("Content Downloaded", NOW - DAY, topic="reporting").track("Webinar Attended", NOW - DAY)
    feed.page("/pricing", NOW - DAY).page("/pricing").reassess()
    assert score(feed.p, rules, NOW).engagement >= rules.thresholds.engagement
    assert feed.p.state is State.NURTURING  # pricing on 2 days, but active on 2 days only
    feed.page("/pricing", NOW + DAY).reassess(NOW + DAY)
    assert feed.p.state is State.SALES_READY
    assert "on 3 different days, active on 3 days this week" in (feed.p.history[-1].reason or "")


def test_without_recent_points_two_pricing_visits_this_week_route_a_researcher() -> None:
    doc = document()
    doc["routing"]["intent"].pop("recent_points", None)
    rules = parse_rules(doc)
    month_ago = NOW - 20 * DAY
    feed = strong_fit(Feed(rules), month_ago)
    for n in range(3):
        feed.track("Content Downloaded", month_ago + n * DAY, topic="reporting")
        feed.track("Webinar Attended", month_ago + n * DAY)
    feed.page("/pricing", NOW - DAY).page("/pricing").reassess()
    assert feed.p.state is State.SALES_READY  # a document without the setting routes as before


def test_role_families_earn_fit_beside_seniority(rules: Rules) -> None:
    practitioner = Feed(rules).who(title="Data Engineer", company="BigCo", company_size=300)
    assert score(practitioner.p, rules, NOW).fit >= rules.thresholds.fit
    lead = Feed(rules).who(title="Director of Data Engineering")
    assert {line.rule for line in fit_lines(lead.p, rules)} >= {"title_manager", "role_practitioner"}


def test_a_senior_title_at_a_named_company_fits_though_size_and_industry_are_unknown(rules: Rules) -> None:
    # Forms and enrichment leave size or industry missing on a third of leads: that alone must not hide a
    # ready VP (25 + company 10 + served country 5).
    vp = Feed(rules).who(title="VP Marketing", company="Northwind", country="US")
    assert score(vp.p, rules, NOW).fit >= rules.thresholds.fit
    # Nothing names the company (no company, a personal mailbox; a work email's domain would name it).
    anonymous_company = Feed(rules, email="ada@gmail.com").who(title="VP Marketing", country="US")
    assert score(anonymous_company.p, rules, NOW).fit < rules.thresholds.fit  # nothing to research


def test_one_seniority_line_counts_however_many_titles_match(rules: Rules) -> None:
    feed = Feed(rules).who(title="VP and Director of Marketing")
    known = [line.rule for line in fit_lines(feed.p, rules) if line.rule not in rules.fit_unknown_ids]
    assert known == ["title_executive"]


def test_a_low_fit_hand_raise_is_routed_but_flagged(rules: Rules) -> None:
    feed = Feed(rules, email="someone@gmail.com").who().track("Demo Requested")
    effects = feed.reassess()
    assert feed.p.state is State.SALES_READY  # buyers decide: routed all the same
    why = feed.p.history[-1].reason or ""
    assert why.startswith("low-fit hand-raise: Demo Requested") and "[free_mailbox]" in why
    assert NotifySales(why=why) in effects
    summary = summarize(feed.p, rules, NOW)
    assert summary["routed_as"] == "low_fit_hand_raise" and summary["why_sales"] == why
    assert any(moment["kind"] == "low_fit_hand_raise" for moment in summary["key_moments"])


def test_a_good_fit_hand_raise_is_plain(rules: Rules) -> None:
    feed = strong_fit(Feed(rules)).track("Demo Requested")
    feed.reassess()
    summary = summarize(feed.p, rules, NOW)
    assert (summary["routed_as"], summary["why_sales"]) == ("hand_raise", "hand-raise: Demo Requested")


# --- item 5: recycles that listen ---------------------------------------------------------------------------


def routed_then_recycled(rules: Rules, reason: str) -> Feed:
    feed = strong_fit(Feed(rules), NOW - 10 * DAY)
    read_everything(feed, NOW - 10 * DAY).reassess(NOW - 10 * DAY)
    assert feed.p.state is State.SALES_READY
    feed.sales("recycle", NOW - 9 * DAY, reason=reason).reassess(NOW - 9 * DAY)
    assert feed.p.state is State.NURTURING
    return feed


def test_a_held_lead_whose_new_engagement_surges_is_re_routed_and_told_why(rules: Rules) -> None:
    feed = routed_then_recycled(rules, "not_ready")  # held for 30 days
    feed.page("/blog/one", NOW - 2 * DAY).reassess(NOW - 2 * DAY)
    assert feed.p.state is State.NURTURING  # a trickle does not end the hold
    feed.page("/pricing", NOW - DAY, times=2).page("/security", NOW - DAY).page("/pricing").track(
        "Webinar Attended"
    )
    feed.page("/integrations").page("/docs/api").reassess()
    assert feed.p.state is State.SALES_READY
    why = feed.p.history[-1].reason or ""
    assert why.startswith("surge after recycle (not_ready, 9 days ago)")
    assert summarize(feed.p, rules, NOW)["routed_as"] == "recycle_surge"


def test_a_held_lead_must_move_faster_than_the_week_the_rep_called_not_yet(rules: Rules) -> None:
    feed = routed_then_recycled(rules, "not_ready")
    routed = engagement_since(feed.p, rules, day_of(NOW - 16 * DAY), day_of(NOW - 10 * DAY), decay=False)
    # The same week again: as fast as the one the rep heard on the call, so the revisit date stands.
    read_everything(feed).reassess()
    assert engagement_since(feed.p, rules, day_of(NOW - 6 * DAY), day_of(NOW), decay=False) == routed
    assert feed.p.state is State.NURTURING
    # More than that week (security and integrations read too): a change the rep has not seen.
    feed.page("/security").page("/integrations").reassess()
    assert feed.p.state is State.SALES_READY
    why = feed.p.history[-1].reason or ""
    assert why.startswith("surge after recycle (not_ready, 9 days ago)")
    assert f"faster than the {routed:g} of the week it was routed" in why


def test_without_beat_routed_pace_the_surge_points_alone_end_a_hold() -> None:
    doc = document()
    doc["routing"]["recycle_surge"]["beat_routed_pace"] = False
    rules = parse_rules(doc)
    feed = routed_then_recycled(rules, "not_ready")
    read_everything(feed).reassess()
    assert feed.p.state is State.SALES_READY
    assert "faster than" not in (feed.p.history[-1].reason or "")


def test_a_reason_without_a_hold_needs_new_engagement_not_the_old_score(rules: Rules) -> None:
    feed = routed_then_recycled(rules, "no_budget")
    assert score(feed.p, rules, NOW - 8 * DAY).engagement >= rules.thresholds.engagement  # the old score
    feed.page("/pricing", NOW - 8 * DAY).reassess(NOW - 8 * DAY)
    assert feed.p.state is State.NURTURING  # one visit on top of the old, decaying score is not enough
    read_everything(feed).reassess()
    assert feed.p.state is State.SALES_READY
    assert (feed.p.history[-1].reason or "").startswith(
        "re-qualified after recycle (no_budget, 9 days ago): new engagement"
    )


# --- item 6: reasons in plain words ---------------------------------------------------------------------


def test_each_breakdown_line_reads_as_plain_words_beside_its_rule(rules: Rules) -> None:
    feed = Feed(rules).who(title="VP Sales", company_size=300)
    feed.page("/pricing", NOW - 2 * DAY).page("/pricing", NOW - DAY, times=2)
    lines = {line["rule"]: line for line in summarize(feed.p, rules, NOW)["scores"]["breakdown"]}
    assert lines["pricing_page"]["text"] == "read the pricing page 3 times this week, most recently yesterday"
    assert lines["title_executive"]["text"] == "executive title: VP Sales"
    assert lines["company_size_target"]["text"] == "company size in the target range: 300"
    assert all(line["text"] for line in lines.values())


# --- the rules document: new kinds validated with the field named -------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("routing", "intent", "confirmers", 0, "rules", 0), "nope", "routing.intent.confirmers.0.rules.0"),
        (("routing", "recycle_surge", "points"), 0, "routing.recycle_surge.points"),
        (("routing", "intent", "recent_points"), 0, "routing.intent.recent_points"),
        (("routing", "intent", "recent_points"), "lots", "routing.intent.recent_points"),
        (("routing", "intent", "recent_days"), 0, "routing.intent.recent_days"),
        (("topics", 0, "content"), "(unclosed", "topics.0.content"),
        (("interest", "signals", "page"), -1, "interest.signals.page"),
        (("fit", 0, "dimension"), "", "fit.0.dimension"),
    ],
)
def test_new_rule_kinds_are_validated_naming_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    doc = document()
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(RulesError) as refused:
        parse_rules(doc)
    assert field in {problem["field"] for problem in refused.value.problems}


def test_a_rules_document_without_the_new_sections_still_loads(rules: Rules) -> None:
    doc = document()
    for section in ("routing", "interest"):
        doc.pop(section)
    assert parse_rules(doc).routing.intent is None  # stored documents from before keep routing as they did

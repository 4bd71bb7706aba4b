"""Source attribution, pure: what the tracking parser reads as a touch (context.campaign, UTM parameters on
the page URL, an external referrer, or nothing), how the profile keeps its first and latest touch (bounded,
through merges and storage), and how the scoreboard counts a lead: once per stage, by first-touch source
and campaign."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from chalicelib.domain.apply import apply_event
from chalicelib.domain.bounds import size_upper_bound, stored_size
from chalicelib.domain.decisions import Changed, transition
from chalicelib.domain.events import Attribution, Event, EventKind, event_from_wire, event_to_wire
from chalicelib.domain.lifecycle import Trigger
from chalicelib.domain.merge import absorb_profile
from chalicelib.domain.prospect import MAX_PATH_CHARS, MAX_TOUCH_CHARS, TRUNCATED, Prospect
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.rules import Rules, parse_rules
from chalicelib.domain.scoreboard import counter_label, scoreboard_increments
from chalicelib.domain.summary import summarize
from chalicelib.ingest.segment import parse_call
from chalicelib.usecases.scoreboard import build_scoreboard
from chalicelib.wiring import DEFAULT_RULES
from tests.conftest import FIXTURES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAGE_URL = "https://www.acme.test/pricing?plan=team&utm_source=linkedin&utm_medium=social&utm_campaign=q4#faq"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))


def parsed(call: str, message: dict[str, Any]) -> Event:
    [event] = parse_call(call, {"anonymousId": "a1", **message}, source="website", received_at=NOW)
    return event


# --- the parser ------------------------------------------------------------------------------------------


def test_context_campaign_is_the_touch_and_wins_over_the_urls_utm_parameters() -> None:
    event = parsed(
        "identify",
        {
            "context": {
                "campaign": {
                    "name": "spring",
                    "source": "google",
                    "medium": "cpc",
                    "term": "lead scoring",
                    "content": "ad-2",
                },
                "page": {"url": PAGE_URL, "referrer": "https://www.google.com/"},
            }
        },
    )
    assert event.attribution == Attribution(
        source="google",
        medium="cpc",
        campaign="spring",
        term="lead scoring",
        content="ad-2",
        referrer="https://www.google.com/",
        landing_page=PAGE_URL.removesuffix("#faq"),
    )


def test_utm_parameters_on_a_page_url_are_the_touch() -> None:
    event = parsed("page", {"properties": {"url": PAGE_URL, "path": "/pricing"}})
    assert event.attribution == Attribution(
        source="linkedin", medium="social", campaign="q4", landing_page=PAGE_URL.removesuffix("#faq")
    )
    in_search = parsed(
        "page", {"context": {"page": {"path": "/x", "search": "?utm_source=bing&UTM_TERM=crm+tool"}}}
    )
    assert in_search.attribution == Attribution(source="bing", term="crm tool", landing_page="/x")


def test_an_external_referrer_alone_is_a_referral_touch_an_internal_one_is_none() -> None:
    external = parsed(
        "page",
        {
            "properties": {
                "url": "https://acme.test/docs",
                "referrer": "https://news.ycombinator.com/item?id=1",
            }
        },
    )
    assert external.attribution == Attribution(
        source="news.ycombinator.com",
        medium="referral",
        referrer="https://news.ycombinator.com/item?id=1",
        landing_page="https://acme.test/docs",
    )
    internal = parsed(
        "page", {"properties": {"url": "https://acme.test/docs", "referrer": "https://www.acme.test/pricing"}}
    )
    assert internal.attribution is None


def test_a_call_without_campaign_utm_or_referrer_has_no_touch() -> None:
    assert parsed("identify", {"traits": {"email": "ada@bigco.example"}}).attribution is None
    assert parsed("page", {"properties": {"url": "https://acme.test/pricing?plan=team"}}).attribution is None
    # A track call's own properties are the event's (a `source` property, a clicked link), not the visit's.
    track = parsed(
        "track",
        {"event": "Link Clicked", "properties": {"source": "footer", "url": PAGE_URL}},
    )
    assert track.attribution is None
    # Attribution values of the wrong type are left out, never a reason to refuse the event.
    odd = parsed("page", {"context": {"campaign": "spring", "page": {"url": 42, "referrer": ["x"]}}})
    assert odd.attribution is None


def test_the_real_browser_capture_carries_its_campaign_through_the_queue() -> None:
    capture = json.loads((FIXTURES / "tracking-clients" / "ajs-standard-p.json").read_text())
    [event] = parse_call("page", capture["body_json"], source="website", received_at=NOW)
    assert event.attribution is not None
    assert (event.attribution.source, event.attribution.campaign) == ("google", "spring")
    assert event.attribution.referrer == "https://google.com/"
    assert event_from_wire(json.loads(json.dumps(event_to_wire(event)))) == event


# --- the profile ------------------------------------------------------------------------------------------


def visit(n: int, at: datetime, attribution: Attribution | None, kind: EventKind = EventKind.PAGE) -> Event:
    return Event(
        message_id=f"m{n}",
        kind=kind,
        at=at,
        source="website",
        anonymous_id="a1",
        properties={"path": "/pricing"},
        attribution=attribution,
    )


GOOGLE = Attribution(source="google", medium="cpc", campaign="spring", landing_page="https://acme.test/")
NEWSLETTER = Attribution(source="newsletter", medium="email", campaign="march")


def test_the_first_touch_never_changes_and_the_latest_follows_the_visits(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, visit(1, NOW, None), rules)
    assert (p.first_touch, p.last_touch) == (None, None)
    apply_event(p, visit(2, NOW + timedelta(hours=1), GOOGLE), rules)
    apply_event(p, visit(3, NOW + timedelta(hours=2), NEWSLETTER), rules)
    apply_event(p, visit(4, NOW + timedelta(hours=3), None), rules)  # no attribution: no touch
    apply_event(p, visit(5, NOW + timedelta(minutes=90), GOOGLE), rules)  # arrived late: not the latest

    attribution = summarize(p, rules, NOW + timedelta(hours=3))["attribution"]
    assert attribution["first_touch"] == {
        "source": "google",
        "medium": "cpc",
        "campaign": "spring",
        "term": None,
        "content": None,
        "referrer": None,
        "landing_page": "https://acme.test/",
        "at": (NOW + timedelta(hours=1)).isoformat(),
    }
    assert attribution["last_touch"]["campaign"] == "march"
    assert attribution["last_touch"]["at"] == (NOW + timedelta(hours=2)).isoformat()
    assert prospect_from_doc(json.loads(json.dumps(prospect_to_doc(p)))) == p


def test_only_tracking_sources_set_a_touch(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW, email="ada@bigco.example")
    for n, (kind, name) in enumerate([(EventKind.EMAIL, "clicked"), (EventKind.CRM, "")]):
        event = Event(
            message_id=f"m{n}",
            kind=kind,
            name=name,
            at=NOW,
            source="provider",
            email="ada@bigco.example",
            attribution=GOOGLE,
        )
        apply_event(p, event, rules)
    assert p.first_touch is None and p.last_touch is None


def test_every_touch_string_is_bounded(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    huge = Attribution(
        source="s" * 5000, campaign="\U0001f600" * 5000, landing_page="https://acme.test/" + "p" * 5000
    )
    apply_event(p, visit(1, NOW, huge), rules)
    assert p.first_touch is not None
    source = p.first_touch.source or ""
    assert len(source) == MAX_TOUCH_CHARS and source.endswith(TRUNCATED)
    assert len(p.first_touch.campaign or "") == MAX_TOUCH_CHARS
    assert len(p.first_touch.landing_page or "") == MAX_PATH_CHARS
    assert p.trimmed["attribution"] == 3  # sales can see that three values were cut
    assert size_upper_bound(p) >= stored_size(p)  # the cheap budget check sees the touches too


def test_a_merge_keeps_the_earlier_first_touch_and_the_later_last_touch(rules: Rules) -> None:
    known = Prospect(lead_id="L1", created_at=NOW - timedelta(days=9), email="ada@bigco.example")
    apply_event(known, visit(1, NOW - timedelta(days=2), NEWSLETTER), rules)
    visitor = Prospect(lead_id="L2", created_at=NOW - timedelta(days=5))
    apply_event(visitor, visit(2, NOW - timedelta(days=5), GOOGLE), rules)
    apply_event(visitor, visit(3, NOW - timedelta(days=4), GOOGLE), rules)

    absorb_profile(known, visitor)
    assert known.first_touch is not None and known.last_touch is not None
    assert (known.first_touch.source, known.first_touch.at) == ("google", NOW - timedelta(days=5))
    assert (known.last_touch.source, known.last_touch.at) == ("newsletter", NOW - timedelta(days=2))

    later = Prospect(lead_id="L3", created_at=NOW)
    apply_event(later, visit(4, NOW - timedelta(days=1), NEWSLETTER), rules)
    absorb_profile(visitor, later)  # a later first touch does not replace an earlier one
    assert visitor.first_touch is not None and visitor.first_touch.source == "google"


# --- the scoreboard ---------------------------------------------------------------------------------------


def test_counter_labels_are_bounded_and_never_split_a_counter_name() -> None:
    assert counter_label("spring:launch 2026") == "spring_launch 2026"
    assert counter_label("  a\tb\n\x00c ") == "a b c"
    assert counter_label("x" * 500) == "x" * 64
    assert counter_label(None) == counter_label("  ") == "(none)"


def walk(p: Prospect, triggers: list[Trigger], at: datetime) -> dict[str, float]:
    """Every counter the transitions move, summed, as the outbox adds them up."""
    totals: dict[str, float] = {}
    for n, trigger in enumerate(triggers):
        for effect in transition(p, trigger, at + timedelta(minutes=n), "test", reason="bad_timing"):
            if isinstance(effect, Changed):
                for name, amount in scoreboard_increments(p, effect).items():
                    totals[name] = totals.get(name, 0.0) + amount
    return totals


def test_a_lead_round_the_funnel_twice_counts_once_per_stage_and_under_its_first_touch(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW, source="website")
    apply_event(p, visit(1, NOW, Attribution(source="news:letter", campaign="q4 " + "x" * 80)), rules)
    lap = [Trigger.IDENTIFIED, Trigger.HAND_RAISE, Trigger.ACCEPT, Trigger.RECYCLE, Trigger.HAND_RAISE]
    totals = walk(p, lap, NOW)

    board = build_scoreboard(totals, {}, [])
    funnel = {
        row["stage"]: (row["leads"], row["reentries"], row["entered"]) for row in board["stages"]["funnel"]
    }
    assert funnel["nurturing"] == (1, 1, 2)
    assert funnel["sales_ready"] == (1, 1, 2)
    assert funnel["accepted"] == (1, 0, 1)
    campaign = counter_label("q4 " + "x" * 80)
    assert board["attribution"] == {
        "by_source": {"news_letter": {"leads": 1, "routed": 1, "accepted": 1, "won": 0, "revenue": 0}},
        "by_campaign": {campaign: {"leads": 1, "routed": 1, "accepted": 1, "won": 0, "revenue": 0}},
    }

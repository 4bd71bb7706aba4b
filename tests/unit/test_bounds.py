"""Profile bounds (README "Profile bounds"): every list and string in a profile has a limit, and whatever a
source sends, the stored profile stays under MAX_PROFILE_BYTES (DynamoDB refuses an item over 400 KB, which
would fail every later write of that lead). The pure domain, a fixed clock, no AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from chalicelib.domain.apply import apply_event
from chalicelib.domain.bounds import fit_traits, keep_within_budget, size_upper_bound
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import (
    MAX_ANONYMOUS_IDS,
    MAX_BUCKET_DAYS,
    MAX_INTEREST_TOPICS,
    MAX_PATH_CHARS,
    MAX_PROFILE_BYTES,
    MAX_TITLE_CHARS,
    MAX_TRAIT_TEXT_CHARS,
    MAX_TRAITS,
    TRUNCATED,
    Prospect,
)
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules, parse_rules
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WIDE = "\U0001f600"  # an emoji: 12 bytes in the stored (ASCII-escaped) JSON


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))


class Feed:
    """Events for one prospect, each with a fresh id, at most a day apart going back from NOW."""

    def __init__(self, p: Prospect, rules: Rules) -> None:
        self.p, self.rules, self.n = p, rules, 0

    def __call__(self, kind: EventKind, *, days_ago: float = 0, **fields: Any) -> None:
        self.n += 1
        fields.setdefault("anonymous_id", "a1")
        event = Event(
            message_id=f"m{self.n}",
            kind=kind,
            at=NOW - timedelta(days=days_ago, seconds=self.n),
            source="dev-write",
            **fields,
        )
        apply_event(self.p, event, self.rules)

    def fold(self) -> None:
        """As the service does it: reassess, then keep the whole profile within budget before the write."""
        reassess(self.p, self.rules, NOW)
        keep_within_budget(self.p, fit_traits(self.rules))


def stored_bytes(p: Prospect) -> int:
    """As the prospect store serialises a profile before compressing it."""
    return len(json.dumps(prospect_to_doc(p), separators=(",", ":"), sort_keys=True).encode())


def test_whatever_a_prospect_is_fed_its_stored_profile_stays_under_the_bound(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=500), source="dev-write")
    feed = Feed(p, rules)
    huge = WIDE * 40_000
    feed(
        EventKind.IDENTIFY,
        email="ada@bigco.example",
        traits={
            **{f"t{i}-{'k' * 40}": WIDE * 3000 for i in range(400)},
            "k" * 10_000: "long name",
            "title": huge,
            "company": {"name": huge, "industry": {"deep": [huge]}, "employee_count": 10**5000},
            "bignum": 10**5000,
            "nan": float("nan"),
        },
    )
    for n in range(300):  # ids, pages, topics, clicks and engagement spread over the bucket horizon
        feed(
            EventKind.PAGE,
            days_ago=n,
            anonymous_id=f"{WIDE * 255}{n}",
            properties={"path": f"/pricing/{huge}", "title": huge},
        )
        feed(
            EventKind.TRACK,
            days_ago=n,
            name="Content Downloaded",
            properties={"topics": [f"{WIDE * 60}{n}-{i}" for i in range(5)]},
        )
        feed(EventKind.EMAIL, days_ago=n, name="clicked", properties={"url": f"https://x.example/{huge}"})
        feed(  # no rule scores it: kept among the other events, name and properties bounded
            EventKind.TRACK,
            days_ago=n,
            name=f"Unscored {WIDE * 500}{n}",
            properties={"webinar_name": huge, "asset": huge, "title": huge, "name": huge},
        )
        feed(EventKind.IDENTIFY, traits={f"late{n}": huge})
    for n in range(40):  # sales and the CRM: long notes, owners and ids, every round trip through sales
        feed(
            EventKind.CRM,
            crm_id=f"hubspot:contact:{WIDE * 240}{n}",
            properties={"owner": WIDE * 254, "actor": WIDE * 300},
        )
        feed(EventKind.TRACK, name="Demo Requested")
        feed.fold()
        feed(EventKind.SALES, name="accept", lead_id="L1", properties={"actor": WIDE * 300, "note": huge})
        feed(EventKind.SALES, name="recycle", lead_id="L1", properties={"reason": "no_need", "note": huge})
    feed.fold()

    size = stored_bytes(p)
    assert size <= MAX_PROFILE_BYTES, f"{size} bytes stored"
    assert p.trimmed  # the profile says it was cut, and where
    back = prospect_from_doc(json.loads(json.dumps(prospect_to_doc(p))))
    assert back.email == "ada@bigco.example" and back.state is State.NURTURING and back.trimmed == p.trimmed


def test_trait_names_values_and_count_are_bounded(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    feed = Feed(p, rules)
    feed(EventKind.IDENTIFY, traits={"title": "VP Engineering", "x" * 65: "refused", "bio": "b" * 5000})
    feed(EventKind.IDENTIFY, traits={f"extra{i}": i for i in range(200)})

    assert len(p.traits) == MAX_TRAITS
    assert p.traits["title"] == "VP Engineering"  # identity traits are never evicted by extras
    assert "bio" not in p.traits and "extra199" in p.traits and "extra0" not in p.traits  # oldest went first
    assert "x" * 65 not in p.traits
    p2 = Prospect(lead_id="L2", created_at=NOW)
    Feed(p2, rules)(EventKind.IDENTIFY, traits={"bio": "b" * 5000})
    assert len(p2.traits["bio"]) == MAX_TRAIT_TEXT_CHARS and p2.traits["bio"].endswith(TRUNCATED)
    assert p2.trimmed == {"traits": 1}


def test_ids_pages_topics_and_day_buckets_keep_the_most_recent(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=400))
    feed = Feed(p, rules)
    for n in range(120, 0, -1):  # oldest first
        feed(
            EventKind.PAGE,
            days_ago=n,
            anonymous_id=f"anon-{n}",
            properties={"path": "/docs/" + "p" * 900, "title": "t" * 900},
        )
        feed(
            EventKind.TRACK,
            days_ago=n,
            anonymous_id=f"anon-{n}",
            name="Viewed",
            properties={"topics": [f"topic-{n}"]},
        )
    feed.fold()

    assert p.anonymous_ids == [f"anon-{n}" for n in range(MAX_ANONYMOUS_IDS, 0, -1)]
    assert {len(v.path) for v in p.pages} == {MAX_PATH_CHARS} and {len(v.title) for v in p.pages} == {
        MAX_TITLE_CHARS
    }
    assert sorted(p.interests) == sorted(f"topic-{n}" for n in range(1, MAX_INTEREST_TOPICS + 1))
    assert {len(days) for days in p.engagement.values()} == {MAX_BUCKET_DAYS}


def test_an_ordinary_profile_is_not_trimmed(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=30))
    feed = Feed(p, rules)
    feed(
        EventKind.IDENTIFY,
        email="ada@bigco.example",
        traits={"firstName": "Ada", "title": "CTO", "company": "BigCo"},
    )
    for n in range(30):
        feed(EventKind.PAGE, days_ago=n, properties={"path": "/pricing", "title": "Pricing"})
    feed(EventKind.TRACK, name="Demo Requested")
    feed.fold()
    assert p.trimmed == {} and p.state is State.SALES_READY and len(p.pages) == 25
    assert p.traits == {"first_name": "Ada", "title": "CTO", "company": "BigCo"}


def test_the_cheap_size_bound_is_never_below_the_stored_size(rules: Rules) -> None:
    """The budget check serialises a profile only when the cheap bound says it might not fit: the bound must
    never be below the real size, for ordinary and hostile text alike."""
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=30))
    feed = Feed(p, rules)
    for n, text in enumerate(["plain", 'quo"te\\back', "\x01\x02ctl", "é" * 300, "😀" * 300]):
        feed(EventKind.IDENTIFY, traits={f"t{n}": text * 3, "title": text})
        feed(EventKind.PAGE, properties={"path": f"/{text}", "title": text})
        feed(EventKind.TRACK, name=f"Clicked {text}"[:60])
        reassess(p, rules, NOW)
        assert size_upper_bound(p) >= stored_bytes(p)

"""The idempotency window, promised in time: an event id redelivered within SEEN_HORIZON_HOURS of its first
application is applied once; past the horizon it is forgotten, so the stored window holds only the ids of
the last horizon, whatever the prospect's history; profiles stored with the old `seen` list still read and
dedupe."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from chalicelib.domain.apply import apply_event
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.merge import absorb_profile
from chalicelib.domain.prospect import Prospect, event_fingerprint
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.rules import Rules, parse_rules
from chalicelib.domain.seen import MAX_SEEN_EVENTS, SEEN_HORIZON_HOURS
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HORIZON = timedelta(hours=SEEN_HORIZON_HOURS)


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))


def page(message_id: str, at: datetime, path: str = "/pricing") -> Event:
    return Event(
        message_id=message_id,
        kind=EventKind.PAGE,
        at=at,
        source="web",
        anonymous_id="a1",
        properties={"path": path, "title": path},
    )


def stored(p: Prospect) -> Prospect:
    """The profile as the prospect store writes and reads it back."""
    return prospect_from_doc(json.loads(json.dumps(prospect_to_doc(p), sort_keys=True)))


def compressed_bytes(doc: object) -> int:
    return len(zlib.compress(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode(), 6))


def test_a_redelivery_23_hours_later_is_ignored_after_a_busy_day(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    first = page("seg:original", NOW)
    assert apply_event(p, first, rules, NOW) is not None
    for i in range(250):  # a busy day in between, stored and read back as the worker does per batch
        at = NOW + timedelta(minutes=5 * i)
        apply_event(p, page(f"seg:other-{i}", at, f"/docs/{i}"), rules, at)
        if i % 10 == 0:
            p = stored(p)
    pages = len(p.pages)
    redelivered_at = NOW + timedelta(hours=23)
    assert apply_event(p, first, rules, redelivered_at) is None
    assert len(p.pages) == pages


def test_a_late_event_is_remembered_from_when_it_was_applied_not_from_its_own_time(rules: Rules) -> None:
    # An offline client's event, 10 days old when it arrives, then a live one, then the old one again.
    p = Prospect(lead_id="L1", created_at=NOW - timedelta(days=30))
    late = page("seg:offline", NOW - timedelta(days=10))
    assert apply_event(p, late, rules, NOW) is not None
    apply_event(p, page("seg:live", NOW + timedelta(hours=1)), rules, NOW + timedelta(hours=1))
    assert apply_event(stored(p), late, rules, NOW + timedelta(hours=20)) is None


def test_past_the_horizon_an_id_is_forgotten(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    apply_event(p, page("seg:original", NOW), rules, NOW)
    later = NOW + HORIZON + timedelta(hours=1)
    apply_event(p, page("seg:next", later), rules, later)
    p = stored(p)
    assert event_fingerprint("seg:original") not in p.seen
    assert list(p.seen) == [event_fingerprint("seg:next")]


def test_an_id_is_kept_for_at_least_the_whole_horizon(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    applied = NOW.replace(minute=59)  # late in its hour: the coarse clock must not shorten the promise
    apply_event(p, page("seg:original", applied), rules, applied)
    almost = applied + HORIZON - timedelta(seconds=1)
    apply_event(p, page("seg:next", almost), rules, almost)
    assert apply_event(stored(p), page("seg:original", applied), rules, almost) is None


def test_a_3000_event_history_keeps_only_the_last_horizon(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    step = timedelta(days=90) / 3000  # 33 page views a day for 90 days
    at = NOW
    for i in range(3000):
        at = NOW + i * step
        apply_event(p, page(f"seg:p{i}", at, f"/docs/{i % 40}"), rules, at)
    in_horizon = HORIZON / step
    assert in_horizon <= len(p.seen) <= in_horizon + 3
    # ~10 bytes an id once compressed (8 of fingerprint, 1 of hour): 1 KB here, where the last 300 ids as hex
    # strings took 3.1 KB, and the same at 30,000 events at this rate.
    assert compressed_bytes(prospect_to_doc(p)["sw"]) < 11 * len(p.seen) + 64
    # Every id of the horizon still dedupes after a round trip.
    again = stored(p)
    assert apply_event(again, page("seg:p2999", at), rules, at + timedelta(hours=1)) is None


def test_a_burst_beyond_the_bound_stays_exact_for_the_newest_ids(rules: Rules) -> None:
    p = Prospect(lead_id="L1", created_at=NOW)
    burst = MAX_SEEN_EVENTS + 50
    for i in range(burst):
        apply_event(p, page(f"seg:b{i}", NOW), rules, NOW)
    p = stored(p)
    assert len(p.seen) == MAX_SEEN_EVENTS
    assert event_fingerprint(f"seg:b{burst - MAX_SEEN_EVENTS}") in p.seen
    assert event_fingerprint(f"seg:b{burst - MAX_SEEN_EVENTS - 1}") not in p.seen


def test_a_profile_stored_with_the_old_seen_list_loads_and_dedupes(rules: Rules) -> None:
    before = Prospect(lead_id="L1", created_at=NOW)
    doc = prospect_to_doc(before)
    doc.pop("sw", None)
    doc["seen"] = [event_fingerprint(f"seg:old-{i}") for i in range(300)]  # as stored before the window
    p = prospect_from_doc(doc)
    assert len(p.seen) == 300
    assert apply_event(p, page("seg:old-7", NOW), rules, NOW) is None
    # Its first new event stamps the old ids with that hour: they dedupe for a whole horizon from there.
    apply_event(p, page("seg:new", NOW), rules, NOW)
    later = NOW + HORIZON - timedelta(hours=1)
    p = stored(p)
    assert apply_event(p, page("seg:old-299", NOW), rules, later) is None
    # ... and are forgotten after it, like any other id (the bound made room for the new ones meanwhile).
    gone = NOW + HORIZON + timedelta(hours=2)
    apply_event(p, page("seg:newest", gone), rules, gone)
    assert not any(event_fingerprint(f"seg:old-{i}") in p.seen for i in range(300))


def test_an_old_list_saved_again_without_an_event_stays_an_old_list() -> None:
    doc = prospect_to_doc(Prospect(lead_id="L1", created_at=NOW))
    doc["seen"] = [event_fingerprint("seg:old")]
    again = prospect_from_doc(json.loads(json.dumps(prospect_to_doc(prospect_from_doc(doc)))))
    assert event_fingerprint("seg:old") in again.seen
    assert again.seen.unstamped


def test_a_merge_keeps_both_windows(rules: Rules) -> None:
    known, visitor = Prospect(lead_id="L1", created_at=NOW), Prospect(lead_id="L2", created_at=NOW)
    apply_event(known, page("seg:known", NOW), rules, NOW)
    apply_event(visitor, page("seg:visitor", NOW), rules, NOW)
    absorb_profile(known, stored(visitor))
    later = NOW + timedelta(hours=5)
    assert apply_event(known, page("seg:visitor", NOW), rules, later) is None
    assert apply_event(known, page("seg:known", NOW), rules, later) is None

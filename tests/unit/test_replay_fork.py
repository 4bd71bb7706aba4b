"""The rules lab folds a lead once for both rule sets past its anonymous prefix while the two cannot differ,
and forks where they would decide apart (issue 14, replay speed): what each rule set makes of the lead is
exactly what two separate folds make of it (chalicelib/lab/sharing.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect_document import prospect_to_doc
from chalicelib.domain.rules import Rules
from chalicelib.lab import sharing
from chalicelib.lab.layout import ArchivedEvent
from chalicelib.lab.replay import Merged, _fold, histories, replay_lead, replay_shard
from chalicelib.lab.sharing import Sharing, fold_shared
from tests.unit.test_replay_sharing import (  # the same rule sets and catalogue as the shared-prefix tests
    CATALOGUE,
    DAY,
    PUBLISHED,
    TEXT,
    _changed,
    _rules,
)

# An engagement threshold the buyer below reaches under the published rules (35) and not under this draft.
HIGHER_THRESHOLD = _rules(_changed("  engagement: 35", "  engagement: 70"), 4)
TARGET_SIZE_WORTH_MORE = _rules(
    _changed("between: [50, 5000], points: 20,", "between: [50, 5000], points: 30,"), 4
)


def _page(lead: str, n: int, at: datetime, path: str, **who: Any) -> Event:
    return Event(f"seg:{lead}-p{n}", EventKind.PAGE, at, "segment", properties={"path": path}, **who)


def _buyer(lead: str) -> list[Event]:
    """Reads anonymously, identifies as a VP at a mid-sized company, reads again the next day, comes back
    a week later for a day of pricing, security, integration and customer pages and a pricing page the
    next day (qualified at an engagement threshold of 35, not at 70), and once more a week later (by then
    no recent intent: the draft never routes)."""
    anon = {"anonymous_id": f"anon-{lead}"}
    email = {"email": f"{lead}@bigco.example"}
    events = [
        _page(lead, 0, DAY, "/", **anon),
        _page(lead, 1, DAY + timedelta(seconds=2), "/product", **anon),
    ]
    at = DAY + timedelta(hours=1)
    traits = {"title": "VP Engineering", "company_size": 400, "company": "BigCo"}
    events.append(Event(f"seg:{lead}-i", EventKind.IDENTIFY, at, "segment", traits=traits, **anon, **email))
    # Days 0 and 1 are the history a score route asks for (routing.intent.earlier_days).
    week = ["/pricing", "/security", "/docs/api", "/product", "/pricing", "/customers", "/integrations"]
    days = {1: ["/product"], 8: week}
    days.update({9: ["/pricing"], 16: ["/"]})
    for day, paths in days.items():
        for n, path in enumerate(paths):
            at = DAY + timedelta(days=day, minutes=10 * n)
            events.append(_page(lead, 10 * day + n, at, path, **email))
    return events


def _separately(lead: str, events: list[Event], rules: Rules, merged: Any = None) -> tuple[Any, Any]:
    p, _, _ = _fold(lead, events, rules, merged or {})
    return replay_lead(lead, events, rules, CATALOGUE, merged), prospect_to_doc(p)


def _shared_then_forked(
    lead: str, events: list[Event], draft: Rules, merged: Any = None, joins: frozenset[str] = frozenset()
) -> tuple[Any, State, list[tuple[Any, Any]]]:
    """The shared fold, the state the lead forked in, and what each rule set went on to make of it."""
    prefix = fold_shared(lead, events, PUBLISHED, draft, Sharing.of(PUBLISHED, draft), joins)
    forked_in = prefix.p.state
    theirs = prefix.copy_for(draft)
    found = []
    for rules, start in ((PUBLISHED, prefix), (draft, theirs)):
        run = replay_lead(lead, events, rules, CATALOGUE, merged, shared=start)
        found.append((run, prospect_to_doc(start.p)))  # the fold went on in this set's own copy
    return prefix, forked_in, found


def test_a_lead_routed_by_one_rule_set_only_is_folded_once_until_the_routing_then_forks() -> None:
    events = _buyer("ada")
    separate = [_separately("ada", events, PUBLISHED), _separately("ada", events, HIGHER_THRESHOLD)]
    (published_run, _), (draft_run, _) = separate
    assert published_run.reason == "qualified" and draft_run.routed_at is None  # the draft decides apart

    prefix, forked_in, shared = _shared_then_forked("ada", events, HIGHER_THRESHOLD)

    assert shared == separate
    # Shared well past the identify (event 2), up to the reassessment the published rules route at.
    assert forked_in is State.NURTURING and prefix.next > 3
    assert prefix.owed == published_run.routed_at and prefix.next < len(events)
    (_, published_doc), (_, draft_doc) = shared
    assert (published_doc["rv"], draft_doc["rv"]) == (3, 4)  # each stamped by its own rule set


def test_a_fit_change_forks_at_the_first_reassessment_in_nurture() -> None:
    """Fit points are read by every score: the lead forks at the identify's reassessment, and the draft's
    scores are its own."""
    events = _buyer("ada")
    prefix, forked_in, shared = _shared_then_forked("ada", events, TARGET_SIZE_WORTH_MORE)
    assert prefix.next == 3 and prefix.owed == events[2].at  # the anonymous pages and the identify
    assert forked_in is State.NURTURING
    assert shared == [
        _separately("ada", events, PUBLISHED),
        _separately("ada", events, TARGET_SIZE_WORTH_MORE),
    ]
    assert shared[1][0].score == shared[0][0].score + 10


def _two_devices() -> list[ArchivedEvent]:
    """A visitor reads pricing on a phone (lead `phone`); the buyer on the laptop (lead `ada`) later
    identifies with the phone's anonymous id too: the worker merged the phone's lead into ada's."""
    phone = [
        _page("phone", n, DAY + timedelta(hours=2, minutes=n), path, anonymous_id="anon-phone")
        for n, path in enumerate(["/pricing", "/security", "/pricing"])
    ]
    laptop = _buyer("ada")
    join_at = DAY + timedelta(days=2, hours=5)
    join = Event("seg:ada-j", EventKind.IDENTIFY, join_at, "segment", email="ada@bigco.example",
                 anonymous_id="anon-phone")  # fmt: skip
    laptop = sorted([*laptop, join], key=lambda event: event.at)
    return [*(ArchivedEvent("phone", e) for e in phone), *(ArchivedEvent("ada", e) for e in laptop)]


def test_a_lead_with_a_merge_is_shared_up_to_the_join_and_gives_what_separate_folds_give() -> None:
    found = histories(_two_devices())
    assert found.survivors() == ["ada"] and [m.lead_id for m in found.merged["ada"]] == ["phone"]
    join: Merged = found.merged["ada"][0]
    events = found.events["ada"]
    for draft in (HIGHER_THRESHOLD, TARGET_SIZE_WORTH_MORE, PUBLISHED):
        separate = [
            _separately("ada", events, PUBLISHED, found.merged),
            _separately("ada", events, draft, found.merged),
        ]
        assert join.at_event is not None
        prefix, _, shared = _shared_then_forked(
            "ada", events, draft, found.merged, frozenset({join.at_event})
        )
        assert shared == separate
        assert 0 < prefix.next <= events.index(next(e for e in events if e.message_id == join.at_event))
        rows = replay_shard(_two_devices(), PUBLISHED, draft, catalogue=CATALOGUE)
        assert [row["lead"] for row in rows] == ["ada"] and rows[0]["events"] == len(events) + 3
        assert (
            rows[0]["published"] == separate[0][0].as_dict() and rows[0]["draft"] == separate[1][0].as_dict()
        )


def test_leads_both_rule_sets_decide_alike_are_folded_once_to_the_end_and_never_copied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The published rules under another version: every decision alike, the last reassessment too. Both
    rows are read from the one profile (no copy) and are those of two separate folds: a lead routed, and
    one still in nurture whose next template the chooser picks under each rule set."""
    same = _rules(TEXT, 4)
    routed, nurtured = _buyer("ada"), _buyer("bo")[:8]  # bo stops before his second day of pricing
    prefix = fold_shared("ada", routed, PUBLISHED, same, Sharing.of(PUBLISHED, same))
    assert prefix.done and prefix.next == len(routed) and prefix.scores is not None
    assert prefix.for_draft(same).p is prefix.p and prefix.for_draft(same).scores.rules_version == 4

    def no_copy(p: Any) -> Any:
        raise AssertionError("a lead folded to the end alike is not copied")

    monkeypatch.setattr(sharing, "copy_prospect", no_copy)
    history = [*(ArchivedEvent("ada", e) for e in routed), *(ArchivedEvent("bo", e) for e in nurtured)]
    rows = {row["lead"]: row for row in replay_shard(history, PUBLISHED, same, catalogue=CATALOGUE)}
    for lead, events in (("ada", routed), ("bo", nurtured)):
        assert rows[lead]["published"] == _separately(lead, events, PUBLISHED)[0].as_dict()
        assert rows[lead]["draft"] == _separately(lead, events, same)[0].as_dict()
    assert rows["ada"]["published"]["reason"] == "qualified" and rows["bo"]["published"]["reason"] is None
    assert rows["bo"]["draft"]["next"] is not None  # the chooser ran on the shared profile

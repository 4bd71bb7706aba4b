"""The rules lab folds a lead's anonymous prefix once for both rule sets (issue 14, replay speed), and what
each rule set makes of the lead is exactly what two separate folds make of it (chalicelib/lab/replay.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect_document import prospect_to_doc
from chalicelib.domain.rules import Rules, parse_rules
from chalicelib.lab import replay
from chalicelib.lab.layout import ArchivedEvent
from chalicelib.lab.replay import _fold, replay_lead, replay_shard
from chalicelib.lab.sharing import Sharing, fold_shared, sharing_key
from chalicelib.wiring import DEFAULT_RULES

DAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TEXT = DEFAULT_RULES.read_text()
CATALOGUE = [
    TemplateMeta("security-pack", "s", ("security",), (), ()),
    TemplateMeta("pricing-guide", "s", ("pricing",), (), ()),
]


def _rules(text: str, version: int) -> Rules:
    return parse_rules({**yaml.safe_load(text), "version": version})


def _changed(old: str, new: str) -> str:
    assert TEXT.count(old) == 1, old
    return TEXT.replace(old, new)


PUBLISHED = _rules(TEXT, 3)
# What `make bench`'s backtest asks: a higher engagement threshold (and another version: the profile's stamp).
HIGHER_THRESHOLD = _rules(_changed("  engagement: 35", "  engagement: 45"), 4)
# A fit change: read only by scores, so an anonymous visitor (never scored) folds alike under both.
TARGET_SIZE_WORTH_MORE = _rules(
    _changed("between: [50, 5000], points: 20,", "between: [50, 5000], points: 30,"), 4
)
PRICING_WORTH_MORE = _rules(
    _changed("path: '^/(pricing|plans)', points: 8,", "path: '^/(pricing|plans)', points: 12,"), 4
)


def _page(lead: str, n: int, at: datetime, path: str) -> Event:
    return Event(f"seg:{lead}-p{n}", EventKind.PAGE, at, "segment", anonymous_id=f"anon-{lead}",
                 properties={"path": path})  # fmt: skip


def _anonymous_visits(lead: str) -> list[Event]:
    """Three days of reading as an anonymous visitor: bursts of pages, pricing and security, a download."""
    events = []
    for day, paths in enumerate((["/", "/product", "/pricing"], ["/security", "/pricing", "/docs/api"])):
        for n, path in enumerate(paths):
            events.append(_page(lead, 10 * day + n, DAY + timedelta(days=day, seconds=2 * n), path))
    events.append(
        Event(
            f"seg:{lead}-dl",
            EventKind.TRACK,
            DAY + timedelta(days=2),
            "segment",
            name="Content Downloaded",
            anonymous_id=f"anon-{lead}",
            properties={"asset_name": "Pricing guide"},
        )  # fmt: skip
    )
    return events


def _identifies_and_asks_for_a_demo(lead: str) -> list[Event]:
    email = f"{lead}@bigco.example"
    at = DAY + timedelta(days=3)
    traits = {"title": "VP Engineering", "company_size": 400}
    return [
        *_anonymous_visits(lead),
        Event(
            f"seg:{lead}-i",
            EventKind.IDENTIFY,
            at,
            "segment",
            email=email,
            anonymous_id=f"anon-{lead}",
            traits=traits,
        ),  # fmt: skip
        Event(
            f"seg:{lead}-d",
            EventKind.TRACK,
            at + timedelta(seconds=1),
            "segment",
            name="Demo Requested",
            email=email,
        ),  # fmt: skip
        _page(lead, 99, at + timedelta(days=1), "/pricing"),
    ]


def _separately(lead: str, events: list[Event], rules: Rules) -> tuple[Any, dict[str, Any]]:
    p, _, _ = _fold(lead, events, rules, {})
    return replay_lead(lead, events, rules, CATALOGUE), prospect_to_doc(p)


def _shared(
    lead: str, events: list[Event], published: Rules, draft: Rules
) -> list[tuple[Any, dict[str, Any]]]:
    prefix = fold_shared(lead, events, published, draft, Sharing.of(published, draft))
    assert prefix.next > 0  # the test is about a lead whose first events are shared
    theirs = prefix.copy_for(draft)
    found = []
    for rules, start in ((published, prefix), (draft, theirs)):
        run = replay_lead(lead, events, rules, CATALOGUE, shared=start)
        found.append((run, prospect_to_doc(start.p)))  # the fold went on in the shared profile's copy
    return found


@pytest.mark.parametrize("draft", [HIGHER_THRESHOLD, TARGET_SIZE_WORTH_MORE], ids=["threshold", "fit"])
@pytest.mark.parametrize(
    "events",
    [_identifies_and_asks_for_a_demo("ada"), _anonymous_visits("ada")],
    ids=["anonymous-then-identifies-and-routes", "anonymous-throughout"],
)
def test_a_shared_anonymous_prefix_gives_what_two_separate_folds_give(
    events: list[Event], draft: Rules
) -> None:
    assert sharing_key(PUBLISHED) == sharing_key(draft)
    shared = _shared("ada", events, PUBLISHED, draft)
    assert shared == [_separately("ada", events, PUBLISHED), _separately("ada", events, draft)]
    (published_run, published_doc), (draft_run, draft_doc) = shared
    assert (published_doc["rv"], draft_doc["rv"]) == (3, 4)  # each stamped by its own rule set
    if len(events) > len(_anonymous_visits("ada")):  # the lead that identified: routed on its hand-raise
        assert published_run.reason == draft_run.reason == "hand_raise"
        assert published_run.routed_at == DAY + timedelta(days=3, seconds=1)


def test_a_fit_change_shares_up_to_the_reassessment_of_the_batch_that_names_the_person() -> None:
    """The identify and the demo request one second later are one batch: folded once, reassessed by each
    rule set (the lead is in nurture by then: fit is scored)."""
    events = _identifies_and_asks_for_a_demo("ada")
    sharing = Sharing.of(PUBLISHED, TARGET_SIZE_WORTH_MORE)
    assert sharing.events and not sharing.decisions
    prefix = fold_shared("ada", events, PUBLISHED, TARGET_SIZE_WORTH_MORE, sharing)
    assert prefix.next == len(_anonymous_visits("ada")) + 2 and prefix.owed == events[prefix.next - 1].at


def test_a_draft_that_changes_an_engagement_rule_does_not_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pricing pages worth more in the draft: an anonymous visitor's pricing reads are stored at each rule
    set's points, so folding them once would give the draft the published points. Each rule set folds them,
    and the draft scores the visitor higher."""
    assert sharing_key(PUBLISHED) != sharing_key(PRICING_WORTH_MORE)
    folded_once: list[str] = []
    monkeypatch.setattr(replay, "fold_shared", lambda lead, *args: folded_once.append(lead))
    history = [
        *(ArchivedEvent("ada", event) for event in _identifies_and_asks_for_a_demo("ada")),
        *(ArchivedEvent("bo", event) for event in _anonymous_visits("bo")),
    ]
    rows = {
        row["lead"]: row for row in replay_shard(history, PUBLISHED, PRICING_WORTH_MORE, catalogue=CATALOGUE)
    }
    assert folded_once == []
    for lead, row in rows.items():
        events = [a.event for a in history if a.lead_id == lead]
        assert row["published"] == _separately(lead, events, PUBLISHED)[0].as_dict()
        assert row["draft"] == _separately(lead, events, PRICING_WORTH_MORE)[0].as_dict()
    assert rows["bo"]["draft"]["score"] > rows["bo"]["published"]["score"]


def test_equal_rule_sets_share_and_the_shard_rows_are_those_of_separate_folds() -> None:
    history = [
        *(ArchivedEvent("ada", event) for event in _identifies_and_asks_for_a_demo("ada")),
        *(ArchivedEvent("bo", event) for event in _anonymous_visits("bo")),
    ]
    rows = replay_shard(history, PUBLISHED, HIGHER_THRESHOLD, catalogue=CATALOGUE)
    for row in rows:
        events = [a.event for a in history if a.lead_id == row["lead"]]
        assert row["published"] == _separately(row["lead"], events, PUBLISHED)[0].as_dict()
        assert row["draft"] == _separately(row["lead"], events, HIGHER_THRESHOLD)[0].as_dict()

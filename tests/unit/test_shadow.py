"""Shadow mode (README "Rules lab"): a draft scored beside the live rules on live traffic records what it
would route, never routes, sends or notifies; a redelivered batch counts once; it stops by itself after its
days; promote publishes it as the live rules (on the activity feed); discard ends it; a bad draft is 422."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.memory import InMemoryActivity
from chalicelib.adapters.shadow_rows import InMemoryShadowRows
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.events import Event, EventKind
from chalicelib.errors import InvalidContent, MalformedInput, NotFound
from chalicelib.usecases.privacy import PrivacyService
from chalicelib.usecases.shadow import ShadowScoring, ShadowService
from chalicelib.wiring import DEFAULT_RULES
from tests.unit.test_lead_service import NOW, RULES, Store

PUBLISHED_HAND_RAISES = 'hand_raise_events: ["Demo Requested", "Contact Sales Requested"]'
DRAFT = DEFAULT_RULES.read_text().replace(
    PUBLISHED_HAND_RAISES, 'hand_raise_events: ["Demo Requested", "Webinar Attended"]'
)


class Versions:
    """The content store's versions in memory."""

    def __init__(self) -> None:
        self.saved: dict[str, list[Any]] = {}

    def save(
        self, key: str, body: str, author: str, at: datetime, *, expected_latest: int | None = None
    ) -> int:
        class V:
            pass

        v = V()
        v.body, v.author, v.created_at = body, author, at  # type: ignore[attr-defined]
        self.saved.setdefault(key, []).append(v)
        v.version = len(self.saved[key])  # type: ignore[attr-defined]
        return v.version  # type: ignore[attr-defined,no-any-return]

    def latest(self, key: str) -> Any:
        return (self.saved.get(key) or [None])[-1]


class Lab:
    def __init__(self) -> None:
        self.now = NOW
        self.store = Store()
        self.versions = Versions()
        self.rows = InMemoryShadowRows()
        self.activity = InMemoryActivity()
        self.published: list[str] = []
        self.scoring = ShadowScoring(versions=self.versions, rows=self.rows, cache_seconds=0)
        self.store.leads._shadow = self.scoring  # the worker's LeadService, with the hook wiring gives it
        self.store.leads._clock = lambda: self.now
        self.service = ShadowService(
            versions=self.versions,
            rows=self.rows,
            rules_source=lambda version: DRAFT,
            save_rules=self._save_rules,
            profile=lambda lead: found.item if (found := self.store.prospects.get(lead)) else None,
            activity=self.activity,
            clock=lambda: self.now,
        )

    def _save_rules(self, text: str, author: str) -> dict[str, Any]:
        self.published.append(text)
        return {"version": len(self.published), "rules": {"version": len(self.published)}}


def webinar(email: str, n: int = 0) -> list[Event]:
    traits = {"title": "VP Engineering", "company": "BigCo"}
    return [
        Event(
            f"seg:{email}:i{n}",
            EventKind.IDENTIFY,
            NOW - timedelta(minutes=5),
            "website",
            email=email,
            traits=traits,
        ),  # fmt: skip
        Event(
            f"seg:{email}:w{n}",
            EventKind.TRACK,
            NOW - timedelta(minutes=4),
            "website",
            name="Webinar Attended",
            email=email,
        ),  # fmt: skip
    ]


def test_a_shadow_records_a_would_be_route_and_routes_sends_and_notifies_nothing() -> None:
    lab = Lab()
    lab.service.start({"rules": DRAFT, "days": 7}, "mia")

    lab.store.leads.apply_events(webinar("ada@bigco.example"))

    lead = lab.store.prospects.ids()[0]
    assert lab.store.prospects.get(lead).item.state.value != "sales_ready"  # type: ignore[union-attr]
    assert lab.store.notifier.sent == [] and lab.store.workflow.calls == 0
    report = lab.service.status()["report"]
    assert report["routed_by"] == {"live_only": 0, "shadow_only": 1, "both": 0}
    assert report["gained"]["count"] == 1 and report["gained"]["top"][0]["lead"] == lead
    assert "Webinar Attended" in report["gained"]["top"][0]["why"]
    assert report["published"]["routed"] == 0 and report["draft"]["routed"] == 1


def test_without_a_shadow_nothing_is_recorded() -> None:
    lab = Lab()
    lab.store.leads.apply_events(webinar("ada@bigco.example"))
    assert lab.rows.rows == {}
    with pytest.raises(NotFound):
        lab.service.status()


def test_a_redelivered_batch_counts_once() -> None:
    lab = Lab()
    lab.service.start({"rules": DRAFT, "days": 7}, "mia")
    lab.store.leads.apply_events(webinar("ada@bigco.example"))
    lab.now += timedelta(minutes=3)
    lab.store.leads.apply_events(webinar("ada@bigco.example"))  # SQS delivers the same messages again
    lab.store.leads.apply_events(webinar("bob@bigco.example"))

    report = lab.service.status()["report"]
    assert report["leads"] == 2
    assert report["routed_by"]["shadow_only"] == 2


def test_a_shadow_stops_scoring_after_its_days() -> None:
    lab = Lab()
    lab.service.start({"rules": DRAFT, "days": 1}, "mia")
    lab.now += timedelta(days=1, minutes=1)
    lab.store.leads.apply_events(webinar("ada@bigco.example", 1))

    answer = lab.service.status()
    assert answer["active"] is False and answer["days_left"] == 0
    assert answer["report"]["leads"] == 0


def test_promote_publishes_the_draft_and_records_it_on_the_activity_feed() -> None:
    lab = Lab()
    lab.service.start({"version": 3, "days": 7}, "mia")

    answer = lab.service.promote("mia")

    assert lab.published == [DRAFT] and answer["version"] == 1
    entries = lab.activity.feed(
        since=NOW - timedelta(days=1), until=NOW + timedelta(days=1), actor=None, limit=9
    )
    assert [(e.kind, e.actor, e.data["version"]) for e in entries] == [("rules_promoted", "mia", 1)]
    with pytest.raises(NotFound):
        lab.service.status()  # the shadow ended: it is the live rules now
    lab.store.leads.apply_events(webinar("ada@bigco.example"))
    assert lab.rows.rows == {}


def test_discard_ends_the_shadow() -> None:
    lab = Lab()
    lab.service.start({"rules": DRAFT, "days": 7}, "mia")
    lab.service.discard("mia")
    lab.store.leads.apply_events(webinar("ada@bigco.example"))
    assert lab.rows.rows == {} and lab.published == []
    with pytest.raises(NotFound):
        lab.service.discard("mia")


def test_a_bad_draft_is_refused_as_put_rules_refuses_it() -> None:
    lab = Lab()
    with pytest.raises(InvalidContent) as refused:
        lab.service.start({"rules": "thresholds:\n  fit: many\n", "days": 7}, "mia")
    assert refused.value.details and refused.value.details[0]["field"].startswith("thresholds")
    for days in (0, 31, "7", None):
        with pytest.raises(MalformedInput):
            lab.service.start({"rules": DRAFT, "days": days}, "mia")
    with pytest.raises(MalformedInput, match="'day'"):
        lab.service.start({"rules": DRAFT, "days": 7, "day": 7}, "mia")
    assert lab.versions.saved == {}


def test_erasing_a_person_removes_their_row_from_the_shadow_comparison(tmp_path: Path) -> None:
    from chalicelib.adapters.local_copies import OutboxCopies
    from tests.unit.test_privacy import SALT, Records, Sla, Suppressions

    lab = Lab()
    lab.service.start({"rules": DRAFT, "days": 7}, "mia")
    lab.store.leads.apply_events(webinar("ada@bigco.example") + webinar("bo@bigco.example"))
    assert len(lab.rows.all(lab.service.status()["id"])) == 2
    ada = lab.store.leads.find("ada@bigco.example").lead_id

    answer = PrivacyService(
        leads=lab.store.leads,
        prospects=lab.store.prospects,
        records=Records(lab.store),
        suppressions=Suppressions(),
        activity=lab.store.activity,
        copies=OutboxCopies(tmp_path),
        sla=Sla(),
        salt=SALT,
        clock=lambda: lab.now,
        shadow=lab.scoring,
    ).erase("ada@bigco.example", "admin-key")

    assert answer["removed"]["shadow_rows"] == 1
    rows = lab.rows.all(lab.service.status()["id"])
    assert ada not in rows and len(rows) == 1


# --- template choices that would change on live traffic (as the backtest reports them) ---

CATALOGUE = [
    TemplateMeta("security-pack", "s", ("security",), (), ()),
    TemplateMeta("pricing-guide", "s", ("pricing",), (), ()),
]
SECURITY_AS_PRICING = (
    DEFAULT_RULES.read_text()
    .replace("url: '/(pricing|plans)'", "url: '/(pricing|plans|security)'")
    .replace("url: '/(security|trust", "url: '/(trust")
)


def _choosing_lab() -> Lab:
    lab = Lab()
    lab.scoring = ShadowScoring(versions=lab.versions, rows=lab.rows, cache_seconds=0,
                                live_rules=lambda: RULES, catalogue=lambda: CATALOGUE)  # fmt: skip
    lab.store.leads._shadow = lab.scoring
    lab.service._catalogue = lambda: CATALOGUE
    return lab


def security_reader(email: str) -> list[Event]:
    identify = Event(f"seg:{email}:i", EventKind.IDENTIFY, NOW - timedelta(minutes=5), "website",
                     email=email)  # fmt: skip
    page = Event(f"seg:{email}:p", EventKind.PAGE, NOW - timedelta(minutes=4), "website", email=email,
                 properties={"path": "/security"})  # fmt: skip
    return [identify, page]


def test_the_shadow_reports_the_template_choices_its_draft_would_change() -> None:
    lab = _choosing_lab()
    lab.service.start({"rules": SECURITY_AS_PRICING, "days": 7}, "mia")

    lab.store.leads.apply_events(security_reader("ada@bigco.example"))

    lead = lab.store.leads.find("ada@bigco.example").lead_id
    changes = lab.service.status()["report"]["template_changes"]
    assert changes is not None
    assert (changes["leads"], changes["changed"]) == (1, 1)
    assert changes["top"] == [{"from": "security-pack", "to": "pricing-guide", "count": 1}]
    [example] = changes["examples"]
    assert example["lead"] == lead
    assert example["published"]["template"] == "security-pack"
    assert "interest security" in example["published"]["why"]
    assert example["draft"]["template"] == "pricing-guide"
    assert "interest pricing" in example["draft"]["why"]
    assert changes["catalogue"] == {"active": 2, "compared": 2}
    assert lab.store.notifier.sent == []  # choosing is not sending


def test_a_lead_the_shadow_would_route_would_no_longer_be_nurtured() -> None:
    lab = _choosing_lab()
    lab.service.start({"rules": DRAFT, "days": 7}, "mia")

    lab.store.leads.apply_events(webinar("ada@bigco.example"))

    changes = lab.service.status()["report"]["template_changes"]
    assert (changes["changed"], changes["sends_to_waits"], changes["waits_to_sends"]) == (1, 1, 0)
    [example] = changes["examples"]
    assert example["published"]["template"] is not None
    assert example["draft"]["template"] is None and "sales owns it" in example["draft"]["why"]


def test_a_later_batch_replaces_the_leads_template_choices() -> None:
    lab = _choosing_lab()
    lab.service.start({"rules": DEFAULT_RULES.read_text(), "days": 7}, "mia")  # the live rules as a shadow

    lab.store.leads.apply_events(security_reader("ada@bigco.example"))
    lab.now += timedelta(minutes=5)
    lab.store.leads.apply_events(webinar("ada@bigco.example"))

    changes = lab.service.status()["report"]["template_changes"]
    assert (changes["leads"], changes["changed"], changes["examples"]) == (1, 0, [])


class _CountedRows(InMemoryShadowRows):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def record(self, shadow_id: str, lead_id: str, row: Any, *, expires_at: datetime) -> None:
        self.writes += 1
        super().record(shadow_id, lead_id, row, expires_at=expires_at)


def page(email: str, n: int, path: str = "/") -> list[Event]:
    return [Event(f"seg:{email}:pv{n}", EventKind.PAGE, NOW + timedelta(minutes=n), "website", email=email,
                  properties={"path": path})]  # fmt: skip


def test_a_batch_that_changes_nothing_the_report_shows_writes_no_row() -> None:
    lab = _choosing_lab()
    counted = _CountedRows()
    lab.rows = lab.scoring._rows = lab.service._rows = counted
    lab.service.start({"rules": DRAFT, "days": 7}, "mia")
    lab.store.leads.apply_events(page("ada@bigco.example", 0))
    assert counted.writes == 1  # a lead's first row is always written

    for n in range(1, 4):  # a page view moves each score by a point: nothing a report would show
        lab.now += timedelta(minutes=2)
        lab.store.leads.apply_events(page("ada@bigco.example", n))
    assert counted.writes == 1

    lab.now += timedelta(minutes=2)
    lab.store.leads.apply_events(page("ada@bigco.example", 9, "/pricing"))  # 8 points: the scores move
    assert counted.writes == 2
    lab.now += timedelta(minutes=2)
    lab.store.leads.apply_events(webinar("ada@bigco.example", 1))  # the shadow would route her
    assert counted.writes == 3
    report = lab.service.status()["report"]
    assert report["routed_by"]["shadow_only"] == 1
    assert report["draft"]["score_distribution"] != {}

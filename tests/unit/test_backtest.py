"""Backtest replay and report on a hand-built history whose answer is known (README "Rules lab"): a draft
that stops treating one request as a hand-raise loses that lead, one that adds another gains a lead, and
each side is judged against what sales did afterwards; the shards replayed apart and merged give the same
report as one replay of everything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.archive import EventArchive, FolderBlobs
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.events import Event, EventKind, internal_id
from chalicelib.domain.lifecycle import State, Trigger
from chalicelib.domain.prospect import Prospect, Transition
from chalicelib.errors import InvalidContent, MalformedInput
from chalicelib.lab.layout import ArchivedEvent, shard_of, slice_of
from chalicelib.usecases.backtest import BacktestJobs, BacktestService
from chalicelib.wiring import DEFAULT_RULES, load_default_rules

DAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PUBLISHED_HAND_RAISES = 'hand_raise_events: ["Demo Requested", "Contact Sales Requested"]'
DRAFT_TEXT = DEFAULT_RULES.read_text().replace(
    PUBLISHED_HAND_RAISES, 'hand_raise_events: ["Demo Requested", "Webinar Attended"]'
)


def _events(lead: str, asked: str, at: datetime) -> list[ArchivedEvent]:
    identify = Event(f"seg:{lead}-i", EventKind.IDENTIFY, at, "segment", email=f"{lead}@bigco.example")
    track = Event(f"seg:{lead}-t", EventKind.TRACK, at + timedelta(hours=2), "segment", name=asked,
                  email=f"{lead}@bigco.example")  # fmt: skip
    return [ArchivedEvent(lead, identify), ArchivedEvent(lead, track)]


def _profile(lead: str, *changes: tuple[State, State, Trigger, str | None]) -> Prospect:
    p = Prospect(lead_id=lead, created_at=DAY, source="segment")
    p.history = [
        Transition(DAY + timedelta(days=n + 1), a, b, trigger, "rep@x.example", reason)
        for n, (a, b, trigger, reason) in enumerate(changes)
    ]
    return p


PROFILES = {
    "won": _profile(
        "won",
        (State.NURTURING, State.SALES_READY, Trigger.HAND_RAISE, None),
        (State.SALES_READY, State.ACCEPTED, Trigger.ACCEPT, None),
        (State.ACCEPTED, State.OPPORTUNITY, Trigger.OPPORTUNITY, None),
        (State.OPPORTUNITY, State.WON, Trigger.WON, None),
    ),
    "bad": _profile(
        "bad",
        (State.NURTURING, State.SALES_READY, Trigger.HAND_RAISE, None),
        (State.SALES_READY, State.NURTURING, Trigger.RECYCLE, "no_need"),
    ),
    "new": _profile("new"),
}
HISTORY = [
    *_events("won", "Demo Requested", DAY),
    *_events("bad", "Contact Sales Requested", DAY + timedelta(days=1)),
    *_events("new", "Webinar Attended", DAY + timedelta(days=2)),
]


@pytest.fixture
def archive(tmp_path: Path) -> EventArchive:
    store = EventArchive(FolderBlobs(tmp_path), retention_days=4000)
    store.write(HISTORY)
    return store


def _service(archive: EventArchive | None, versions: dict[int, str] | None = None) -> BacktestService:
    return BacktestService(
        archive=archive,
        published=load_default_rules,
        rules_source=lambda version: (versions or {})[version],
        profile=PROFILES.get,
        jobs=BacktestJobs(),
        run=lambda work: work(),  # in the caller's thread: the test reads the finished report
        clock=lambda: DAY + timedelta(days=30),
    )


def _report(service: BacktestService, body: dict[str, Any]) -> dict[str, Any]:
    job = service.status(service.start(body)["id"])
    assert job["status"] == "done", job
    assert job["progress"] == 1.0
    return job["report"]


def test_a_draft_that_changes_the_hand_raises_gains_one_lead_and_loses_another(archive: EventArchive) -> None:
    report = _report(_service(archive), {"rules": DRAFT_TEXT, "from": "2026-11-01", "to": "2026-11-30"})
    assert (report["events"], report["leads"]) == (6, 3)
    published, draft = report["published"], report["draft"]
    assert (published["routed"], draft["routed"]) == (2, 2)
    assert [lead["lead"] for lead in report["gained"]["top"]] == ["new"]
    assert [lead["lead"] for lead in report["lost"]["top"]] == ["bad"]
    assert "Webinar Attended" in report["gained"]["top"][0]["why"]
    # Judged against what sales did: the won lead is good, the one recycled as no_need bad, the new unjudged.
    assert published["outcomes"] == {"good": 1, "bad": 1, "unjudged": 0}
    assert draft["outcomes"] == {"good": 1, "bad": 0, "unjudged": 1}
    assert (published["precision"], draft["precision"]) == (0.5, 1.0)
    assert (
        published["won"]
        == draft["won"]
        == {"later_won": 1, "routed": 1, "median_days_routed_before_won": round(4 - 2 / 24, 2)}
    )
    assert published["by_reason"] == {"hand_raise": 2}
    assert published["median_days_first_touch_to_routing"] == round(2 / 24, 2)
    assert report["unjudged_leads"] == 1


def test_a_draft_that_routes_fewer_says_so(archive: EventArchive) -> None:
    fewer = DEFAULT_RULES.read_text().replace(PUBLISHED_HAND_RAISES, 'hand_raise_events: ["Demo Requested"]')
    report = _report(_service(archive), {"rules": fewer, "from": "2026-11-01", "to": "2026-11-30"})
    assert (report["published"]["routed"], report["draft"]["routed"]) == (2, 1)
    assert report["gained"]["count"] == 0 and report["lost"]["count"] == 1


def test_a_saved_version_can_be_the_draft(archive: EventArchive) -> None:
    report = _report(
        _service(archive, {3: DRAFT_TEXT}), {"version": 3, "from": "2026-11-01", "to": "2026-11-30"}
    )
    assert report["gained"]["count"] == 1


def test_an_invalid_draft_is_refused_with_the_rules_problems(archive: EventArchive) -> None:
    broken = DEFAULT_RULES.read_text().replace("  fit: 40", "  fit: lots")
    with pytest.raises(InvalidContent) as refused:
        _service(archive).start({"rules": broken, "from": "2026-11-01", "to": "2026-11-30"})
    assert refused.value.status == 422
    assert any(problem["field"] == "thresholds.fit" and problem["line"] for problem in refused.value.details)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        {"from": "2026-11-01", "to": "2026-11-30"},
        {"rules": DRAFT_TEXT, "version": 1, "from": "2026-11-01", "to": "2026-11-30"},
        {"rules": DRAFT_TEXT, "from": "yesterday", "to": "2026-11-30"},
        {"rules": DRAFT_TEXT, "to": "2026-11-30"},
    ],
)
def test_a_request_without_a_draft_or_window_is_malformed(
    archive: EventArchive, body: dict[str, Any]
) -> None:
    with pytest.raises(MalformedInput):
        _service(archive).start(body)


def test_a_misspelt_field_is_refused_by_name_not_ignored(archive: EventArchive) -> None:
    with pytest.raises(MalformedInput, match="'form'"):
        _service(archive).start(
            {"rules": DRAFT_TEXT, "form": "2026-11-01", "from": "2026-11-01", "to": "2026-11-30"}
        )


def test_a_window_backwards_is_refused(archive: EventArchive) -> None:
    with pytest.raises(InvalidContent):
        _service(archive).start({"rules": DRAFT_TEXT, "from": "2026-11-30", "to": "2026-11-01"})


def test_an_empty_window_says_so(archive: EventArchive) -> None:
    report = _report(_service(archive), {"rules": DRAFT_TEXT, "from": "2025-01-01", "to": "2025-01-31"})
    assert report["empty"] is True
    assert report["events"] == 0
    assert "no archived events" in report["message"]


def _two_devices(lead: str, phone: str, at: datetime) -> list[ArchivedEvent]:
    """What the worker archives for one person on two devices: the phone's visits under the phone's lead,
    the identify on the phone that joins them (applied to the known lead, after the merge), the merge."""
    email = f"{lead}@bigco.example"
    visits = [
        Event(f"seg:{phone}-p{n}", EventKind.PAGE, at + timedelta(hours=1, minutes=n), "segment",
              anonymous_id=f"anon-{phone}", properties={"path": "/pricing"})  # fmt: skip
        for n in range(3)
    ]
    joined = at + timedelta(hours=2)
    identify = Event(f"seg:{lead}-i", EventKind.IDENTIFY, at, "segment", email=email)
    join = Event(f"seg:{phone}-i", EventKind.IDENTIFY, joined, "segment", email=email,
                 anonymous_id=f"anon-{phone}")  # fmt: skip
    demo = Event(f"seg:{lead}-d", EventKind.TRACK, joined + timedelta(minutes=5), "segment",
                 name="Webinar Attended", email=email)  # fmt: skip
    merge = Event(internal_id("merge", f"{phone}:{lead}"), EventKind.IDENTIFY,
                  joined + timedelta(seconds=2), "merge")  # the worker's clock: just after the event
    return [
        ArchivedEvent(lead, identify),
        *[ArchivedEvent(phone, visit) for visit in visits],
        ArchivedEvent(lead, merge),
        ArchivedEvent(lead, join),
        ArchivedEvent(lead, demo),
    ]


# roamer and its phone's lead fall in different shards; kim29 and its phone's in two slices of one shard.
MERGED_HISTORY = [
    *_two_devices("roamer", "roamer-phone", DAY + timedelta(days=3)),
    *_two_devices("kim29", "kim29-phone", DAY + timedelta(days=4)),
]


def test_shards_replayed_apart_and_merged_equal_one_replay(tmp_path: Path) -> None:
    """The AWS path (a Map child per shard and slice, then the merge) reports what one replay does, also
    for leads the worker merged whose halves were archived in different shards or slices."""
    store = EventArchive(FolderBlobs(tmp_path), retention_days=4000)
    store.write([*HISTORY, *MERGED_HISTORY])
    assert shard_of("roamer") != shard_of("roamer-phone")
    assert shard_of("kim29") == shard_of("kim29-phone")
    assert slice_of("kim29", 2) != slice_of("kim29-phone", 2)
    body = {"rules": DRAFT_TEXT, "from": "2026-11-01", "to": "2026-11-30"}
    whole = _report(_choosing(store, catalogue=None), body)
    assert whole["leads"] == 5  # won, bad, new and the two people on two devices: each one lead
    launched: list[dict[str, Any]] = []
    parts = _Parts()
    aws = _choosing(store, jobs=parts, catalogue=None, slices=2,
                    launch=lambda job, payload: launched.append(payload))  # fmt: skip
    job_id = aws.start(body)["id"]
    for item in launched[0]["parts"]:
        aws.run_part(item["job"], item["shard"], item["slice"])
    aws.merge(job_id)
    rows = [row for part in parts.written[job_id].values() for row in part]
    assert sorted(row["lead"] for row in rows) == ["bad", "kim29", "new", "roamer", "won"]
    assert {row["lead"]: row["events"] for row in rows}["roamer"] == 6  # its phone's visits included
    report = aws.status(job_id)["report"]
    assert report == {**whole, "window": report["window"]}


# --- template choices that would change (chalicelib/lab/choices.py) ---

CATALOGUE = [
    TemplateMeta("security-pack", "s", ("security",), (), ()),
    TemplateMeta("pricing-guide", "s", ("pricing",), (), ()),
]
SECURITY_AS_PRICING = (
    DEFAULT_RULES.read_text()
    .replace("url: '/(pricing|plans)'", "url: '/(pricing|plans|security)'")
    .replace("url: '/(security|trust", "url: '/(trust")
)


def _reader(at: datetime) -> list[ArchivedEvent]:
    email = "reader@bigco.example"
    later = at + timedelta(hours=1)
    page = Event(
        "seg:reader-p", EventKind.PAGE, later, "segment", email=email, properties={"path": "/security"}
    )
    identify = Event("seg:reader-i", EventKind.IDENTIFY, at, "segment", email=email)
    return [ArchivedEvent("reader", identify), ArchivedEvent("reader", page)]


@pytest.fixture
def reading(tmp_path: Path) -> EventArchive:
    store = EventArchive(FolderBlobs(tmp_path), retention_days=4000)
    store.write([*HISTORY, *_reader(DAY + timedelta(days=3))])
    return store


def _choosing(archive: EventArchive, **overrides: Any) -> BacktestService:
    fields: dict[str, Any] = {
        "archive": archive,
        "published": load_default_rules,
        "rules_source": lambda version: DEFAULT_RULES.read_text(),
        "profile": PROFILES.get,
        "jobs": BacktestJobs(),
        "run": lambda work: work(),
        "clock": lambda: DAY + timedelta(days=30),
        "catalogue": lambda: CATALOGUE,
    }
    return BacktestService(**{**fields, **overrides})


def test_a_draft_that_moves_an_interest_changes_the_next_template(reading: EventArchive) -> None:
    body = {"rules": SECURITY_AS_PRICING, "from": "2026-11-01", "to": "2026-11-30"}
    changes = _report(_choosing(reading), body)["template_changes"]
    assert changes["leads"] == 4
    assert changes["changed"] == 1
    assert changes["top"] == [{"from": "security-pack", "to": "pricing-guide", "count": 1}]
    [example] = changes["examples"]
    assert example["lead"] == "reader"
    assert example["published"]["template"] == "security-pack"
    assert "interest security" in example["published"]["why"]
    assert example["draft"]["template"] == "pricing-guide"
    assert "interest pricing" in example["draft"]["why"]
    assert changes["catalogue"] == {"active": 2, "compared": 2}


def test_a_lead_the_draft_routes_is_no_longer_nurtured_and_the_report_says_so(reading: EventArchive) -> None:
    body = {"rules": DRAFT_TEXT, "from": "2026-11-01", "to": "2026-11-30"}
    changes = _report(_choosing(reading), body)["template_changes"]
    # "new" is routed by the draft (sales owns it: no email), "bad" no longer is (nurture would write).
    assert (changes["changed"], changes["sends_to_waits"], changes["waits_to_sends"]) == (2, 1, 1)
    by_lead = {example["lead"]: example for example in changes["examples"]}
    assert by_lead["new"]["draft"]["template"] is None
    assert "sales owns it" in by_lead["new"]["draft"]["why"]
    assert by_lead["new"]["published"]["template"] is not None
    assert by_lead["bad"]["published"]["template"] is None
    assert by_lead["bad"]["draft"]["template"] is not None


def test_equal_rules_change_no_template(reading: EventArchive) -> None:
    body = {"rules": DEFAULT_RULES.read_text(), "from": "2026-11-01", "to": "2026-11-30"}
    changes = _report(_choosing(reading), body)["template_changes"]
    assert (changes["leads"], changes["changed"], changes["top"], changes["examples"]) == (4, 0, [], [])


class _Parts(BacktestJobs):
    """The stored jobs' part API in memory (adapters/backtest_jobs.py keeps them in S3)."""

    def __init__(self) -> None:
        super().__init__()
        self.specs: dict[str, dict[str, Any]] = {}
        self.written: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def put_spec(self, job_id: str, spec: dict[str, Any]) -> None:
        self.specs[job_id] = json.loads(json.dumps(spec))  # as it is stored: JSON

    def spec(self, job_id: str) -> dict[str, Any]:
        return self.specs[job_id]

    def put_part(self, job_id: str, part: str, rows: list[dict[str, Any]]) -> None:
        self.written.setdefault(job_id, {})[part] = json.loads(json.dumps(rows))

    def parts_done(self, job_id: str) -> int:
        return len(self.written.get(job_id, {}))

    def parts(self, job_id: str) -> Iterator[list[dict[str, Any]]]:
        yield from self.written.get(job_id, {}).values()


def test_the_shard_functions_choose_from_the_catalogue_the_job_started_with(reading: EventArchive) -> None:
    body = {"rules": SECURITY_AS_PRICING, "from": "2026-11-01", "to": "2026-11-30"}
    in_process = _report(_choosing(reading), body)
    launched: list[dict[str, Any]] = []
    parts, active = _Parts(), list(CATALOGUE)
    aws = _choosing(reading, jobs=parts, catalogue=lambda: active,
                    launch=lambda job, payload: launched.append(payload))  # fmt: skip
    job_id = aws.start(body)["id"]
    active.clear()  # a template paused while the job runs: the shards still judge the job's catalogue
    for item in launched[0]["parts"]:
        aws.run_part(item["job"], item["shard"], item["slice"])
    aws.merge(job_id)
    report = aws.status(job_id)["report"]
    assert report["template_changes"] == in_process["template_changes"]
    assert report["template_changes"]["changed"] == 1

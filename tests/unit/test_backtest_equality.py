"""A backtest of the published rules reproduces what actually happened, lead for lead (issue 14).

A scripted month of traffic (a few dozen prospects: anonymous and identified page views, pricing and security
reads, downloads, webinars, email opens and clicks, hand-raises, a person on two devices) goes through the
LIVE path: SQS batches into the worker's handler with the archive attached as the worker attaches it, on a
settable clock, and sales answers through `LeadService.command` as the API gives them (accept, opportunity,
won, recycle with reasons and revisit dates, disqualify, an SLA that ran out). Then the backtest of the
published rules over the window (`BacktestService`, as the API runs it) must agree with the live profiles:
which leads were routed, when, why, on which path, the final scores, and the report's published counts.

What the replay is designed not to know (README "Rules lab") is shown, not hidden: sales' actions are not
replayed, so a lead sales disqualified before any routing is routed by the replay, and a second routing
after a recycle is not in it (each lead's first routing is).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.archive import EventArchive, FolderBlobs
from chalicelib.adapters.memory import (
    InMemoryActivity,
    InMemoryCounters,
    InMemoryIdentities,
    InMemoryMarks,
    InMemoryProspects,
)
from chalicelib.adapters.notify import Delivery
from chalicelib.adapters.queue import DeadLetters
from chalicelib.domain.events import Event, EventKind, event_to_wire
from chalicelib.domain.lifecycle import State, Trigger
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.routing import LOW_FIT_HAND_RAISE, OPENINGS
from chalicelib.effects.dispatch import Dispatcher
from chalicelib.effects.outbox import NotifyOwner
from chalicelib.entrypoints.worker import handle_sqs_batch
from chalicelib.lab.replay import replay_shard
from chalicelib.usecases.backtest import BacktestJobs, BacktestService
from chalicelib.usecases.leads import LeadService
from chalicelib.wiring import DEFAULT_RULES, load_default_rules

RULES = load_default_rules()
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday
DAYS = 28
LAG = timedelta(seconds=2)  # from the last event of an SQS batch to the worker's decision on it
GATHER = timedelta(seconds=5)  # requests this close together reach the worker in one SQS batch
MAX_RECORDS = 10  # app.py: batch_size=10
ROUTED = (Trigger.QUALIFIED, Trigger.HAND_RAISE)


# --- the live stack: in-memory storage, the worker's handler, the archive in a folder ---


class Notifier:
    def notify(self, summary: dict[str, Any], why: str, lead_url: str, at: datetime) -> list[Delivery]:
        return [Delivery("outbox", True, "held")]


class Workflow:
    def start(self, lead_id: str, run: int, accept_seconds: int, escalate_seconds: int) -> str:
        return f"sla-{lead_id}-{run}"

    def resolve(self, task_token: str, outcome: str) -> bool:
        return True


class ScoredProspects(InMemoryProspects):
    """Keeps the score every live write stored beside the profile (what GET /leads lists)."""

    def __init__(self) -> None:
        super().__init__()
        self.scored: list[tuple[str, datetime, float]] = []  # (lead, when, score) of every write

    def save(
        self,
        prospect: Prospect,
        *,
        score: float,
        now: datetime,
        expected: int | None,
        effects: Any = (),
    ) -> int:
        version = super().save(prospect, score=score, now=now, expected=expected, effects=effects)
        self.scored.append((prospect.lead_id, now, score))
        return version


class Live:
    def __init__(self, folder: Path) -> None:
        self.now = START
        self.prospects = ScoredProspects()
        self.archive = EventArchive(FolderBlobs(folder), retention_days=4000)
        activity, counters = InMemoryActivity(), InMemoryCounters()
        ids = (f"L{n:03d}" for n in itertools.count())
        self.leads = LeadService(
            prospects=self.prospects,
            identities=InMemoryIdentities(),
            activity=activity,
            counters=counters,
            rules=lambda: RULES,
            effects=Dispatcher(
                activity=activity,
                counters=counters,
                ledger=InMemoryMarks(),
                notifier=Notifier(),  # type: ignore[arg-type]
                workflow=Workflow(),  # type: ignore[arg-type]
                rules=lambda: RULES,
                lead_url=lambda lead_id: f"https://leads.example.test/leads/{lead_id}",
            ),
            public_url="https://leads.example.test",
            clock=lambda: self.now,
            new_id=lambda: next(ids),
            pause=lambda seconds: None,
        )
        self.dead_letters = DeadLetters(None, None)
        self.records = itertools.count()
        self.worker_writes: dict[str, tuple[datetime, float]] = {}  # lead -> its last worker write

    def worker(self, requests: list[list[Event]]) -> None:
        """One SQS batch, each request one message, decided at its last event plus the worker's lag."""
        self.now = max(e.at for events in requests for e in events) + LAG
        raw = {
            "Records": [
                {
                    "messageId": f"m-{next(self.records)}",
                    "body": json.dumps({"events": [event_to_wire(e) for e in events]}),
                }
                for events in requests
            ]
        }
        written = len(self.prospects.scored)
        answer = handle_sqs_batch(raw, self.leads, self.dead_letters, self.archive)
        assert answer == {"batchItemFailures": []}
        for lead_id, now, score in self.prospects.scored[written:]:
            self.worker_writes[lead_id] = (now, score)

    def profile(self, lead_id: str) -> Prospect | None:
        stored = self.prospects.get(lead_id)
        return stored.item if stored is not None else None


# --- the script: who does what, when ---

PAGES = {
    "home": "/",
    "features": "/features",
    "pricing": "/pricing",
    "security": "/security",
    "api": "/docs/api",
    "docs": "/docs/getting-started",
    "customers": "/customers",
    "careers": "/careers",
    "blog": "/blog/data-quality",
}


@dataclass
class Person:
    key: str
    kind: str
    start: datetime
    traits: dict[str, Any]
    email: str
    answer: str = ""  # what sales does when the lead reaches them
    devices: list[str] = field(default_factory=list)
    sent: Iterator[int] = field(default_factory=itertools.count)

    def anon(self, device: int = 0) -> str:
        while len(self.devices) <= device:
            self.devices.append(f"anon-{self.key}-{len(self.devices)}")
        return self.devices[device]

    def event(
        self, kind: EventKind, at: datetime, *, identified: bool, device: int = 0, **fields: Any
    ) -> Event:
        return Event(
            message_id=f"seg:{self.key}-{next(self.sent)}",
            kind=kind,
            at=at,
            source="segment" if kind is not EventKind.EMAIL else "sendgrid",
            anonymous_id=self.anon(device) if kind is not EventKind.EMAIL else None,
            email=self.email if identified else None,
            **fields,
        )


def _page(p: Person, at: datetime, page: str, *, identified: bool, device: int = 0) -> Event:
    path = PAGES[page]
    properties = {"path": path, "url": f"https://www.example.test{path}", "title": page}
    return p.event(EventKind.PAGE, at, identified=identified, device=device, name=page, properties=properties)


class Script:
    """Requests (each a list of events one client call sent) in time order."""

    def __init__(self, seed: int = 14) -> None:
        self.random = random.Random(seed)
        self.requests: list[tuple[datetime, int, list[Event]]] = []
        self.order = itertools.count()
        self.people: dict[str, Person] = {}

    def send(self, *events: Event) -> None:
        self.requests.append((max(e.at for e in events), next(self.order), list(events)))

    def session(
        self, p: Person, day: int, pages: list[str], *, identified: bool = True, device: int = 0
    ) -> datetime:
        """Page views 20 to 90 s apart, each its own request (analytics.js sends pages as they happen)."""
        at = p.start + timedelta(days=day)
        for page in pages:
            self.send(_page(p, at, page, identified=identified, device=device))
            at += timedelta(seconds=self.random.randint(20, 90))
        return at

    def identify(
        self, p: Person, at: datetime, *then: tuple[str, dict[str, Any]], device: int = 0
    ) -> datetime:
        """A form: the identify and what it was for (a download, a demo request) in one call."""
        events = [p.event(EventKind.IDENTIFY, at, identified=True, device=device, traits=p.traits)]
        for name, props in then:
            events.append(p.event(EventKind.TRACK, at + timedelta(seconds=1), identified=True, device=device,
                                  name=name, properties=props))  # fmt: skip
        self.send(*events)
        return at + timedelta(seconds=30)

    def track(self, p: Person, at: datetime, name: str, **props: Any) -> datetime:
        self.send(p.event(EventKind.TRACK, at, identified=True, name=name, properties=props))
        return at + timedelta(seconds=45)

    def email(self, p: Person, at: datetime, *outcomes: str) -> None:
        template = "security-checklist"
        for n, outcome in enumerate(outcomes):
            props: dict[str, Any] = {"template": template, "provider": "sendgrid"}
            if outcome == "clicked":
                props["url"] = "https://www.example.test/security"
            self.send(p.event(EventKind.EMAIL, at + timedelta(minutes=7 * n), identified=True, name=outcome,
                              properties=props))  # fmt: skip


BUYER_TRAITS = [
    {
        "title": "VP Engineering",
        "company": "BigCo",
        "company_size": 400,
        "country": "US",
        "industry": "software",
    },
    {
        "title": "Head of Data",
        "company": "Shopful",
        "company_size": 1200,
        "country": "GB",
        "industry": "ecommerce",
    },
    {
        "title": "Data Engineer",
        "company": "Medix",
        "company_size": 250,
        "country": "DE",
        "industry": "healthcare",
    },
    {"title": "CTO", "company": "Payly", "company_size": 90, "country": "CA", "industry": "fintech"},
]
ANSWERS = ["won", "not_ready", "accepted", "no_budget", "disqualify", "sla", "unworked", "won", "no_need"]


def build_script() -> Script:
    s = Script()
    rnd = s.random
    n = itertools.count()

    def person(kind: str, traits: dict[str, Any], email: str, day: int) -> Person:
        i = next(n)
        start = START + timedelta(days=day, hours=1 + (i * 5) % 8, minutes=(i * 13) % 60)
        p = Person(f"p{i:02d}", kind, start, traits, email, ANSWERS[i % len(ANSWERS)])
        s.people[p.key] = p
        return p

    for i in range(12):  # researchers who come back and qualify on score and recent intent
        p = person("buyer", dict(BUYER_TRAITS[i % 4]), f"buyer{i}@co{i}.example", rnd.randint(0, 12))
        s.session(p, 0, ["home", "features", "pricing"], identified=False)
        at = s.session(p, 1, ["customers", "blog"], identified=False)
        at = s.identify(p, at, ("Content Downloaded", {"asset_name": "Pricing guide", "topic": "pricing"}))
        s.email(p, at + timedelta(hours=3), "delivered", "opened", "clicked")
        # A week later (days 0 and 1 are the history a score route asks for: intent.earlier_days)
        s.session(p, 10, ["pricing", "security", "api", "docs"])
        s.session(p, 11 + i % 2, ["pricing", "security", "api", "pricing"])
        s.session(p, 13, ["features", "customers"])
        if i % 3 == 0:  # keeps coming back after sales had them: a recycle may send them back
            s.session(p, 19, ["pricing", "security", "api"])
            s.session(p, 20, ["pricing", "security", "api", "customers"])
            s.track(
                p,
                p.start + timedelta(days=20, hours=2),
                "Webinar Attended",
                webinar_name="Pricing for data teams",
            )
    for i in range(8):  # hand-raisers
        p = person("hand", dict(BUYER_TRAITS[(i + 1) % 4]), f"asker{i}@firm{i}.example", rnd.randint(0, 20))
        at = s.session(p, 0, ["home", "pricing"] if i % 2 else ["features"], identified=False)
        s.identify(p, at, ("Demo Requested" if i % 3 else "Contact Sales Requested", {"source": "form"}))
        s.session(p, 2, ["docs", "api"])
    for i in range(3):  # low fit, asking all the same
        traits = {"title": "Student", "company": "State University"}
        p = person("lowfit", traits, f"student{i}@gmail.com", rnd.randint(0, 20))
        at = s.session(p, 0, ["pricing"], identified=False)
        s.identify(p, at, ("Demo Requested", {"source": "form"}))
    for i in range(6):  # readers: engaged, never enough
        traits = {"title": "Marketing Coordinator", "company": f"Small{i}", "company_size": 12}
        p = person("reader", traits, f"reader{i}@small{i}.example", rnd.randint(0, 18))
        at = s.session(p, 0, ["blog", "features"], identified=False)
        at = s.identify(p, at, ("Content Downloaded", {"asset_name": "Data quality ebook"}))
        s.email(p, at + timedelta(days=2), "delivered", "opened")
        s.track(p, p.start + timedelta(days=5), "Webinar Attended", webinar_name="Data quality 101")
    for i in range(4):  # anonymous visitors
        p = person("anon", {}, f"never{i}@nowhere.example", rnd.randint(0, 25))
        s.session(p, 0, ["home", "pricing", "blog"], identified=False)
        s.session(p, 1, ["pricing", "security"], identified=False)
    for i in range(2):  # job seekers
        traits = {"title": "Open to work", "company": "None"}
        p = person("seeker", traits, f"seeker{i}@mail{i}.example", rnd.randint(0, 20))
        at = s.session(p, 0, ["careers", "features", "careers"], identified=False)
        s.identify(p, at)
        s.session(p, 2, ["careers", "pricing"])
    for i in range(
        3
    ):  # one person, two devices: the second is merged into the first when they identify on it
        p = person("two_devices", dict(BUYER_TRAITS[i % 4]), f"roamer{i}@roam{i}.example", rnd.randint(0, 12))
        at = s.session(p, 0, ["home", "pricing"], identified=False)
        s.identify(p, at)
        s.session(p, 2, ["pricing", "security", "api"], identified=False, device=1)
        # A week later (days 0 and 2, merged, are the history a score route asks for: intent.earlier_days)
        at = s.session(p, 9, ["pricing", "security"], identified=False, device=1)
        s.identify(p, at, device=1)
        # A buyer's week: price and whether it fits (security, API, docs, customers), past recent_points
        s.session(p, 10, ["pricing", "api", "security", "docs", "customers", "pricing"], device=1)
    for i in range(2):  # sales disqualify them before any routing (a competitor): they then read everything
        p = person("competitor", dict(BUYER_TRAITS[i % 4]), f"spy{i}@rival{i}.example", rnd.randint(0, 12))
        p.answer = "disqualify_early"
        at = s.session(p, 0, ["home", "features"], identified=False)
        s.identify(p, at)
        s.session(p, 1, ["blog"])  # days 0 and 1: the history a score route asks for (intent.earlier_days)
        s.session(p, 10, ["pricing", "security", "api"])
        s.session(p, 11, ["pricing", "security", "api", "pricing"])
    s.requests.sort(key=lambda r: (r[0], r[1]))
    return s


# --- driving it: the worker's batches and sales' answers, on one timeline ---

PLANS: dict[str, list[tuple[timedelta, str, dict[str, Any]]]] = {
    "won": [
        (timedelta(hours=2), "accept", {}),
        (timedelta(days=3), "opportunity", {"amount": 30000}),
        (timedelta(days=9), "won", {"amount": 30000}),
    ],
    "accepted": [(timedelta(hours=1), "accept", {})],
    "not_ready": [(timedelta(hours=3), "recycle", {"reason": "not_ready", "revisit_in_days": 5})],
    "no_need": [(timedelta(hours=3), "recycle", {"reason": "no_need"})],
    "no_budget": [
        (timedelta(hours=1), "accept", {}),
        (timedelta(days=2), "recycle", {"reason": "no_budget"}),
    ],
    "disqualify": [(timedelta(hours=5), "disqualify", {"reason": "not a buyer"})],
    "sla": [(timedelta(seconds=RULES.sla.accept_after + 60), "sla_expired", {})],
    "unworked": [],
}
GOOD, BAD = {"won", "accepted", "no_budget"}, {"not_ready", "no_need", "disqualify", "sla"}


@dataclass
class History:
    live: Live
    script: Script
    lead_of: dict[str, str]  # person key -> surviving lead id
    answered: dict[str, str]  # lead id -> the plan sales followed on its first routing


def run_history(folder: Path) -> History:
    live, script = Live(folder), build_script()
    by_email = {p.email: p for p in script.people.values()}
    timeline: list[tuple[datetime, int, str, Any]] = [
        (at, seq, "request", ev) for at, seq, ev in script.requests
    ]
    heapq.heapify(timeline)
    order = itertools.count(len(script.requests))
    answered: dict[str, str] = {}
    seen_writes = 0
    for p in script.people.values():
        if p.answer == "disqualify_early":
            heapq.heappush(timeline, (p.start + timedelta(days=1, hours=2), next(order), "early", p))
    while timeline:
        at, _, kind, item = heapq.heappop(timeline)
        if kind == "request":
            batch = [item]
            while (
                timeline
                and timeline[0][2] == "request"
                and timeline[0][0] - at <= GATHER
                and len(batch) < MAX_RECORDS
            ):
                batch.append(heapq.heappop(timeline)[3])
            live.worker(batch)
        elif kind == "early":
            live.now = at
            live.leads.command(item.email, "disqualify", {"reason": "competitor"}, "rep@example.com")
        elif kind == "sla_expired":
            sla = Event(f"sla:{item}:{at.isoformat()}", EventKind.SALES, at, "sla-workflow",
                        name="sla_expired", lead_id=item, properties={"actor": "sla"})  # fmt: skip
            live.worker([[sla]])
        else:
            live.now = at
            lead_id, action, args = item
            live.leads.command(lead_id, action, args, "rep@example.com")
        # Sales answer each lead the first time it reaches them, as its person's plan says.
        for write in live.prospects.writes[seen_writes:]:
            if not any(isinstance(e, NotifyOwner) for e in write.effects) or write.lead_id in answered:
                continue
            person = by_email[write.prospect.email or ""]
            answered[write.lead_id] = person.answer
            for delay, action, args in PLANS.get(person.answer, []):
                if action == "sla_expired":
                    heapq.heappush(timeline, (live.now + delay, next(order), "sla_expired", write.lead_id))
                else:
                    heapq.heappush(
                        timeline, (live.now + delay, next(order), "sales", (write.lead_id, action, args))
                    )
        seen_writes = len(live.prospects.writes)
    lead_of = {key: live.leads.find(p.email).lead_id for key, p in script.people.items() if p.kind != "anon"}
    return History(live, script, lead_of, answered)


# --- what the live run decided, read from the profiles it left ---


@dataclass(frozen=True)
class Decision:
    routed_at: datetime | None
    reason: str | None
    why: str | None
    score: float


def path_of(trigger: Trigger, why: str | None) -> str:
    """The path a routing took, as the report names it (a low-fit hand-raise is flagged in its why)."""
    if why and why.startswith(OPENINGS[LOW_FIT_HAND_RAISE]):
        return LOW_FIT_HAND_RAISE
    return trigger.value


def live_decisions(history: History) -> dict[str, Decision]:
    found: dict[str, Decision] = {}
    for lead_id in history.live.prospects.ids():
        p = history.live.profile(lead_id)
        assert p is not None
        routings = [t for t in p.history if t.trigger in ROUTED and t.to_state is State.SALES_READY]
        first = routings[0] if routings else None
        score = history.live.worker_writes[lead_id][1]  # as of its last event (sales' writes rescore later)
        found[lead_id] = Decision(
            first.at if first else None,
            path_of(first.trigger, first.reason) if first else None,
            first.reason if first else None,
            score,
        )
    return found


def backtest(history: History) -> dict[str, Any]:
    service = BacktestService(
        archive=history.live.archive,
        published=lambda: RULES,
        rules_source=lambda version: DEFAULT_RULES.read_text(),
        profile=history.live.profile,
        jobs=BacktestJobs(),
        run=lambda work: work(),
        clock=lambda: history.live.now,
    )
    end = START + timedelta(days=60)
    body = {
        "rules": DEFAULT_RULES.read_text(),
        "from": START.date().isoformat(),
        "to": end.date().isoformat(),
    }
    job = service.status(service.start(body)["id"])
    assert job["status"] == "done", job
    return job["report"]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return run_history(tmp_path_factory.mktemp("archive"))


def replayed(history: History) -> dict[str, dict[str, Any]]:
    """The backtest's rows, read from the archive as the in-process job reads it."""
    archive = history.live.archive
    items = list(archive.read(archive.shard_keys(START.date(), (START + timedelta(days=60)).date())))
    return {row["lead"]: row["published"] for row in replay_shard(items, RULES, RULES)}


def design_limits(history: History) -> set[str]:
    """Leads sales disqualified before any routing: the replay, which does not replay sales, routes them."""
    return {history.lead_of[p.key] for p in history.script.people.values() if p.answer == "disqualify_early"}


def test_the_replay_of_the_published_rules_decides_as_the_live_worker_did_lead_for_lead(
    history: History,
) -> None:
    live, rows = live_decisions(history), replayed(history)
    # One row per live lead: the halves of a person who used two devices are one lead, as live.
    assert sorted(rows) == sorted(live)
    assert sum(1 for d in live.values() if d.routed_at) >= 25  # the script routes most paths, not a few
    assert {d.reason for d in live.values()} == {None, "qualified", "hand_raise", "low_fit_hand_raise"}
    limits = design_limits(history)
    for lead_id, decided in live.items():
        row = rows[lead_id]
        replay_at = datetime.fromisoformat(row["routed_at"]) if row["routed_at"] else None
        if lead_id in limits:
            assert decided.routed_at is None and replay_at is not None, lead_id
            continue
        assert (replay_at is None) == (decided.routed_at is None), (lead_id, decided, row)
        if decided.routed_at is not None and replay_at is not None:
            # Live decides when the worker runs (a few seconds after the event); the replay at the event.
            assert timedelta(0) <= decided.routed_at - replay_at <= LAG + GATHER, (lead_id, decided, row)
        assert (row["reason"], row["why"]) == (decided.reason, decided.why), lead_id
        assert row["score"] == decided.score, lead_id


def test_a_second_routing_after_a_recycle_is_not_in_the_replay_the_first_is(history: History) -> None:
    rows = replayed(history)
    again = {}
    for lead_id in history.live.prospects.ids():
        p = history.live.profile(lead_id)
        assert p is not None
        routings = [t.at for t in p.history if t.trigger in ROUTED and t.to_state is State.SALES_READY]
        if len(routings) > 1:
            again[lead_id] = routings
    # Sales sent them back (recycled, or the SLA ran out) and their interest brought them back: live routed
    # them twice; the replay, which does not replay what sales did, keeps them with sales after the first.
    sent_back = ("not_ready", "no_need", "no_budget", "sla")
    assert again and all(history.answered[lead_id] in sent_back for lead_id in again)
    for lead_id, routings in again.items():
        replay_at = datetime.fromisoformat(rows[lead_id]["routed_at"])
        assert timedelta(0) <= routings[0] - replay_at <= LAG + GATHER  # the first routing, never the second


def _week(at: datetime) -> str:
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def test_the_report_of_the_published_rules_counts_what_happened_live(history: History) -> None:
    report = backtest(history)
    live = live_decisions(history)
    limits = design_limits(history)
    routed = {lead: d for lead, d in live.items() if d.routed_at is not None}
    # What the script had sales do, judged as README says (accepted first is good whatever came later).
    verdicts = Counter(
        "good" if history.answered[lead] in GOOD else "bad" if history.answered[lead] in BAD else "unjudged"
        for lead in routed
    )
    assert verdicts["good"] and verdicts["bad"] and verdicts["unjudged"]
    published = report["published"]
    # The replay also routes the leads sales disqualified before any routing (judged bad: it sent them).
    assert published["routed"] == len(routed) + len(limits)
    assert published["outcomes"] == {**verdicts, "bad": verdicts["bad"] + len(limits)}
    limited = replayed(history)
    weeks = Counter(_week(d.routed_at) for d in routed.values() if d.routed_at)
    weeks.update(_week(datetime.fromisoformat(limited[lead]["routed_at"])) for lead in limits)
    assert published["by_week"] == dict(sorted(weeks.items()))
    reasons = Counter(d.reason for d in routed.values()) + Counter(limited[lead]["reason"] for lead in limits)
    assert published["by_reason"] == dict(sorted(reasons.items()))
    won = {
        lead: next(t.at for t in p.history if t.to_state is State.WON)
        for lead in routed
        if (p := history.live.profile(lead)) is not None and p.state is State.WON
    }
    assert published["won"]["later_won"] == published["won"]["routed"] == len(won) > 0
    scores = Counter(int(d.score // 10) * 10 for d in live.values())
    assert published["score_distribution"] == {f"{low}..{low + 10}": n for low, n in sorted(scores.items())}
    # The same rules on both sides: nothing gained, nothing lost.
    assert report["draft"] == published
    assert report["gained"]["count"] == report["lost"]["count"] == 0
    assert report["leads"] == len(live)

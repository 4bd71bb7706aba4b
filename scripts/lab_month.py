"""A scripted month for the rules lab (issue #14): traffic, sales outcomes, a draft backtested and shadowed.

`month` builds a seeded population that behaves like a B2B site's visitors over the last 30 days — buyers who
research and then get ready (some ask for a demo), researchers who are not buying yet, poor fits, competitors,
students and job seekers — as Segment calls with their real timestamps. `play` sends it through a running
Leadloop (any `Lab`: the local stack over HTTP in scripts/lab_demo.py, the in-process loop in
tests/e2e/test_lab_month.py), answers every lead the live rules sent to sales the way a rep who learns the
truth would (accept and win the buyers, recycle the rest, disqualify competitors), then asks the rules lab
what a draft that raises the engagement threshold would have done over the month, and shows the same draft
in shadow mode on a week of live traffic. Every number it prints comes from Leadloop's own answers.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

BATCH = 100  # events per /v1/batch request at most
SHADOW_READ_S = 30  # how stale a worker's view of the shadow may be (README "Shadow mode")
BURST = timedelta(seconds=4)  # events this close are sent (and decided) together
KINDS = (("buyer", 0.25), ("researcher", 0.25), ("poor_fit", 0.2), ("competitor", 0.1), ("not_a_buyer", 0.2))
RESEARCH = ("/blog/data-pipelines", "/docs", "/docs/getting-started", "/customers", "/features/reporting",
            "/case-studies/retail", "/blog/metrics")  # fmt: skip
INTENT = ("/pricing", "/plans", "/security", "/trust", "/integrations", "/docs/api")
CAREERS = ("/careers", "/jobs/data-engineer", "/docs", "/blog/data-pipelines")
RIVALS = ("rival-analytics.example", "copycat-metrics.example")


@dataclass
class Person:
    """One scripted visitor: what they are (hidden from Leadloop), who they say they are, what they do."""

    kind: str
    email: str
    anonymous_id: str
    traits: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)


class Lab(Protocol):
    """How `play` reaches Leadloop: the tracking API and the sales/marketing API as one role or another."""

    def track(self, batch: list[dict[str, Any]]) -> None: ...

    def call(self, role: str, method: str, path: str, body: Any = None) -> tuple[int, Any]: ...

    def caught_up(self) -> None:
        """Return once the worker has applied everything sent so far."""


class Month(Protocol):
    """Where the month is played: a worker whose clock follows the events (the worker decides at the time
    it runs, so a month sent in a minute would be judged a month late, its points decayed)."""

    def play_at(self, at: datetime, batch: list[dict[str, Any]]) -> None:
        """Send `batch` through the tracking API and apply it, with the worker's clock at `at`."""


class SimulatedClock:
    """A clock the month's worker reads (`wiring.utc_now` replaced): the time of the batch it applies, or
    the real time when nothing is being played."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or datetime.now(UTC)


class InProcessMonth:
    """`Month` on this process's own app.py: the tracking route through chalice's test client, the queue
    (`queue_url`, one no deployed worker reads) drained by hand into the worker handler, as Lambda would.
    `after` runs once a batch is applied (the test drains the table's stream there; the local stack's own
    poller does it)."""

    def __init__(self, client: Any, sqs: Any, queue_url: str, clock: SimulatedClock, *,
                 write_auth: str, after: Callable[[], object] = lambda: None) -> None:  # fmt: skip
        self.client, self.sqs, self.queue_url, self.clock = client, sqs, queue_url, clock
        self.write_auth, self.after = write_auth, after

    def play_at(self, at: datetime, batch: list[dict[str, Any]]) -> None:
        import app  # the stack's environment is set before this runs

        self.clock.at = at
        try:
            headers = {"Authorization": self.write_auth, "Content-Type": "application/json"}
            answer = self.client.http.post("/v1/batch", headers=headers, body=json.dumps({"batch": batch}))
            if answer.status_code != 200:
                raise RuntimeError(f"POST /v1/batch answered {answer.status_code}: {answer.body!r}")
            while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                records = [_sqs_record(m) for m in messages]
                result = app.apply_events({"Records": records}, _Context())
                if result["batchItemFailures"]:
                    raise RuntimeError(f"the worker failed records: {result['batchItemFailures']}")
                for message in messages:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            self.after()
        finally:
            self.clock.at = None


class _Context:
    function_name = "apply_events"
    aws_request_id = "lab-month"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:lab-month",
        "awsRegion": "us-east-1",
    }


def month(seed: int, people: int, end: datetime, days: int = 30, run: str = "") -> list[Person]:
    """`people` visitors over the `days` before `end`, the same for the same seed; `run` tells one run's
    people from another's on a stack that keeps its data (the same ids again would be duplicates)."""
    rng = random.Random(seed)
    kinds, weights = [kind for kind, _ in KINDS], [weight for _, weight in KINDS]
    cast = [_person(rng, n, rng.choices(kinds, weights)[0], f"{run}{seed}") for n in range(people)]
    start = end - timedelta(days=days)
    for person in cast:
        _behave(rng, person, start, days)
    return cast


def batches(cast: Iterable[Person], size: int = BATCH) -> list[list[dict[str, Any]]]:
    """Everyone's events in time order, as a worker that keeps up receives them: a batch holds the events of
    a few seconds (`BURST`), at most `size`. (A backlog decides later: the rules lab replays each pause of
    more than 5 s as its own decision, as the live worker makes it when it keeps up.)"""
    events = sorted((e for p in cast for e in p.events), key=lambda e: (e["timestamp"], e["messageId"]))
    out: list[list[dict[str, Any]]] = []
    for event in events:
        at = datetime.fromisoformat(event["timestamp"])
        if out and len(out[-1]) < size and at - datetime.fromisoformat(out[-1][0]["timestamp"]) < BURST:
            out[-1].append(event)
        else:
            out.append([event])
    return out


def answers(kind: str, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """What a rep who called the lead does, given what the lead really is."""
    if kind == "buyer":
        steps: list[tuple[str, dict[str, Any]]] = [
            ("accept", {"owner": "sam"}),
            ("opportunity", {"amount": 24000}),
        ]
        return steps + ([("won", {"amount": 24000})] if rng.random() < 0.6 else [])
    if kind == "researcher":
        return [("recycle", {"reason": "not_ready", "note": "researching", "revisit_in_days": 60})]
    if kind == "poor_fit":
        return [("recycle", {"reason": "no_budget", "note": "too small"})]
    if kind == "competitor":
        return [("disqualify", {"reason": "Competitor", "competitor": True})]
    return [("disqualify", {"reason": "Not a buyer"})]


def raise_threshold(rules_text: str, engagement: int) -> str:
    """The rules text with `thresholds.engagement` set to `engagement`; ValueError when there is none."""
    pattern = re.compile(r"^(thresholds:\s*\n(?:[ \t]+\S.*\n)*?[ \t]+engagement:[ \t]*)(\d+(?:\.\d+)?)", re.M)
    if not pattern.search(rules_text):
        raise ValueError("the published rules have no `thresholds: engagement:` line to raise")
    return pattern.sub(lambda m: f"{m.group(1)}{engagement}", rules_text, count=1)


def play(lab: Lab, month_at: Month, *, seed: int = 7, people: int = 300, engagement: int = 80,
         now: datetime | None = None, run: str | None = None, say: Callable[[str], None] = print,
         shadow_wait: Callable[[], None] = lambda: time.sleep(SHADOW_READ_S + 1),
         poll: Callable[[], None] = lambda: time.sleep(0.2)) -> dict[str, Any]:  # fmt: skip
    """The whole story; answers what it printed, as numbers (tests read them)."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    cast = month(seed, people, now - timedelta(hours=1), run=run if run is not None else uuid.uuid4().hex[:6])
    sent = batches(cast)
    say(
        f"1. A month of traffic: {people} visitors, {sum(map(len, sent))} Segment calls, {len(sent)} requests"
    )
    for n, batch in enumerate(sent, 1):
        month_at.play_at(datetime.fromisoformat(batch[-1]["timestamp"]) + timedelta(seconds=1), batch)
        if n % max(1, len(sent) // 10) == 0 and n < len(sent):
            say(f"   ... {n} of {len(sent)} requests applied, up to {batch[-1]['timestamp'][:10]}")

    kinds = {p.email: p.kind for p in cast}
    routed = [lead for lead in _sales_ready(lab) if lead.get("email") in kinds]  # this run's people only
    say(f"2. The live rules sent sales {len(routed)} leads this month; sales answers each:")
    rng, tally = random.Random(seed + 1), dict[str, int]()
    for lead in routed:
        kind = kinds[str(lead["email"])]
        for action, body in answers(kind, rng):
            status, answer = lab.call("sales", "POST", f"/leads/{lead['id']}/{action}", body)
            if status != 200:
                raise RuntimeError(f"{action} {lead['id']} answered {status}: {answer}")
            tally[action] = tally.get(action, 0) + 1
    say("   " + ", ".join(f"{action} {count}" for action, count in sorted(tally.items())))
    lab.caught_up()

    status, rules = lab.call("marketing", "GET", "/rules")
    draft = raise_threshold(str(rules["source"]), engagement)
    window = {"from": (now - timedelta(days=31)).date().isoformat(), "to": now.date().isoformat()}
    say(
        f"3. Backtest: the engagement threshold raised to {engagement}, over {window['from']}..{window['to']}"
    )
    started = time.monotonic()
    status, job = lab.call("marketing", "POST", "/rules/backtest", {"rules": draft, **window})
    if status != 202:
        raise RuntimeError(f"POST /rules/backtest answered {status}: {job}")
    while job.get("status") not in ("done", "failed"):
        poll()
        status, job = lab.call("marketing", "GET", f"/rules/backtest/{job['id']}")
    if job["status"] != "done":
        raise RuntimeError(f"the backtest failed: {job.get('error')}")
    report = job["report"]
    say(f"   read in {time.monotonic() - started:.1f} s: {report['events']} archived events, "
        f"{report['leads']} leads")  # fmt: skip
    for line in _comparison(report, live=len(routed)):
        say("   " + line)

    say("4. Shadow mode: the same draft beside the live rules for 7 days, then a week of live traffic")
    status, shadow = lab.call("marketing", "PUT", "/rules/shadow", {"rules": draft, "days": 7})
    if status not in (200, 201):
        raise RuntimeError(f"PUT /rules/shadow answered {status}: {shadow}")
    say(f"   (waiting {SHADOW_READ_S} s: a worker reads the shadow at most that often)")
    shadow_wait()
    for batch in batches(_live(cast, now, random.Random(seed + 2))):
        lab.track(batch)
    lab.caught_up()
    status, shadow = lab.call("marketing", "GET", "/rules/shadow")
    live_report = shadow.get("report") or {}
    say(f"   routed by: {live_report.get('routed_by')}")
    for line in _comparison(live_report, live=None):
        say("   " + line)
    lab.call("marketing", "DELETE", "/rules/shadow")
    say("   (shadow discarded: the published rules are unchanged)")
    return {"live_routed": len(routed), "sales": tally, "backtest": report, "shadow": shadow}


def _comparison(report: dict[str, Any], *, live: int | None) -> list[str]:
    if not report or report.get("empty", True):
        return [str((report or {}).get("message", "nothing to compare yet"))]
    published, draft = report["published"], report["draft"]
    lines = []
    if live is not None:
        lines.append(f"live: {live} of this month's people reached sales; the published rules, replayed over "
                     f"every lead archived in the window: {published['routed']}")  # fmt: skip
    for name, side in (("published", published), ("draft", draft)):
        won = side["won"]
        lines.append(f"{name:>9}: routes {side['routed']} (precision {side['precision']}, good/bad/unjudged "
                     f"{side['outcomes']['good']}/{side['outcomes']['bad']}/{side['outcomes']['unjudged']}); "
                     f"routed {won['routed']} of the {won['later_won']} leads later won")  # fmt: skip
    lines.append(f"the draft sends sales {published['routed'] - draft['routed']} fewer leads: gains "
                 f"{report['gained']['count']}, loses {report['lost']['count']}")  # fmt: skip
    for lead in report["lost"]["top"][:3]:
        lines.append(f"  lost {lead['lead']}: {lead['why']}")
    return lines


def _sales_ready(lab: Lab) -> list[dict[str, Any]]:
    leads, cursor = [], None
    while True:
        query = "/leads?state=sales_ready&limit=100" + (f"&cursor={cursor}" if cursor else "")
        status, page = lab.call("sales", "GET", query)
        if status != 200:
            raise RuntimeError(f"GET /leads answered {status}: {page}")
        leads.extend(page["leads"])
        cursor = page.get("next_cursor")
        if not cursor:
            return leads


def _live(cast: Sequence[Person], now: datetime, rng: random.Random) -> list[Person]:
    """The week after: the month's buyers and researchers come back for a session of intent pages each (4
    to 8: price and whether it fits, the week a score route asks for), in the coming minute (shadow mode
    scores events as they arrive)."""
    week = []
    for n, person in enumerate(p for p in cast if p.kind in ("buyer", "researcher")):
        again = Person(person.kind, person.email, person.anonymous_id, person.traits)
        at = now + timedelta(seconds=n % 50)
        for m, path in enumerate(rng.choice(INTENT) for _ in range(rng.randint(4, 8))):
            again.events.append(
                _call(again, at + timedelta(milliseconds=m), "page", properties={"path": path})
            )
            again.events[-1]["messageId"] = f"{person.anonymous_id}-live-{m}"
        week.append(again)
    return week


def _person(rng: random.Random, n: int, kind: str, run: str) -> Person:
    tag = f"{run}-{n:04d}"
    company = {
        "name": f"Company {n}",
        "employee_count": rng.choice([120, 400, 900, 2500]),
        "industry": "software",
    }
    title = rng.choice(
        ["VP Data", "Director of Analytics", "Head of Data", "Data Engineer", "Analytics Lead"]
    )
    email, country = f"p{tag}@company{n}.example", "US"
    if kind == "poor_fit":
        company = {"name": f"Shop {n}", "employee_count": rng.choice([3, 8, 15]), "industry": "retail"}
        title, country = rng.choice(["Owner", "Assistant", "Office Manager"]), rng.choice(["BR", "IN", "ZA"])
        email = f"p{tag}@shop{n}.example"
    elif kind == "competitor":
        company = {"name": "Rival", "employee_count": 300, "industry": "software"}
        email = f"p{tag}@{RIVALS[n % len(RIVALS)]}"
    elif kind == "not_a_buyer":
        company, title = {}, rng.choice(["Student", "Job seeker", ""])
        email = f"p{tag}@" + rng.choice(["gmail.com", "university.edu"])
    traits = {"email": email, "title": title, "company": company, "address": {"country": country}}
    return Person(kind, email, f"anon-{tag}", {k: v for k, v in traits.items() if v})


def _behave(rng: random.Random, person: Person, start: datetime, days: int) -> None:
    first = rng.uniform(0, max(days - 8, 0.5))
    ready = first + rng.uniform(5, 12) if person.kind == "buyer" else None
    identify_at = first + rng.uniform(0, 6) if rng.random() < 0.75 else None
    asks = (
        person.kind == "buyer" and rng.random() < 0.35 or person.kind == "competitor" and rng.random() < 0.2
    )
    day, sessions = first, 0
    while day < days or sessions == 0:
        is_ready = ready is not None and day >= ready
        pages = _pages(rng, person.kind, is_ready)
        at = start + timedelta(days=day)
        for path in pages:
            person.events.append(_call(person, at, "page", properties={"path": path}))
            at += timedelta(seconds=rng.randint(20, 180))
        if identify_at is not None and day >= identify_at:
            person.events.append(_call(person, at, "identify", userId=person.email, traits=person.traits))
            identify_at = None
        if is_ready and asks and rng.random() < 0.3:
            person.events.append(_call(person, at + timedelta(seconds=30), "track", event="Demo Requested"))
            asks = False
        sessions += 1
        day += rng.uniform(0.5, 1.5) if is_ready else rng.uniform(1, 4)


def _pages(rng: random.Random, kind: str, ready: bool) -> list[str]:
    if kind == "not_a_buyer":
        return rng.sample(CAREERS, rng.randint(1, 3))
    intent_share = {"competitor": 0.5, "buyer": 0.55 if ready else 0.25, "researcher": 0.4}.get(kind, 0.1)
    count = rng.randint(2, 5) if ready or kind == "competitor" else rng.randint(1, 4)
    return [rng.choice(INTENT) if rng.random() < intent_share else rng.choice(RESEARCH) for _ in range(count)]


def _call(person: Person, at: datetime, kind: str, **fields: Any) -> dict[str, Any]:
    n = len(person.events)
    return {"type": kind, "messageId": f"{person.anonymous_id}-{n}", "anonymousId": person.anonymous_id,
            "timestamp": at.replace(microsecond=0).isoformat(), **fields}  # fmt: skip

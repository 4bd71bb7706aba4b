"""Drives Leadloop's real product code through one simulated population on a simulated clock.

Built as `chalicelib.wiring` builds it, on the in-memory adapters (`chalicelib.adapters.memory`): the real
LeadService and NurtureService, the default rules, the shipped templates, a recording mailer and notifier.
Tracking sessions go in through `LeadService.apply_events` (one batch per session, as the queue worker gets
them), the nurture sweep runs every simulated hour (`NurtureService.send_due`), provider opens come back as
email events, clicks through the tracked links' tokens (`LeadService.record_click`, what `/r/{token}` does),
and sales answers a routed lead through `LeadService.command` with a body parsed by `chalicelib.commands`.

Two arms on the same seed: `tailored` (the product's chooser) and `drip` (the same sweeps and cadence, the
templates in a fixed order). The drip replaces only the choice of template; see `drip_chooser`.
"""

from __future__ import annotations

import heapq
import random
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from chalicelib.adapters.competitor_list import InMemoryCompetitorList
from chalicelib.adapters.mail import OutgoingEmail
from chalicelib.adapters.memory import (
    InMemoryActivity,
    InMemoryCounters,
    InMemoryIdentities,
    InMemoryMarks,
)
from chalicelib.adapters.notify import Delivery
from chalicelib.adapters.templates import ParsedTemplate, SenderFields, TemplateRenderer
from chalicelib.adapters.tokens import REDIRECT, verify
from chalicelib.commands import parse_command
from chalicelib.domain.catalogue import Stage, TemplateMeta
from chalicelib.domain.competitors import with_learned_competitors
from chalicelib.domain.events import Event, EventKind, external_id
from chalicelib.domain.messaging import (
    Choice,
    NoChoice,
    parked,
    pending_claim,
    plan_next_touch,
    sent_messages,
    why_not_emailed,
)
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.effects.dispatch import Dispatcher
from chalicelib.usecases import nurture as nurture_module
from chalicelib.usecases.leads import LeadService
from chalicelib.usecases.nurture import NurtureService, TemplateCatalogue
from sim import behaviour, sales
from sim.population import Person
from sim.site import SiteMap
from sim.store import LiveProspects

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; nothing depends on the date
PUBLIC_URL = "https://leads.sim.example"
SECRET = "sim-signing-secret"
SWEEP_EVERY = timedelta(hours=1)  # the product sweeps every minute; hourly is the same for daily cadences
TOKEN = re.compile(re.escape(PUBLIC_URL) + r"/r/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


class LearnedRules:
    """The rules with the competitor domains learned so far (rebuilt only when the list changes)."""

    def __init__(self, rules: Rules, competitors: InMemoryCompetitorList) -> None:
        self._rules, self._competitors = rules, competitors
        self._domains: frozenset[str] = frozenset()
        self._current = rules

    def __call__(self) -> Rules:
        domains = frozenset(entry.domain for entry in self._competitors.entries())
        if domains != self._domains:
            self._domains, self._current = domains, with_learned_competitors(self._rules, domains)
        return self._current


@dataclass(frozen=True, slots=True)
class Route:
    pid: int
    day: float
    why: str

    @property
    def hand_raise(self) -> bool:
        return self.why.startswith("hand-raise")


@dataclass(slots=True)
class Send:
    pid: int
    template: str
    day: float
    relevant: bool
    repeat: bool
    clicked: bool = False
    opened: bool = False


@dataclass
class ArmLog:
    """What happened in one arm: routes, sends, and every event each person's behaviour produced."""

    arm: str
    routes: list[Route] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    events: dict[int, list[Event]] = field(default_factory=dict)  # pid -> events fed, in time order
    sales_answers: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[OutgoingEmail, datetime]] = []

    def send(self, email: OutgoingEmail, at: datetime) -> str:
        self.sent.append((email, at))
        return email.tags.get("send_id", "")


class RecordingNotifier:
    def __init__(self) -> None:
        self.routed: list[tuple[str, str, datetime]] = []  # (lead id, why, at)

    def notify(self, summary: dict[str, Any], why: str, lead_url: str, at: datetime) -> list[Delivery]:
        self.routed.append((str(summary["id"]), why, at))
        return [Delivery("sim", True, "recorded")]


class NoWorkflow:
    """The SLA workflow: started and released, never fires (sales answers within the SLA)."""

    def start(self, lead_id: str, run: int, accept_seconds: int, escalate_seconds: int) -> str:
        return f"sla-{lead_id}-{run}"

    def resolve(self, task_token: str, outcome: str) -> bool:
        return True


STAGE_ORDER = {stage.value: n for n, stage in enumerate(Stage)}


def drip_order(metas: Sequence[TemplateMeta]) -> list[str]:
    """A marketer's fixed drip: awareness templates first, then consideration, decision, re-engagement; within
    a stage the marketer's priority, then the name."""

    def place(m: TemplateMeta) -> tuple[int, int, str]:
        return (min((STAGE_ORDER[s] for s in m.stages), default=len(STAGE_ORDER)), -m.priority, m.name)

    return [m.name for m in sorted(metas, key=place)]


def drip_chooser(order: Sequence[str]) -> Callable[..., Choice | NoChoice]:
    """`choose_next_message` for the drip arm: the same reachability, claim and cadence checks (so the same
    send slots), then the next template of `order` for this prospect, ignoring topics, stage and persona."""

    def choose(
        p: Prospect, catalogue: Sequence[TemplateMeta], rules: Rules, now: datetime, *_: Any, **__: Any
    ) -> Choice | NoChoice:
        unreachable = why_not_emailed(p)
        if unreachable is not None:
            return NoChoice(unreachable)
        if pending_claim(p) is not None or parked(p) is not None:
            return NoChoice("a touch is in flight or parked")
        sent = sent_messages(p)
        planned = plan_next_touch(p, rules, now)
        if planned is not None and planned > now and sent:
            return NoChoice("cadence")
        by_name = {m.name: m for m in catalogue}
        names = [name for name in order if name in by_name]
        template = by_name[names[len(sent) % len(names)]]
        return Choice(template=template, rank=0.0, why=f"drip step {len(sent) + 1}")

    return choose


@contextmanager
def arm_chooser(arm: str, metas: Sequence[TemplateMeta]) -> Iterator[None]:
    # The nurture service calls the domain's chooser by name; the drip arm swaps that one name for the
    # drip, leaving claims, cadence, rendering and sending the product's own.
    if arm == "tailored":
        yield
        return
    with mock.patch.object(nurture_module, "choose_next_message", drip_chooser(drip_order(metas))):
        yield


class Simulation:
    """One arm of one seed: the product, the population and the event calendar."""

    def __init__(
        self,
        *,
        seed: int,
        people: list[Person],
        site: SiteMap,
        rules: Rules,
        templates: dict[str, ParsedTemplate],
        renderer: TemplateRenderer,
        days: int,
        arm: str,
        store: Callable[[], Any] = LiveProspects,
    ) -> None:
        self.seed, self.people, self.site, self.rules, self.days, self.arm = (
            seed,
            people,
            site,
            rules,
            days,
            arm,
        )
        self.templates = templates
        self.clock = Clock(START)
        self.prospects = store()
        self.mailer = RecordingMailer()
        self.notifier = RecordingNotifier()
        ids = iter(range(10**9))
        # Sales' competitor disqualifications teach the rules, as they do deployed (wiring._load_rules reads
        # the learned domains with the rules; here at once instead of within 30 s).
        self.competitors = InMemoryCompetitorList()
        rules_now = LearnedRules(rules, self.competitors)
        dispatcher = Dispatcher(
            activity=InMemoryActivity(),
            counters=InMemoryCounters(),
            ledger=InMemoryMarks(),
            notifier=self.notifier,  # type: ignore[arg-type]
            workflow=NoWorkflow(),  # type: ignore[arg-type]
            rules=rules_now,
            lead_url=lambda lead_id: f"{PUBLIC_URL}/leads/{lead_id}",
            competitors=self.competitors,
        )
        self.leads = LeadService(
            prospects=self.prospects,
            identities=InMemoryIdentities(),
            activity=dispatcher.activity,
            counters=dispatcher.counters,
            rules=rules_now,
            effects=dispatcher,
            public_url=PUBLIC_URL,
            clock=self.clock,
            new_id=lambda: f"L{next(ids):06d}",
            pause=lambda seconds: None,
        )
        self.nurture = NurtureService(
            leads=self.leads,
            prospects=self.prospects,
            catalogue=TemplateCatalogue(lambda: templates),
            renderer=renderer,
            mailer=self.mailer,
            rules=rules_now,
            sender=SenderFields(
                name="Sam Seller", company="Acme Analytics", address="1 Main St, Springfield"
            ),
            sender_address="hello@acmeanalytics.example",
            public_url=PUBLIC_URL,
            signing_secret=SECRET,
            clock=self.clock,
            counters=dispatcher.counters,  # what the chooser learns from (sends, opens, clicks per template)
        )
        self.by_email = {person.email: person for person in people}
        self.visitors = {
            p.pid: behaviour.Visitor(p, site, random.Random(f"visits:{seed}:{p.pid}")) for p in people
        }
        self.email_rng = {p.pid: random.Random(f"email:{seed}:{p.pid}") for p in people}
        self.sales_rng = {p.pid: random.Random(f"sales:{seed}:{p.pid}") for p in people}
        self.log = ArmLog(arm)
        self._calendar: list[tuple[datetime, int, str, Any]] = []
        self._seq = 0
        self._had: dict[int, set[str]] = {}

    # --- the calendar ---

    def _at(self, when: datetime, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._calendar, (when, self._seq, kind, payload))

    def run(self) -> ArmLog:
        metas = [t.meta for t in self.templates.values()]
        with arm_chooser(self.arm, metas):
            for day in range(self.days):
                for person in self.people:
                    for session in self.visitors[person.pid].day(day, START):
                        self._at(session[-1].at, "session", (person.pid, session))
                midnight = START + timedelta(days=day)
                for hour in range(0, 24, int(SWEEP_EVERY.total_seconds() // 3600)):
                    self._at(midnight + timedelta(hours=hour, minutes=30), "sweep", None)
                self._run_until(midnight + timedelta(days=1))
        return self.log

    def _run_until(self, end: datetime) -> None:
        while self._calendar and self._calendar[0][0] < end:
            when, _, kind, payload = heapq.heappop(self._calendar)
            self.clock.now = max(self.clock.now, when)
            getattr(self, f"_on_{kind}")(payload)
            self._after_step()

    def _day(self, when: datetime) -> float:
        return (when - START).total_seconds() / 86400

    # --- what happens ---

    def _feed(self, pid: int, events: list[Event]) -> None:
        self.log.events.setdefault(pid, []).extend(events)
        self.leads.apply_events(events)

    def _on_session(self, payload: tuple[int, list[Event]]) -> None:
        self._feed(*payload)

    def _on_sweep(self, _: None) -> None:
        self.nurture.send_due()
        for email, at in self.mailer.sent:
            self._sent(email, at)
        self.mailer.sent.clear()

    def _sent(self, email: OutgoingEmail, at: datetime) -> None:
        person = self.by_email[email.to]
        name = email.tags["template"]
        template = self.templates[name].meta
        had = self._had.setdefault(person.pid, set())
        day = self._day(at)
        send = Send(person.pid, name, day, behaviour.relevant(template, person), name in had)
        had.add(name)
        self.log.sends.append(send)
        links = [verify(REDIRECT, token, SECRET) for token in dict.fromkeys(TOKEN.findall(email.html))]
        rng = self.email_rng[person.pid]
        for reaction in behaviour.react(person, template, day, send.repeat, rng):
            when = at + timedelta(hours=reaction.hours_after)
            link = behaviour.pick_link(links, person, rng) if reaction.what == "click" else None
            self._at(when, "email", (person.pid, email.tags, reaction.what, send, link))

    def _on_email(self, payload: tuple[int, dict[str, str], str, Send, dict[str, Any] | None]) -> None:
        pid, tags, what, send, link = payload
        lead_id, send_id = tags["lead_id"], tags["send_id"]
        now = self.clock.now
        if what == "unsubscribe":
            self.leads.unsubscribe(lead_id)
            return
        if what == "click":
            send.clicked = True
            if link is not None:
                self.leads.record_click(link)
                self.log.events.setdefault(pid, []).append(
                    Event(f"ll:click:{send_id}", EventKind.EMAIL, now, "redirect", "clicked", lead_id=lead_id,
                          properties={"url": link.get("u"), "topics": list(link.get("t") or [])})
                )  # fmt: skip
                path = "/" + str(link.get("u", "")).split("://", 1)[-1].split("/", 1)[-1]
                self._feed(pid, [self.visitors[pid].landing(path, now + timedelta(seconds=5))])
            return
        machine = what == "machine_open"
        send.opened = send.opened or not machine
        provider_id = f"{send_id}-{'machine' if machine else 'open'}"
        self._feed(
            pid,
            [
                Event(
                    message_id=external_id("sendgrid", provider_id),
                    kind=EventKind.EMAIL,
                    at=now,
                    source="sendgrid",
                    name="opened",
                    lead_id=lead_id,
                    properties={
                        "send_id": send_id,
                        "template": tags["template"],
                        "machine_open": machine,
                        "provider": "sendgrid",
                    },
                )
            ],
        )

    def _after_step(self) -> None:
        for lead_id, why, at in self.notifier.routed:
            found = self.prospects.get(lead_id)
            if found is None or found.item.email not in self.by_email:
                continue
            person = self.by_email[str(found.item.email)]
            day = self._day(at)
            self.log.routes.append(Route(person.pid, day, why))
            answer = sales.answer(person, day, self.sales_rng[person.pid])
            self._at(at + timedelta(hours=answer.hours_after), "sales", (lead_id, answer))
        self.notifier.routed.clear()

    def _on_sales(self, payload: tuple[str, sales.Answer]) -> None:
        lead_id, answer = payload
        command = parse_command(answer.action, answer.body)
        self.leads.command(lead_id, answer.action, command.properties(), "rep@acmeanalytics.example")
        self.log.sales_answers[answer.action] = self.log.sales_answers.get(answer.action, 0) + 1

"""What a simulated person does: their visits to the site on a given day (pages, downloads, forms, a demo
request) as the tracking events a real client sends, and how they answer one of our emails (machine open,
human open, click, unsubscribe).

Visits are drawn per day from a rate that depends on the hidden phase: at rest, researching (rising as the
readiness window nears), ready (the window), and after it. Intent pages (pricing, security, integration
docs) take a growing share of a buyer's pages before and during the window. Page paths and downloads
reflect the hidden interests, with noise. All rates are assumptions, listed in docs/simulation.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.events import Event, EventKind
from sim.population import Person
from sim.site import Page, SiteMap

SITE = "https://acmeanalytics.example"
HAND_RAISE_EVENT = "Demo Requested"


@dataclass(frozen=True, slots=True)
class Phase:
    name: str  # rest | researching | ready | after
    progress: float  # researching: 0 at arrival .. 1 at the window's start


def phase_of(person: Person, day: float) -> Phase:
    if person.window is None:
        return Phase("rest", 0.0)
    start, end = person.window
    if day >= end:
        return Phase("after", 1.0)
    if day >= start:
        return Phase("ready", 1.0)
    span = max(start - person.arrival_day, 1.0)
    return Phase("researching", min(1.0, max(0.0, (day - person.arrival_day) / span)))


def visit_rate(person: Person, phase: Phase) -> float:
    """Sessions per day (at most one a day is drawn, plus a second when ready)."""
    a = person.assumptions
    if phase.name == "researching":
        return a.research_visits[0] + a.research_visits[1] * phase.progress
    if phase.name == "ready":
        return a.ready_visits
    if phase.name == "after":
        return 0.02
    return person.visit_rate


class Visitor:
    """Turns one person's day into tracking events. Owns the person's event counter (message ids)."""

    def __init__(self, person: Person, site: SiteMap, rng: random.Random) -> None:
        self.person = person
        self.site = site
        self.rng = rng
        self._n = 0
        self.trial_started = False

    def _id(self) -> str:
        self._n += 1
        return f"seg:p{self.person.pid}-{self._n}"

    def _page(self, page: Page, at: datetime) -> Event:
        return Event(
            message_id=self._id(),
            kind=EventKind.PAGE,
            at=at,
            source="website",
            name=page.title,
            anonymous_id=self.person.anonymous_id,
            properties={
                "path": page.path,
                "url": SITE + page.path,
                "title": page.title,
                "category": page.category,
            },
        )

    def _track(self, name: str, at: datetime, properties: dict[str, Any], identify: bool = False) -> Event:
        return Event(
            message_id=self._id(),
            kind=EventKind.TRACK,
            at=at,
            source="website",
            name=name,
            anonymous_id=self.person.anonymous_id,
            email=self.person.email if identify else None,
            properties=properties,
        )

    def identify(self, at: datetime) -> Event:
        return Event(
            message_id=self._id(),
            kind=EventKind.IDENTIFY,
            at=at,
            source="website",
            anonymous_id=self.person.anonymous_id,
            email=self.person.email,
            traits={"email": self.person.email, **self.person.traits},
        )

    def landing(self, path: str, at: datetime) -> Event:
        """The page a clicked email link lands on (the site tracks it like any page)."""
        page = next((p for p in self.site_pages() if p.path == path), Page(path, path, "email"))
        return self._page(page, at)

    def site_pages(self) -> tuple[Page, ...]:
        return self.site.generic + self.site.intent + self.site.careers

    def _choose_page(self, phase: Phase) -> Page:
        rng, person, site = self.rng, self.person, self.site
        roll = rng.random()
        segment = person.segment
        if segment == "job_seeker":
            return rng.choice(site.careers if roll < 0.7 else site.generic)
        if segment == "competitor":
            if roll < 0.45:
                return rng.choice(site.intent)
            return rng.choice(site.docs if roll < 0.7 else site.generic)
        if segment == "student" and roll < 0.4:
            return rng.choice(site.docs)
        a = person.assumptions
        researching = a.research_intent[0] + a.research_intent[1] * phase.progress
        intent = {"researching": researching, "ready": a.ready_intent}.get(phase.name, 0.05)
        if roll < intent:
            return rng.choice(site.intent)
        if roll < intent + 0.45:
            topics = person.interests
            if rng.random() < 0.15:  # noise: a look at something else
                topics = tuple(site.pages_by_topic)
            pages = [p for t in topics for p in site.pages_by_topic.get(t, ())]
            if pages:
                return rng.choice(pages)
        return rng.choice(site.generic)

    def _download(self, at: datetime, gated: bool = False) -> Event:
        rng, site = self.rng, self.site
        wanted = [a for t in self.person.interests for a in site.assets_by_topic.get(t, ())]
        everything = [a for assets in site.assets_by_topic.values() for a in assets]
        asset = rng.choice(wanted if wanted and rng.random() < 0.7 else everything)
        # What real sites send varies: a name always, a topic label, a category and a URL often.
        props: dict[str, Any] = {"name": asset.name}
        if asset.label and rng.random() < 0.7:
            props["topic"] = asset.label
        if rng.random() < 0.6:
            props["category"] = asset.category
        if rng.random() < 0.7:
            props["url"] = SITE + asset.url
        return self._track("Content Downloaded", at, props, identify=gated)

    def day(self, day: int, start: datetime) -> list[list[Event]]:
        """The sessions of `day` (each a list of events in time order) for this person."""
        person, rng = self.person, self.rng
        if day < person.arrival_day:
            return []
        phase = phase_of(person, day + 0.5)
        sessions = 1 if rng.random() < min(0.9, visit_rate(person, phase)) else 0
        if phase.name == "ready" and rng.random() < 0.12:
            sessions += 1
        must_identify = day == person.identify_day
        raises_hand = person.hand_raise_day is not None and int(person.hand_raise_day) == day
        sessions = max(sessions, int(day == person.arrival_day or must_identify or raises_hand))
        out = []
        for n in range(sessions):
            at = start + timedelta(days=day, hours=rng.uniform(7, 20))
            out.append(
                self._session(at, phase, identify=must_identify and n == 0, hand=raises_hand and n == 0)
            )
        return out

    def _session(self, at: datetime, phase: Phase, *, identify: bool, hand: bool) -> list[Event]:
        rng = self.rng
        events: list[Event] = []
        pages = 1 + int(rng.expovariate(1 / (2.5 if phase.name == "ready" else 1.5)))
        for _ in range(min(pages, 12)):
            page = self._choose_page(phase)
            events.append(self._page(page, at))
            if page.path.startswith("/roi") and rng.random() < 0.25:
                events.append(self._track("Pricing Calculator Used", at, {"path": page.path}))
            at += timedelta(seconds=rng.uniform(20, 240))
        if identify:  # a form: a gated download mostly, else a newsletter sign-up
            events.append(self.identify(at))
            if rng.random() < 0.6:
                events.append(self._download(at, gated=True))
            else:
                events.append(self._track("Newsletter Subscribed", at, {"form": "footer"}, identify=True))
        elif rng.random() < {"researching": 0.12, "ready": 0.15}.get(phase.name, 0.04):
            events.append(self._download(at))
        if phase.name == "ready" and not self.trial_started and rng.random() < 0.06:
            self.trial_started = True
            events.append(self._track("Trial Started", at, {"plan": "trial"}))
        if phase.name == "ready" and rng.random() < 0.04:
            events.append(self._track("Webinar Attended", at, {"webinar": "Live demo"}))
        if hand:
            pricing = next(p for p in self.site.intent if p.path == "/pricing")
            events.append(self._page(pricing, at))
            events.append(self.identify(at))
            events.append(self._track(HAND_RAISE_EVENT, at, {"form": "demo"}, identify=True))
        return events


# --- email ------------------------------------------------------------------------------------------------

BASE_CLICK_GIVEN_OPEN = 0.05  # click-to-open for an email off the reader's interest (assumption)
RELEVANT_CLICK_GIVEN_OPEN = 0.18  # ... on it (relevance lifts clicks ~2-4x, see docs/simulation.md)
UNSUBSCRIBE = 0.002  # per delivered email


@dataclass(frozen=True, slots=True)
class Reaction:
    hours_after: float
    what: str  # machine_open | open | click | unsubscribe


def relevant(template: TemplateMeta, person: Person) -> bool:
    return any(topic in person.interests for topic in template.topics)


def react(
    person: Person, template: TemplateMeta, day: float, repeat: bool, rng: random.Random
) -> list[Reaction]:
    """How `person` answers one email made from `template` on `day` (a repeat of a template they had)."""
    out: list[Reaction] = []
    if person.machine_opens:
        out.append(Reaction(rng.uniform(0.02, 0.5), "machine_open"))
    phase = phase_of(person, day)
    factor = {"researching": 1.1, "ready": 1.3, "after": 0.7}.get(phase.name, 1.0)
    if rng.random() >= person.open_rate * factor * (0.6 if repeat else 1.0):
        if rng.random() < UNSUBSCRIBE:
            out.append(Reaction(rng.uniform(0.1, 48), "unsubscribe"))
        return out
    opened_after = rng.expovariate(1 / 6)
    out.append(Reaction(opened_after, "open"))
    on_topic = relevant(template, person)
    click = (
        RELEVANT_CLICK_GIVEN_OPEN if on_topic else BASE_CLICK_GIVEN_OPEN
    ) * person.assumptions.click_scale
    if phase.name in ("researching", "ready") and "decision" in template.stages and on_topic:
        click *= 1.3  # decision content for someone deciding
    if person.segment in ("student", "job_seeker"):
        click *= 0.5
    if repeat:
        click *= 0.5  # the same email again is seldom clicked
    if rng.random() < click:
        out.append(Reaction(opened_after + rng.uniform(0.01, 0.2), "click"))
    elif rng.random() < UNSUBSCRIBE * (0.5 if on_topic else 2.0):
        out.append(Reaction(opened_after + 0.05, "unsubscribe"))
    return out


def pick_link(links: list[dict[str, Any]], person: Person, rng: random.Random) -> dict[str, Any] | None:
    """The tracked link a clicker follows: one about what they care about when there is one."""
    if not links:
        return None
    wanted = [link for link in links if any(t in person.interests for t in link.get("t") or ())]
    return rng.choice(wanted or links)

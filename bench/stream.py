"""The standard synthetic stream every benchmark runs: a seeded population of prospects and their bursts.

Each prospect browses in sessions (bursts of page views seconds apart); about half identify themselves at
some point, after which their browser's events carry the userId, nurture emails to them come back as
delivered / opened / clicked provider events, some download content, and a few raise a hand. Sessions of
different prospects overlap in time, so a queue batch holds bursts from several prospects, as in production.
The same seed always gives the same events, byte for byte, so figures are comparable between runs.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.events import Event, EventKind

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SEED = 7

PAGES = (
    ("/", "Home", 20),
    ("/pricing", "Pricing", 10),
    ("/plans", "Plans", 3),
    ("/docs/api", "API reference", 8),
    ("/docs/getting-started", "Getting started", 6),
    ("/security", "Security", 5),
    ("/trust/soc-2", "SOC 2", 2),
    ("/customers/acme-retail", "Acme Retail", 4),
    ("/case-studies/fintech", "Fintech case study", 3),
    ("/features/reporting", "Reporting", 6),
    ("/integrations", "Integrations", 5),
    ("/roi", "ROI calculator", 3),
    ("/blog/lead-scoring", "Lead scoring, revisited", 12),
    ("/blog/nurture", "Nurture that listens", 10),
    ("/about", "About", 3),
)
TITLES = (
    "VP Engineering",
    "Head of Marketing",
    "Marketing Manager",
    "Software Engineer",
    "CTO",
    "Data Analyst",
    "Founder",
    "Sales Director",
    "Student",
    "Operations Lead",
)
INDUSTRIES = ("software", "saas", "fintech", "retail", "media", "education", "healthcare", "manufacturing")
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "CA", "AU", "NL", "JP")
FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com")
TRACKED = (
    ("Content Downloaded", 5),
    ("Webinar Attended", 2),
    ("Trial Started", 1),
    ("Pricing Calculator Used", 2),
)
HAND_RAISES = ("Demo Requested", "Contact Sales Requested")


@dataclass(frozen=True)
class Shape:
    """The stream's knobs; the defaults are the standard stream the published figures use."""

    prospects: int = 2_000
    sessions: int = 6_000
    seed: int = SEED
    identify_share: float = 0.5  # of prospects who ever identify
    hand_raise_per_session: float = 0.012  # for identified prospects
    track_per_session: float = 0.15
    emails_per_identified_session: float = 0.8  # nurture emails whose provider events arrive


@dataclass
class _Person:
    index: int
    anonymous_id: str
    email: str
    user_id: str
    traits: dict[str, object]
    will_identify: bool
    identified: bool = False
    sends: int = 0


def _person(index: int, rng: random.Random, shape: Shape) -> _Person:
    domain = rng.choice(FREE_MAIL) if rng.random() < 0.2 else f"co{index % 409}.example"
    return _Person(
        index=index,
        anonymous_id=f"anon-{index:06d}",
        email=f"p{index:06d}@{domain}",
        user_id=f"user-{index:06d}",
        traits={
            "email": f"p{index:06d}@{domain}",
            "firstName": f"First{index}",
            "lastName": f"Last{index}",
            "title": rng.choice(TITLES),
            "company": f"Company {index % 409}",
            "company_size": rng.choice((5, 20, 80, 250, 900, 3000, 12000)),
            "industry": rng.choice(INDUSTRIES),
            "country": rng.choice(COUNTRIES),
        },
        will_identify=rng.random() < shape.identify_share,
    )


def generate(shape: Shape = Shape()) -> list[tuple[int, Event]]:
    """(prospect index, event) pairs in arrival order. The index is the generator's truth about who sent
    the event (the domain benchmark uses it in place of identity resolution, which is storage's job)."""
    rng = random.Random(shape.seed)
    people = [_person(i, rng, shape) for i in range(shape.prospects)]
    weights = [1.0 / (1 + i % 50) for i in range(shape.prospects)]  # some prospects are far busier
    paths, titles, path_weights = zip(*PAGES, strict=True)
    out: list[tuple[datetime, int, int, Event]] = []
    serial = 0
    clock = START

    def emit(at: datetime, person: _Person, event: Event) -> None:
        nonlocal serial
        serial += 1
        out.append((at, serial, person.index, event))

    for session in range(shape.sessions):
        clock += timedelta(seconds=rng.expovariate(1 / 20))  # sessions start ~20 s apart on average
        person = rng.choices(people, weights)[0]
        at = clock
        ids: dict[str, Any] = {"anonymous_id": person.anonymous_id}
        if person.identified:
            ids["user_id"] = person.user_id

        for n in range(rng.randint(1, 6)):
            at += timedelta(seconds=rng.uniform(2, 40))
            choice = rng.choices(range(len(paths)), path_weights)[0]
            path = paths[choice]
            emit(
                at,
                person,
                Event(
                    message_id=f"s{session}-p{n}",
                    kind=EventKind.PAGE,
                    at=at,
                    source="website",
                    name=titles[choice],
                    properties={
                        "path": path,
                        "url": f"https://www.example.com{path}",
                        "title": titles[choice],
                    },
                    **ids,
                ),
            )
        if person.will_identify and not person.identified and rng.random() < 0.5:
            at += timedelta(seconds=rng.uniform(5, 60))
            person.identified = True
            ids["user_id"] = person.user_id
            emit(
                at,
                person,
                Event(
                    message_id=f"s{session}-i",
                    kind=EventKind.IDENTIFY,
                    at=at,
                    source="website",
                    email=person.email,
                    traits=dict(person.traits),
                    **ids,
                ),
            )
        if rng.random() < shape.track_per_session:
            name = rng.choices([n for n, _ in TRACKED], [w for _, w in TRACKED])[0]
            at += timedelta(seconds=rng.uniform(5, 60))
            emit(
                at,
                person,
                Event(
                    message_id=f"s{session}-t",
                    kind=EventKind.TRACK,
                    at=at,
                    source="website",
                    name=name,
                    properties={"asset": "guide"},
                    **ids,
                ),
            )
        if person.identified and rng.random() < shape.hand_raise_per_session:
            at += timedelta(seconds=rng.uniform(5, 60))
            emit(
                at,
                person,
                Event(
                    message_id=f"s{session}-h",
                    kind=EventKind.TRACK,
                    at=at,
                    source="website",
                    name=rng.choice(HAND_RAISES),
                    properties={"form": "contact"},
                    **ids,
                ),
            )
        if person.identified and rng.random() < shape.emails_per_identified_session:
            person.sends += 1
            send_id = f"{person.user_id}-{person.sends}"
            sent = at + timedelta(minutes=rng.uniform(1, 30))
            outcomes = ["delivered"]
            if rng.random() < 0.5:
                outcomes.append("opened")
                if rng.random() < 0.3:
                    outcomes.append("clicked")
            for k, outcome in enumerate(outcomes):
                sent += timedelta(seconds=rng.uniform(30, 3600))
                props: dict[str, object] = {
                    "send_id": send_id,
                    "provider": "sendgrid",
                    "template": "welcome-product-tour",
                }
                if outcome == "clicked":
                    props["url"] = "https://www.example.com/pricing"
                if outcome == "opened" and rng.random() < 0.3:
                    props["machine_open"] = True
                emit(
                    sent,
                    person,
                    Event(
                        message_id=f"sendgrid:s{session}-e{k}",
                        kind=EventKind.EMAIL,
                        at=sent,
                        source="sendgrid",
                        name=outcome,
                        email=person.email,
                        properties=props,
                    ),
                )
    out.sort(key=lambda item: (item[0], item[1]))
    return [(index, event) for _, _, index, event in out]


def mix(stream: list[tuple[int, Event]]) -> dict[str, int]:
    """How many events of each kind (hand-raises counted apart from other tracks)."""
    counts: Counter[str] = Counter()
    for _, event in stream:
        kind = event.kind.value
        if event.kind is EventKind.TRACK and event.name in HAND_RAISES:
            kind = "hand_raise"
        counts[kind] += 1
    return dict(sorted(counts.items()))

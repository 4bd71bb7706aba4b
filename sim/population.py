"""The synthetic prospect population and its hidden truth: who each person is (segment, fit), what they care
about (one or two of the rules' topics), and when, if ever, they are ready to talk to sales.

Leadloop never sees this truth; it sees only the traits a person's browser sends with `identify` (some
fields missing, as real forms and enrichment leave them) and what they do. The measures compare Leadloop's
decisions with the truth. Every number here is a modelling assumption; docs/simulation.md gives the source
each one leans on, or says that it is a guess.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# Segments: ideal-customer-profile buyers, individual contributors at ideal companies, poor fit, competitors,
# students (free mailboxes), job seekers. Shares are an assumption (see docs/simulation.md).
SEGMENT_SHARES: dict[str, float] = {
    "icp_buyer": 0.22,
    "ic_at_icp": 0.15,
    "poor_fit": 0.30,
    "competitor": 0.05,
    "student": 0.16,
    "job_seeker": 0.12,
}
# Chance that a person of the segment has a buying window (their company buys in the months simulated).
WINDOW_CHANCE = {"icp_buyer": 0.55, "ic_at_icp": 0.45, "poor_fit": 0.25}
FIT_SEGMENTS = frozenset({"icp_buyer", "ic_at_icp"})
# Chance that a ready buyer asks for a demo or sales contact during their window (assumption).
HAND_RAISE_CHANCE = {"icp_buyer": 0.45, "ic_at_icp": 0.30, "poor_fit": 0.40}
# Hand-raises from people who will not buy: a competitor's demo for intel, a student's, a job seeker's.
STRAY_HAND_RAISE_CHANCE = {"competitor": 0.15, "student": 0.04, "job_seeker": 0.03, "poor_fit": 0.03}

EXEC_TITLES = (
    "VP Marketing", "VP of Operations", "Head of Analytics", "Director of Finance", "CFO", "COO",
    "Chief Data Officer", "Head of Revenue Operations", "Director, Business Intelligence",
    "Marketing Manager", "Analytics Manager", "Founder",
)  # fmt: skip
IC_TITLES = (
    "Data Engineer", "Senior Data Analyst", "Analytics Engineer", "BI Developer", "Software Engineer",
    "Data Scientist", "Operations Analyst", "Marketing Analyst",
)  # fmt: skip
POOR_FIT_TITLES = (
    "Owner",
    "Office Manager",
    "Consultant",
    "Teacher",
    "Analyst",
    "Project Manager",
    "Founder",
)
COMPETITOR_TITLES = ("VP Product", "Head of Growth", "CEO", "Director of Product Marketing", "CTO")
STUDENT_TITLES = ("Student", "MSc student", "Intern", "")
JOB_SEEKER_TITLES = ("Data Analyst", "Looking for new opportunities", "Junior Data Engineer", "")
ICP_INDUSTRIES = ("software", "saas", "fintech", "ecommerce", "media", "healthcare")
OTHER_INDUSTRIES = ("education", "government", "nonprofit", "agriculture", "construction", "hospitality")
SERVED = ("US", "US", "US", "GB", "DE", "CA", "FR", "NL", "AU", "SE", "IE")
NOT_SERVED = ("IN", "BR", "NG", "ID", "PK")
FREE_MAILBOXES = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "proton.me")
FIRST_NAMES = ("Ada", "Ben", "Chen", "Dana", "Emil", "Fatima", "Gus", "Hana", "Ivo", "Jo", "Kofi", "Lena")


@dataclass
class Person:
    """One simulated person: hidden truth plus the identity their browser uses."""

    pid: int
    segment: str
    email: str
    anonymous_id: str
    traits: dict[str, Any]  # as identify sends them (missing fields left out)
    interests: tuple[str, ...]  # hidden: one or two of the rules' topics
    arrival_day: int  # first visit
    identify_day: int  # first form fill (email known from then on)
    window: tuple[float, float] | None  # hidden: days (from the sim's start) when ready to talk to sales
    hand_raise_day: float | None  # a demo request, if this person makes one
    open_rate: float  # chance a human opens one of our emails (before relevance)
    machine_opens: (
        bool  # their mail client prefetches (Apple Mail Privacy Protection): opens without a person
    )
    visit_rate: float  # sessions per day at rest
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def fit(self) -> bool:
        return self.segment in FIT_SEGMENTS

    def ready_at(self, day: float) -> bool:
        return self.window is not None and self.window[0] <= day < self.window[1]


def _pick_segment(rng: random.Random) -> str:
    return rng.choices(list(SEGMENT_SHARES), weights=list(SEGMENT_SHARES.values()))[0]


def _company(rng: random.Random, pid: int, segment: str) -> tuple[str, str, dict[str, Any]]:
    """Company name, email domain and company traits (each field missing with some chance)."""
    name = f"{rng.choice(('North', 'Blue', 'Iron', 'Bright', 'Silver', 'Oak'))}"
    name += f"{rng.choice(('wind', 'field', 'stone', 'path', 'line', 'works'))} {pid}"
    domain = name.lower().replace(" ", "") + rng.choice((".com", ".io", ".co"))
    traits: dict[str, Any] = {"company": name}
    if segment in FIT_SEGMENTS:
        size, industry, country = rng.randint(60, 4000), rng.choice(ICP_INDUSTRIES), rng.choice(SERVED)
    elif segment == "competitor":
        size, industry, country = rng.randint(40, 600), "software", rng.choice(SERVED)
        domain = rng.choice(("rivalytics.io", "dashlane-bi.com", "metricsmith.co"))
        name = domain.split(".")[0].capitalize()
        traits["company"] = name
    else:  # poor fit: too small, outside the target industries, or not served; often two of those
        size = rng.choice((rng.randint(1, 40), rng.randint(1, 40), rng.randint(60, 2000)))
        industry = rng.choice(OTHER_INDUSTRIES + ICP_INDUSTRIES[:2])
        country = rng.choice(NOT_SERVED + SERVED[:4])
    # Forms ask for few fields; enrichment fills some of the rest (assumption: each missing 25-35%).
    if rng.random() > 0.3:
        traits["company_size"] = size
    if rng.random() > 0.3:
        traits["industry"] = industry
    if rng.random() > 0.25:
        traits["country"] = country
    if rng.random() < 0.1:
        traits.pop("company")
    return name, domain, traits


def make_person(pid: int, rng: random.Random, topics: tuple[str, ...], days: int) -> Person:
    segment = _pick_segment(rng)
    first = rng.choice(FIRST_NAMES)
    traits: dict[str, Any] = {"first_name": first}
    if segment in ("student", "job_seeker"):
        email = f"{first.lower()}.{pid}@{rng.choice(FREE_MAILBOXES)}"
        title = rng.choice(STUDENT_TITLES if segment == "student" else JOB_SEEKER_TITLES)
        if segment == "student" and rng.random() < 0.5:
            traits["company"] = f"University {pid % 40}"
    else:
        _, domain, company = _company(rng, pid, segment)
        traits.update(company)
        titles = {
            "icp_buyer": EXEC_TITLES,
            "ic_at_icp": IC_TITLES,
            "poor_fit": POOR_FIT_TITLES,
            "competitor": COMPETITOR_TITLES,
        }[segment]
        title = rng.choice(titles)
        # Some people sign up with a personal mailbox even at work (assumption: 10%).
        mailbox = rng.choice(FREE_MAILBOXES) if rng.random() < 0.1 else domain
        email = f"{first.lower()}.{pid}@{mailbox}"
    if title and rng.random() > 0.15:  # title left blank on some forms
        traits["title"] = title
    interests = tuple(rng.sample(topics, k=1 if rng.random() < 0.5 or len(topics) < 2 else 2))
    arrival = rng.randint(0, int(days * 0.85))
    # Most people browse anonymously before they give an email (Gartner: buyers research alone first).
    identify = arrival + (0 if rng.random() < 0.35 else min(int(rng.expovariate(1 / 8)), 45))
    window: tuple[float, float] | None = None
    hand_raise: float | None = None
    if rng.random() < WINDOW_CHANCE.get(segment, 0.0):
        research = rng.uniform(10, 60)  # independent research before they would talk to sales
        start = arrival + research
        window = (start, start + rng.uniform(14, 42))
        if rng.random() < HAND_RAISE_CHANCE[segment]:
            hand_raise = rng.uniform(window[0], window[0] + 0.7 * (window[1] - window[0]))
    elif rng.random() < STRAY_HAND_RAISE_CHANCE.get(segment, 0.0):
        hand_raise = rng.uniform(arrival, days)
    return Person(
        pid=pid,
        segment=segment,
        email=email,
        anonymous_id=f"anon-{pid}-{rng.getrandbits(32):08x}",
        traits=traits,
        interests=interests,
        arrival_day=arrival,
        identify_day=identify,
        window=window,
        hand_raise_day=hand_raise,
        open_rate=min(0.6, max(0.03, rng.gauss(0.22, 0.09))),
        machine_opens=rng.random() < 0.45,
        visit_rate={"competitor": 0.09, "student": 0.05, "job_seeker": 0.04}.get(segment, 0.035),
    )


def make_population(seed: int, size: int, topics: tuple[str, ...], days: int) -> list[Person]:
    rng = random.Random(f"population:{seed}")
    return [make_person(pid, rng, topics, days) for pid in range(size)]

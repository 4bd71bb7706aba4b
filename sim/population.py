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

FIT_SEGMENTS = frozenset({"icp_buyer", "ic_at_icp"})


@dataclass(frozen=True)
class Assumptions:
    """One population's modelling assumptions (docs/simulation.md). `BASE` is the model the figures are
    quoted on; `VARIANT` changes every assumption a routing rule could be tuned to, so a change that only
    helps one population shows."""

    name: str
    # Segments: ideal-customer-profile buyers, individual contributors at ideal companies, poor fit,
    # competitors, students (free mailboxes), job seekers.
    segment_shares: dict[str, float]
    # Chance that a person of the segment has a buying window (their company buys in the months simulated).
    window_chance: dict[str, float]
    # Chance that a ready buyer asks for a demo or sales contact during their window.
    hand_raise_chance: dict[str, float]
    # Hand-raises from people who will not buy: a competitor's demo for intel, a student's, a job seeker's.
    stray_hand_raise_chance: dict[str, float]
    research_days: tuple[float, float]  # from first visit to the window's start
    window_days: tuple[float, float]  # how long the window lasts
    research_visits: tuple[float, float]  # sessions/day at the start of research, added by its end
    ready_visits: float  # sessions/day while ready
    research_intent: tuple[float, float]  # share of intent pages at the start of research, added by its end
    ready_intent: float  # share of intent pages while ready
    company_field_missing: float  # size and industry each missing this often (country a little less)
    title_missing: float
    open_rate: tuple[float, float]  # mean and sd of a person's own human open rate
    click_scale: float  # multiplies every click-given-open chance
    identify_delay_days: float  # mean days from first visit to first form, for the 65% who wait


BASE = Assumptions(
    name="base",
    segment_shares={
        "icp_buyer": 0.22, "ic_at_icp": 0.15, "poor_fit": 0.30, "competitor": 0.05, "student": 0.16,
        "job_seeker": 0.12,
    },
    window_chance={"icp_buyer": 0.55, "ic_at_icp": 0.45, "poor_fit": 0.25},
    hand_raise_chance={"icp_buyer": 0.45, "ic_at_icp": 0.30, "poor_fit": 0.40},
    stray_hand_raise_chance={"competitor": 0.15, "student": 0.04, "job_seeker": 0.03, "poor_fit": 0.03},
    research_days=(10, 60),
    window_days=(14, 42),
    research_visits=(0.06, 0.22),
    ready_visits=0.4,
    research_intent=(0.05, 0.30),
    ready_intent=0.45,
    company_field_missing=0.3,
    title_missing=0.15,
    open_rate=(0.22, 0.09),
    click_scale=1.0,
    identify_delay_days=8,
)  # fmt: skip
# A different market: fewer ideal buyers and more practitioners and competitors; longer research and shorter
# windows; intent pages read as much early in research as late (flat, not rising), and less when ready;
# sparser forms and enrichment; colder email; people who give an email later. Hand-raises are calibrated to
# what issue 12 published of its hidden population's baselines (hand-raise only: precision 0.64-0.75,
# recall 0.50-0.56): more of the ready buyers ask, a few more strays than in the base model.
VARIANT = Assumptions(
    name="variant",
    segment_shares={
        "icp_buyer": 0.16, "ic_at_icp": 0.20, "poor_fit": 0.33, "competitor": 0.08, "student": 0.13,
        "job_seeker": 0.10,
    },
    window_chance={"icp_buyer": 0.50, "ic_at_icp": 0.50, "poor_fit": 0.20},
    hand_raise_chance={"icp_buyer": 0.60, "ic_at_icp": 0.45, "poor_fit": 0.50},
    stray_hand_raise_chance={"competitor": 0.15, "student": 0.04, "job_seeker": 0.03, "poor_fit": 0.04},
    research_days=(20, 75),
    window_days=(10, 30),
    research_visits=(0.10, 0.15),
    ready_visits=0.33,
    research_intent=(0.15, 0.15),
    ready_intent=0.38,
    company_field_missing=0.45,
    title_missing=0.3,
    open_rate=(0.16, 0.07),
    click_scale=0.75,
    identify_delay_days=20,
)  # fmt: skip
POPULATIONS = {"base": BASE, "variant": VARIANT}
# The base model's figures under their old names (docs/simulation.md quotes them).
SEGMENT_SHARES = BASE.segment_shares
WINDOW_CHANCE = BASE.window_chance
HAND_RAISE_CHANCE = BASE.hand_raise_chance
STRAY_HAND_RAISE_CHANCE = BASE.stray_hand_raise_chance

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
    assumptions: Assumptions = BASE

    @property
    def fit(self) -> bool:
        return self.segment in FIT_SEGMENTS

    def ready_at(self, day: float) -> bool:
        return self.window is not None and self.window[0] <= day < self.window[1]


def _pick_segment(rng: random.Random, shares: dict[str, float]) -> str:
    return rng.choices(list(shares), weights=list(shares.values()))[0]


def _company(
    rng: random.Random, pid: int, segment: str, missing: float = 0.3
) -> tuple[str, str, dict[str, Any]]:
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
    if rng.random() > missing:
        traits["company_size"] = size
    if rng.random() > missing:
        traits["industry"] = industry
    if rng.random() > missing - 0.05:
        traits["country"] = country
    if rng.random() < 0.1:
        traits.pop("company")
    return name, domain, traits


def make_person(
    pid: int, rng: random.Random, topics: tuple[str, ...], days: int, a: Assumptions = BASE
) -> Person:
    segment = _pick_segment(rng, a.segment_shares)
    first = rng.choice(FIRST_NAMES)
    traits: dict[str, Any] = {"first_name": first}
    if segment in ("student", "job_seeker"):
        email = f"{first.lower()}.{pid}@{rng.choice(FREE_MAILBOXES)}"
        title = rng.choice(STUDENT_TITLES if segment == "student" else JOB_SEEKER_TITLES)
        if segment == "student" and rng.random() < 0.5:
            traits["company"] = f"University {pid % 40}"
    else:
        _, domain, company = _company(rng, pid, segment, a.company_field_missing)
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
    if title and rng.random() > a.title_missing:  # title left blank on some forms
        traits["title"] = title
    interests = tuple(rng.sample(topics, k=1 if rng.random() < 0.5 or len(topics) < 2 else 2))
    arrival = rng.randint(0, int(days * 0.85))
    # Most people browse anonymously before they give an email (Gartner: buyers research alone first).
    delay = min(int(rng.expovariate(1 / a.identify_delay_days)), 45)
    identify = arrival + (0 if rng.random() < 0.35 else delay)
    window: tuple[float, float] | None = None
    hand_raise: float | None = None
    if rng.random() < a.window_chance.get(segment, 0.0):
        research = rng.uniform(*a.research_days)  # independent research before they would talk to sales
        start = arrival + research
        window = (start, start + rng.uniform(*a.window_days))
        if rng.random() < a.hand_raise_chance[segment]:
            hand_raise = rng.uniform(window[0], window[0] + 0.7 * (window[1] - window[0]))
    elif rng.random() < a.stray_hand_raise_chance.get(segment, 0.0):
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
        open_rate=min(0.6, max(0.03, rng.gauss(*a.open_rate))),
        machine_opens=rng.random() < 0.45,
        visit_rate={"competitor": 0.09, "student": 0.05, "job_seeker": 0.04}.get(segment, 0.035),
        assumptions=a,
    )


def make_population(
    seed: int, size: int, topics: tuple[str, ...], days: int, assumptions: Assumptions = BASE
) -> list[Person]:
    # The base population keeps its old stream (its figures stay comparable across commits).
    tag = "" if assumptions is BASE else f"{assumptions.name}:"
    rng = random.Random(f"population:{tag}{seed}")
    return [make_person(pid, rng, topics, days, assumptions) for pid in range(size)]

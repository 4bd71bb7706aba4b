"""How a salesperson answers a routed lead, from what a first call would reveal (the hidden truth).

Accepts a lead that is ready and a fit; recycles one that is not ready, with the reason a rep would give and
a revisit date guessed from the call (noisy); disqualifies competitors, students and job seekers. A ready
buyer at a poor-fit company is recycled as `no_budget`. Sales answers within the SLA (1-3 hours), so the
sim does not exercise SLA expiry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sim.population import Person

DISQUALIFY_REASONS = {
    "competitor": "competitor",
    "student": "student",
    "job_seeker": "job seeker, not a buyer",
}


@dataclass(frozen=True, slots=True)
class Answer:
    action: str  # accept | recycle | disqualify
    body: dict[str, Any]  # the command body sales would POST (parsed by chalicelib.commands)
    hours_after: float


def answer(person: Person, day: float, rng: random.Random) -> Answer:
    """Sales' answer to `person` routed on `day` (days since the sim's start)."""
    after = rng.uniform(1, 3)
    if person.segment in DISQUALIFY_REASONS:
        return Answer("disqualify", {"reason": DISQUALIFY_REASONS[person.segment]}, after)
    window = person.window
    if person.ready_at(day):
        if person.fit:
            return Answer("accept", {}, after)
        return Answer("recycle", {"reason": "no_budget", "note": "small team, no budget this year"}, after)
    if window is not None and day < window[0]:
        until = window[0] - day
        # A rep's guess of when to call back: right on average, off by a factor of up to ~2 either way.
        guess = max(1, min(365, round(until * rng.lognormvariate(0, 0.4))))
        if until <= 45:
            return Answer("recycle", {"reason": "not_ready", "revisit_in_days": guess}, after)
        return Answer("recycle", {"reason": "bad_timing", "revisit_in_days": guess}, after)
    if window is not None:  # the window closed: bought something, or decided not to
        return Answer("recycle", {"reason": "no_need", "note": "went another way"}, after)
    reason = {"ic_at_icp": "no_authority", "poor_fit": "no_budget"}.get(person.segment, "no_need")
    return Answer("recycle", {"reason": reason}, after)

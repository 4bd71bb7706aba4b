"""Learning which nurture message works in which situation: Beta posteriors per template and context, and
Thompson sampling among the templates the chooser found eligible and relevant. Pure: evidence in, a pick out.

A context is the interest topic a send answered and the prospect's buying stage ("pricing/decision";
"general/awareness" when the prospect had shown no interest yet). For each template and context the outbox
counts sends, first human opens (machine opens never count) and responses: a click, or a hand-raise within
a week of the send (`chalicelib.domain.messaging`). The counters live in one counter period
(`LEARNING_PERIOD`), one item per template, context and measure, and the scheduler reads them once per tick.

A template's prior is the marketer's judgement, worth `PRIOR_SENDS` sends of evidence: its priority (each
`PRIORITY_DOUBLING` points doubles the expected response rate) times how well it suits the prospect (the
chooser's preferences: interest strength, stage, persona, recycle reason). Evidence then moves it.

Exploration is bounded: only the `EXPLORE_AMONG` best templates by posterior mean whose upper credible
bound reaches the best mean are drawn; a template the evidence has shown to be worse is not tried again in
that context. Draws are deterministic: a template's two uniform numbers come from a hash of the seed (the
send id) and its name, so one send always chooses the same template and adding a template changes no other
template's draw. A Beta draw is the ratio of two gamma draws, each by the Wilson-Hilferty approximation
(its deciles within a few percent of the exact ones for shape parameters of 1 or more, which `prior`
guarantees): about a microsecond, where seeding a random generator per send costs several.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import NamedTuple

LEARNING_PERIOD = (
    "learning"  # the counter period holding the evidence (never a date: the scoreboard skips it)
)
MEASURES = ("sent", "opened", "clicked")
# What each email outcome teaches (once per send): a hand-raise after a send is a response, like a click.
LEARNED_MEASURE = {"sent": "sent", "opened": "opened", "clicked": "clicked", "hand_raise": "clicked"}
GENERAL = "general"  # the topic of a send to a prospect who had shown no interest yet

BASE_RATE = 0.03  # a plain B2B nurture email's click rate, before priority and fit
PRIORITY_DOUBLING = 20.0
PRIOR_SENDS = 50.0  # the prior weighs as much as this many sends (more when its mean is low: alpha >= 1)
MIN_MEAN, MAX_MEAN = 0.002, 0.5
EXPLORE_AMONG = 3
CREDIBLE_SDS = 2.0

_NORMAL = NormalDist()
_SPAN = float(1 << 16)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the sends of one template in one context produced."""

    sent: float = 0.0
    opened: float = 0.0
    clicked: float = 0.0


Posteriors = Mapping[tuple[str, str], Evidence]  # (template, context) -> evidence


class Beta(NamedTuple):  # a tuple: built for every contender of every choice, and cheap to build
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def upper(self) -> float:
        """Mean plus CREDIBLE_SDS standard deviations: what the template could plausibly do."""
        n = self.alpha + self.beta
        return self.mean + CREDIBLE_SDS * math.sqrt(self.alpha * self.beta / (n * n * (n + 1)))


def context_of(topic: str | None, stage: str) -> str:
    return f"{topic or GENERAL}/{stage}"


def counter_name(template: str, context: str, measure: str) -> str:
    return f"{template}|{context}|{measure}"


def evidence_from_counters(counters: Mapping[str, float]) -> dict[tuple[str, str], Evidence]:
    """The evidence held in the LEARNING_PERIOD counters (names from `counter_name`)."""
    found: dict[tuple[str, str], dict[str, float]] = {}
    for name, value in counters.items():
        template, _, rest = name.partition("|")
        context, _, measure = rest.rpartition("|")
        if template and context and measure in MEASURES:
            found.setdefault((template, context), {})[measure] = float(value)
    return {key: Evidence(**measures) for key, measures in found.items()}


def prior_mean(priority: int, fit: float = 1.0) -> float:
    """The response rate the marketer's setup expects: priority, times how well the template suits."""
    return priority_rate(priority) * fit


@lru_cache(maxsize=512)
def priority_rate(priority: int) -> float:
    """`prior_mean` before fit: BASE_RATE doubled every PRIORITY_DOUBLING points of priority. Priorities
    are whole numbers from -100 to 100 (catalogue): each power is computed once, not once per candidate."""
    return BASE_RATE * 2.0 ** (priority / PRIORITY_DOUBLING)


def prior(mean: float) -> Beta:
    m = min(max(mean, MIN_MEAN), MAX_MEAN)
    alpha = max(1.0, m * PRIOR_SENDS)
    return Beta(alpha, alpha * (1.0 - m) / m)


def posterior(belief: Beta, evidence: Evidence | None) -> Beta:
    if evidence is None or evidence.sent <= 0:
        return belief
    responded = min(max(evidence.clicked, 0.0), evidence.sent)
    return Beta(belief.alpha + responded, belief.beta + evidence.sent - responded)


def draw(belief: Beta, seed: str, name: str) -> float:
    """One deterministic draw from `belief` for template `name` in the choice seeded by `seed`."""
    # Two 16-bit uniforms from one CRC-32: plenty of resolution for a draw (the normal's tails to 4.3 sd),
    # and a fraction of a cryptographic hash's cost. Not a secret, only a spread.
    bits = zlib.crc32(f"{seed}|{name}".encode())
    x = _gamma_z(belief.alpha, _normal_quantile(bits >> 16))
    y = _gamma_z(belief.beta, _normal_quantile(bits & 0xFFFF))
    return x / (x + y) if x + y > 0 else 0.0


@lru_cache(maxsize=1 << 16)
def _normal_quantile(k: int) -> float:
    """The standard normal's quantile at the 16-bit uniform k: only 65,536 of them, each computed once
    (NormalDist.inv_cdf is a few microseconds of Python, twice per contender of every choice)."""
    return _NORMAL.inv_cdf((k + 0.5) / _SPAN)


def _gamma_z(shape: float, z: float) -> float:
    # Wilson-Hilferty: a Gamma(k) variate is about k * (1 - 1/(9k) + z / (3 sqrt k))^3 for a normal z.
    cube = 1.0 - 1.0 / (9.0 * shape) + z / (3.0 * math.sqrt(shape))
    return shape * cube**3 if cube > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Pick:
    index: int  # into the options given
    exploring: bool  # the draw chose a template whose posterior mean is not the best
    value: float


def thompson(options: Sequence[tuple[str, float, Evidence | None]], seed: str) -> Pick:
    """Thompson sampling among `options` (name, prior mean, evidence), bounded as the module says. Ties
    go to the name first in order, so the order of the options never matters."""
    # A list, not a generator; a candidate without evidence (every one, outside a scheduler tick that
    # loaded some) has its prior mean clamped here: _posterior_mean's first line, without the call.
    ranked = sorted(
        [
            (
                -(MIN_MEAN if m < MIN_MEAN else MAX_MEAN if m > MAX_MEAN else m)
                if found is None
                else -_posterior_mean(m, found),
                name,
                i,
            )
            for i, (name, m, found) in enumerate(options)
        ]
    )
    best_mean, _, best = ranked[0]
    best_mean = -best_mean
    contenders = []
    for _, name, i in ranked[:EXPLORE_AMONG]:
        belief = posterior(prior(options[i][1]), options[i][2])
        if i == best or belief.upper >= best_mean:
            contenders.append((name, i, belief))
    if len(contenders) == 1:
        return Pick(best, False, best_mean)
    value, _, winner = max((draw(belief, seed, name), name, i) for name, i, belief in contenders)
    return Pick(winner, winner != best, value)


def _posterior_mean(mean: float, evidence: Evidence | None) -> float:
    # posterior(prior(mean), evidence).mean without building either: this runs for every candidate.
    m = MIN_MEAN if mean < MIN_MEAN else MAX_MEAN if mean > MAX_MEAN else mean
    if evidence is None or evidence.sent <= 0:
        return m
    alpha = m * PRIOR_SENDS if m * PRIOR_SENDS > 1.0 else 1.0
    responded = min(max(evidence.clicked, 0.0), evidence.sent)
    return (alpha + responded) / (alpha / m + evidence.sent)

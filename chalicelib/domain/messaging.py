"""Next-message choice: what a prospect hears from us (when they may: chalicelib.domain.cadence).

Relevance first: a template is a candidate only when it is eligible (not sent to this prospect before, unless
the rules allow repeats after its cooldown; any hard requirement of its front matter met) and relevant: it
covers one of the prospect's strongest interests (within `rules.nurture.relevant_share` of the strongest), or
answers the reason sales recycled them, or the prospect has shown no interest yet. Stage and persona are
preferences, not gates. When nothing relevant is eligible the chooser waits
(`rules.nurture.wait_for_relevant`, on by default) and says why, rather than send filler. Among the candidates
it learns what works: Thompson sampling over each template's Beta posterior in the send's context, the prior
set by the marketer's priority and the preferences (`chalicelib.domain.bandit`). Deterministic for the same
inputs and seed; it always says why it chose what it chose ("best so far (...)" or "exploring (...)"), or why
it chose nothing.

Claiming, sending and failing a touch (the lease, retries, parking) and learning from a send's outcomes:
chalicelib.domain.sending, whose names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import is_
from typing import NamedTuple

from chalicelib.domain.bandit import (
    Evidence,
    Posteriors,
    context_of,
    priority_rate,
    thompson,
)

# When a prospect may hear from us is chalicelib.domain.cadence's, and the claim/send bookkeeping
# chalicelib.domain.sending's; both re-exported here for existing callers.
from chalicelib.domain.cadence import (  # noqa: F401 (re-exports)
    PAUSED_WHY,
    contactable,
    plan_next_touch,
    why_no_touch_now,
    why_not_emailed,
)
from chalicelib.domain.catalogue import TemplateMeta, templates_on
from chalicelib.domain.lifecycle import NURTURED
from chalicelib.domain.profiling import buying_stage, persona_of
from chalicelib.domain.prospect import (
    MAX_LABEL_CHARS,
    Prospect,
)
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores, interest_weights, score
from chalicelib.domain.sending import (  # noqa: F401 (re-exports)
    CLAIM_LEASE,
    CLAIM_MAX_AGE,
    CLAIMED,
    FAILED,
    HAND_RAISE_CREDIT,
    MAX_TRIES,
    RETRY_AFTER,
    SENT,
    abandon_claim,
    claim_touch,
    credit_hand_raise,
    learns_from,
    mark_sent,
    parked,
    pending_claim,
    record_failure,
    retry_at,
    retry_claim,
    sent_messages,
)

# How each preference moves a template's prior response rate (chalicelib.domain.bandit.prior_mean).
STAGE_MATCH, STAGE_MISMATCH = 1.5, 0.5
PERSONA_MATCH, PERSONA_MISMATCH = 1.25, 0.6
ANSWERS_RECYCLE = 2.0
PREFERRED_TOPIC = 1.5


@dataclass(frozen=True, slots=True)
class Choice:
    template: TemplateMeta
    rank: float  # the winning draw (Thompson sampling)
    why: str
    context: str = ""  # the situation it was chosen for, "topic/stage" (chalicelib.domain.bandit)


@dataclass(frozen=True, slots=True)
class NoChoice:
    why: str


# Nurture's refusal for each state outside it, built once: most events are a lead's outside nurture (an
# anonymous visitor, a lead with sales), and the chooser answers each of them with this very refusal.
_PAUSED = {state: NoChoice(why) for state, why in PAUSED_WHY.items()}


def choose_next_message(
    p: Prospect,
    catalogue: Sequence[TemplateMeta],
    rules: Rules,
    now: datetime,
    scores: Scores | None = None,
    *,
    evidence: Posteriors | None = None,
    seed: str | None = None,
) -> Choice | NoChoice:
    """The next message for `p`, as the module says. `evidence`: what each template did in each context
    (loaded once per scheduler tick); `seed`: the send id the choice is for (the same seed, the same pick).
    Asked about one template alone (the nurture view's question "why not this one?"), a refusal names that
    template's own reason: sent already, a stage or persona it requires, or topics off the interests."""
    if p.state not in NURTURED:
        return _PAUSED[p.state]
    if p.messages:
        held = why_no_touch_now(p, rules, now)
        sent = sent_messages(p)
    else:  # no message yet (most leads in nurture): nothing is claimed, parked or sent to hold it back
        held = why_not_emailed(p)
        sent = []
    if held is not None:
        return NoChoice(held)
    scores = scores or score(p, rules, now)
    interests = interest_weights(p, rules, now)
    stage = buying_stage(p, scores, rules, now, interests)
    persona = persona_of(p, rules)
    strongest = max(interests.values(), default=0.0)
    floor = rules.nurture.relevant_share * strongest  # interests this close to the strongest are answered
    wanted = {t: w for t, w in interests.items() if w >= floor}
    recycle = p.current_recycle
    reason = recycle.reason if recycle is not None else None
    last_sent = {m.template: m.at for m in sent}
    seed = seed or _seed(p)
    if evidence:  # learned evidence is loaded per scheduler tick: not remembered
        return _choose(
            catalogue, rules, now, wanted, strongest, stage, persona, reason, last_sent, seed, evidence
        )
    # The rest is a function of exactly these (and the template metas and rules, both immutable): a lead's
    # events that change none of them (most of them: about 3 in 4 choices on the bench stream) get the
    # answer already found, Thompson's draw and the why included. `now` matters past this point only for a
    # cooldown, which the rules read only when they allow repeats.
    templates = _catalogue_entry(catalogue)
    key = (
        id(rules),
        id(templates),  # the entry's identity: its ids' hash is not kept by a tuple, so hashing it costs more
        seed,
        tuple(wanted.items()),
        strongest,
        stage,
        persona,
        reason,
        tuple(last_sent.items()),
        now if last_sent and rules.nurture.allow_repeats else None,
    )
    found = _CHOSEN.get(key)
    if found is None:
        answer = _choose(
            catalogue, rules, now, wanted, strongest, stage, persona, reason, last_sent, seed, None
        )
        if len(_CHOSEN) >= CHOSEN_CACHE_SIZE:
            _CHOSEN.clear()
        found = _CHOSEN[key] = (rules, templates, answer)
    return found[2]


_CatalogueEntry = tuple[tuple[int, ...], tuple[TemplateMeta, ...]]


def _catalogue_entry(catalogue: Sequence[TemplateMeta]) -> _CatalogueEntry:
    """One entry (the templates' ids and the templates) per catalogue, whatever sequence holds it. The
    caller passes the same catalogue choice after choice (the bench's list, a scheduler tick's): when it
    holds the very templates of the last entry, in order, that entry is taken without building and hashing
    a tuple of its ids."""
    global _LAST_CATALOGUE
    last, entry = _LAST_CATALOGUE
    if last is catalogue and len(catalogue) == len(entry[1]) and all(map(is_, catalogue, entry[1])):
        return entry
    ids = tuple(map(id, catalogue))
    held = _CATALOGUES.get(ids)
    if held is None:  # one copy of a catalogue's ids and templates for all its entries
        if len(_CATALOGUES) >= CATALOGUES_KEPT:
            _CATALOGUES.clear()
        held = _CATALOGUES[ids] = (ids, tuple(catalogue))
    _LAST_CATALOGUE = (catalogue, held)
    return held


CHOSEN_CACHE_SIZE = 8192
# An entry holds the rules and catalogue entry whose identities key it: no id is reused while it is kept.
_CHOSEN: dict[tuple[object, ...], tuple[Rules, _CatalogueEntry, Choice | NoChoice]] = {}
CATALOGUES_KEPT = 64
_CATALOGUES: dict[tuple[int, ...], _CatalogueEntry] = {}
_LAST_CATALOGUE: tuple[object, _CatalogueEntry] = (None, ((), ()))


def _choose(
    catalogue: Sequence[TemplateMeta],
    rules: Rules,
    now: datetime,
    wanted: dict[str, float],
    strongest: float,
    stage: str,
    persona: str,
    reason: str | None,
    last_sent: dict[str, datetime],
    seed: str,
    evidence: Posteriors | None,
) -> Choice | NoChoice:
    """The choice among `catalogue` once the lead's situation is known (what `choose_next_message` reads of
    the prospect, derived): eligible and relevant candidates, then Thompson sampling seeded by `seed`."""
    treatment = rules.recycle.get(reason) if reason is not None else None
    preferred = treatment.prefer_topics if treatment is not None else ()
    preferred_set = frozenset(preferred)
    settings = rules.nurture
    # Candidates as thompson's options (name, prior mean, evidence) with what the reasons need beside them
    # (template, topic, context): a _Candidate is built for the one chosen only. This loop runs over every
    # template for every choice, so it is written out (no generator, no max(key=) per template).
    relevant: list[tuple[str, float, Evidence | None]] = []
    relevant_about: list[tuple[TemplateMeta, str | None, str]] = []
    filler: list[tuple[str, float, Evidence | None]] = []
    filler_about: list[tuple[TemplateMeta, str | None, str]] = []
    keep_filler = not settings.wait_for_relevant
    contexts: dict[str | None, str] = {}
    alone = len(catalogue) == 1
    scan = catalogue
    if wanted and reason is None and not keep_filler and not alone:
        # Only a template on a wanted topic can be a candidate then (the loop skips every other one
        # without a word): look those up rather than walk the whole catalogue.
        scan = templates_on(catalogue, wanted)
    for template in scan:
        name = template.name
        sent_at = last_sent.get(name)
        if sent_at is not None and (
            not settings.allow_repeats or now - sent_at < timedelta(days=template.cooldown_days)
        ):
            if alone:
                again = (
                    f"its {template.cooldown_days}-day cooldown"
                    if settings.allow_repeats
                    else "the rules send a template once"
                )
                return NoChoice(f"{name} was sent on {sent_at:%Y-%m-%d} ({again})")
            continue
        if template.requires_stages and stage not in template.requires_stages:
            if alone:
                needed = ", ".join(template.requires_stages)
                return NoChoice(f"{name} requires stage {needed}; the prospect is at {stage}")
            continue
        if template.requires_personas and persona not in template.requires_personas:
            if alone:
                needed = ", ".join(template.requires_personas)
                return NoChoice(f"{name} requires persona {needed}; the prospect is {persona}")
            continue
        # Relevance is decided first and cheaply: most templates are off-topic for most prospects. The
        # topic answered is the strongest wanted one it covers (the first of equals, as max() would pick).
        topics = template.topics
        topic = None
        weight = 0.0
        if wanted:
            for one in topics:
                held_weight = wanted.get(one)
                if held_weight is not None and (topic is None or held_weight > weight):
                    topic, weight = one, held_weight
        answers = called_for = False
        if reason is not None:
            answers = reason in template.recycle_reasons
            called_for = not preferred_set.isdisjoint(topics)
        is_relevant = topic is not None or answers or called_for or not wanted
        if not is_relevant and not keep_filler:
            if alone:
                shown = ", ".join(sorted(wanted, key=lambda t: (-wanted[t], t))[:3])
                about = ", ".join(topics) or "no topic"
                return NoChoice(
                    f"{name} is about {about}, not the prospect's interests ({shown})"[:MAX_LABEL_CHARS]
                )
            continue
        fit = weight / strongest if topic is not None else 1.0
        if answers:
            fit *= ANSWERS_RECYCLE
        if called_for:
            fit *= PREFERRED_TOPIC
        if template.stages:
            fit *= STAGE_MATCH if stage in template.stages else STAGE_MISMATCH
        if template.personas:
            fit *= PERSONA_MATCH if persona in template.personas else PERSONA_MISMATCH
        context = contexts.get(topic)
        if context is None:
            context = contexts[topic] = context_of(topic, stage)
        found = evidence.get((name, context)) if evidence else None
        option = (name, priority_rate(template.priority) * fit, found)  # = prior_mean(priority, fit)
        if is_relevant:
            relevant.append(option)
            relevant_about.append((template, topic, context))
        else:
            filler.append(option)
            filler_about.append((template, topic, context))
    if not relevant and (settings.wait_for_relevant or not filler):
        if not wanted:
            return NoChoice(f"no eligible template for stage {stage}, persona {persona} (all sent or unfit)")
        shown = ", ".join(sorted(wanted, key=lambda t: (-wanted[t], t))[:3])
        why = f"waiting for a relevant template: none eligible on {shown} (stage {stage}, persona {persona})"
        return NoChoice(why[:MAX_LABEL_CHARS])
    options, described = (relevant, relevant_about) if relevant else (filler, filler_about)
    pick = thompson(options, seed)
    template, topic, context = described[pick.index]
    chosen = _Candidate(template, topic, context, options[pick.index][1], options[pick.index][2])
    reasons = [_learning_why(chosen, pick.exploring)]
    if not relevant:
        reasons.append("nothing on the prospect's interests; general fit")
    if chosen.topic is not None:
        reasons.append(f"interest {chosen.topic} ({wanted[chosen.topic]:g})")
    if reason is not None and reason in template.recycle_reasons:
        reasons.append(f"answers recycle reason {reason}")
    called = [t for t in template.topics if t in preferred]
    if called:
        reasons.append(f"{reason} calls for {', '.join(called)}")
    if template.stages:
        reasons.append(f"stage {stage}" if stage in template.stages else f"meant for {template.stages[0]}")
    if persona in template.personas:
        reasons.append(f"persona {persona}")
    why = f"{template.name}: {'; '.join(reasons)}"
    return Choice(template=template, rank=round(pick.value, 6), why=why, context=chosen.context)


def stage_fit(template: TemplateMeta, stage: str) -> float:
    """How the template's stage preference moves its prior for a prospect at `stage`."""
    if not template.stages:
        return 1.0
    return STAGE_MATCH if stage in template.stages else STAGE_MISMATCH


def _seed(p: Prospect) -> str:
    return f"{p.lead_id}-{len(p.messages) + 1}"


class _Candidate(NamedTuple):
    template: TemplateMeta
    topic: str | None  # the prospect's interest it answers (the strongest it covers)
    context: str
    prior_mean: float
    evidence: Evidence | None


def _learning_why(candidate: _Candidate, exploring: bool) -> str:
    found = candidate.evidence
    if found is not None and found.sent > 0:
        clicked = min(found.clicked, found.sent)
        record = f"clicked {clicked:g} of {found.sent:g} in {candidate.context}"
    else:
        record = f"no sends yet in {candidate.context}, priority {candidate.template.priority}"
    return f"{'exploring' if exploring else 'best so far'} ({record})"

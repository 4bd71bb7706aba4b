"""What nurture would do, explained for marketers: for one lead, which templates are eligible, which one goes
next and why each other one does not; for one template, which leads due soon would get it.

Every answer is the chooser's own (`domain.messaging.choose_next_message`), never a copy of its logic: the
next message is the chooser run over the whole catalogue, as the sweep runs it; a template's own verdict is
the chooser run over that template alone (a Choice: eligible; a NoChoice: its reason). Facts that help read
a refusal (when the template was last sent to the lead, its topics and hard requirements) are shown beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.adapters.templates import ParsedTemplate, TemplateStatus
from chalicelib.domain.bandit import Posteriors
from chalicelib.domain.messaging import Choice, choose_next_message, sent_messages, why_no_touch_now
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.usecases.ports import ProspectRepository

DUE_HORIZON = timedelta(days=7)  # "who is due" looks this far ahead
DUE_READ_LIMIT = 100  # profiles read for one template's due list, at most
DUE_SHOWN_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Verdict:
    template: str
    status: str  # active | paused | deleted
    eligible: bool
    next: bool
    why: str
    topics: tuple[str, ...]
    last_sent: datetime | None


@dataclass(frozen=True, slots=True)
class LeadPlan:
    lead_id: str
    next_template: str | None
    why: str  # the chooser's reason for its pick, or for choosing nothing
    verdicts: list[Verdict]


@dataclass(frozen=True, slots=True)
class DueLead:
    lead_id: str
    due_at: datetime
    why: str


def plan_for_lead(
    p: Prospect,
    templates: Mapping[str, ParsedTemplate],
    rules: Rules,
    now: datetime,
    evidence: Posteriors,
) -> LeadPlan:
    """The chooser's pick for `p` now, and each template's own verdict (eligible first, then by name)."""
    held = why_no_touch_now(p, rules, now)
    if held is not None:  # the lead's own state: the same answer for every template, so said once
        return LeadPlan(p.lead_id, None, held, [])
    active = [t.meta for t in templates.values() if t.status is TemplateStatus.ACTIVE]
    overall = choose_next_message(p, active, rules, now, evidence=evidence)
    chosen = overall.template.name if isinstance(overall, Choice) else None
    last_sent: dict[str, datetime] = {}
    for message in sent_messages(p):
        last_sent[message.template] = max(message.at, last_sent.get(message.template, message.at))
    verdicts = []
    for name, parsed in templates.items():
        meta = parsed.meta
        if parsed.status is not TemplateStatus.ACTIVE:
            verdict = Verdict(
                name, parsed.status.value, False, False, f"{parsed.status.value}: nurture never chooses it",
                meta.topics, last_sent.get(name),
            )  # fmt: skip
        else:
            alone = choose_next_message(p, [meta], rules, now, evidence=evidence)
            verdict = Verdict(
                name, parsed.status.value, isinstance(alone, Choice), name == chosen, alone.why,
                meta.topics, last_sent.get(name),
            )  # fmt: skip
        verdicts.append(verdict)
    verdicts.sort(key=lambda v: (not v.next, not v.eligible, v.template))
    return LeadPlan(p.lead_id, chosen, overall.why, verdicts)


def due_for_template(
    name: str,
    prospects: ProspectRepository,
    choose: Callable[[Prospect, datetime], Choice | None],
    now: datetime,
) -> tuple[list[DueLead], bool]:
    """Leads due within DUE_HORIZON whose next touch, as the chooser sees it at their due time, is `name`;
    bounded (DUE_READ_LIMIT profiles read). The flag says the list may be longer than what was read."""
    ids = prospects.due(now + DUE_HORIZON, DUE_READ_LIMIT)
    found: list[DueLead] = []
    for lead_id in ids:
        stored = prospects.get(lead_id, consistent=False)
        if stored is None:
            continue
        p = stored.item
        at = max(p.next_touch_at or now, now)
        choice = choose(p, at)
        if choice is not None and choice.template.name == name:
            found.append(DueLead(lead_id, at, choice.why))
        if len(found) >= DUE_SHOWN_LIMIT:
            break
    return found, len(ids) >= DUE_READ_LIMIT or len(found) >= DUE_SHOWN_LIMIT

"""The sales summary: one readable answer to "why this lead, and what do they care about?"."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain.accounts import AccountCounts, lead_accounts
from chalicelib.domain.assignment import team_of
from chalicelib.domain.attribution import touch_as_dict
from chalicelib.domain.profiling import buying_stage, persona_of
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.reasons import line_text
from chalicelib.domain.routing import routed_as
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores, day_of, score, top_interests


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _scores_in_words(p: Prospect, rules: Rules, scores: Scores, now: datetime) -> dict[str, Any]:
    """The scores with each breakdown line in plain words beside its rule ("read the pricing page 3 times
    this week, most recently yesterday")."""
    answer = scores.as_dict()
    today = day_of(now)
    for line, shown in zip(scores.breakdown, answer["breakdown"], strict=True):
        shown["text"] = line_text(p, rules, line, today)
    return answer


def summarize(
    p: Prospect,
    rules: Rules,
    now: datetime,
    scores: Scores | None = None,
    account_counts: Mapping[str, AccountCounts] | None = None,
) -> dict[str, Any]:
    """`account_counts`: people and engaged people per account, where the caller read them (else None)."""
    scores = scores or score(p, rules, now)
    accounts = lead_accounts(p, account_counts or {})
    recycle = p.last_recycle
    sla = p.sla
    return {
        "id": p.lead_id,
        "state": p.state.value,
        "owner": p.owner,
        "owner_team": team_of(rules.assignment, p.owner),  # None: not on a team, so never sent this summary
        "identity": {
            "email": p.email,
            "user_id": p.user_id,
            "anonymous_ids": p.anonymous_ids,
            "crm_ids": p.crm_ids,
            "name": p.name,
            "company": p.company,
            "title": p.traits.get("title"),
            "traits": p.traits,
        },
        # The companies the person belongs to (group calls), and a line for each where several people engage.
        "accounts": accounts,
        "account_signals": [account["signal"] for account in accounts if account["signal"]],
        "source": p.source,
        # Where the lead came from: its first attributed visit (never changes) and its latest one.
        "attribution": {
            "first_touch": touch_as_dict(p.first_touch),
            "last_touch": touch_as_dict(p.last_touch),
        },
        "created_at": _iso(p.created_at),
        "last_activity_at": _iso(p.last_activity_at),
        "persona": persona_of(p, rules),
        "stage": buying_stage(p, scores, rules, now),
        "scores": _scores_in_words(p, rules, scores, now),
        "why_sales": next((t.reason for t in reversed(p.history) if t.to_state.value == "sales_ready"), None),
        # hand_raise | low_fit_hand_raise (routed, flagged) | qualified | requalified | recycle_surge
        "routed_as": routed_as(p),
        "interests": [{"topic": topic, "weight": weight} for topic, weight in top_interests(p, rules, now)],
        "pages": [{"at": _iso(v.at), "path": v.path, "title": v.title} for v in reversed(p.pages)],
        "key_moments": [{"at": _iso(k.at), "kind": k.kind, "text": k.text} for k in reversed(p.key_moments)],
        # Events no rule scores (so no key moment), newest first, with the properties that say what they were.
        "other_events": [
            {"at": _iso(e.at), "name": e.name, "properties": dict(e.properties)}
            for e in reversed(p.other_events)
        ],
        "messages": [
            {
                "send_id": m.send_id,
                "template": m.template,
                "version": m.version,
                "at": _iso(m.at),
                "why": m.reason,
                "outcomes": m.outcomes,
                "status": m.status,  # claimed (being sent) | sent | failed (not sent; see error)
                "tries": m.tries,
                "error": m.error,
            }
            for m in reversed(p.messages)
        ],
        "contactable": p.suppression is None and bool(p.email),
        "suppression": {"reason": p.suppression.reason, "at": _iso(p.suppression.at)}
        if p.suppression
        else None,
        "recycle": {
            "reason": recycle.reason,
            "note": recycle.note,
            "at": _iso(recycle.at),
            "by": recycle.actor,
            "revisit_at": _iso(recycle.revisit_at),
            "times_recycled": len(p.recycles),
            "history": [
                {"reason": r.reason, "at": _iso(r.at), "by": r.actor, "note": r.note} for r in p.recycles
            ],
        }
        if recycle
        else None,
        "next_touch_at": _iso(p.next_touch_at),
        "nurture_waiting": p.nurture_waiting,  # why the last look sent no email (None: it sent one)
        "history": [
            {
                "at": _iso(t.at),
                "from": t.from_state.value,
                "to": t.to_state.value,
                "trigger": t.trigger.value,
                "actor": t.actor,
                "reason": t.reason,
                "note": t.note,
            }
            for t in p.history
        ],
        "sla": {
            "status": sla.status,
            "started_at": _iso(sla.started_at),
            "due_at": _iso(sla.due_at),
            "escalated_at": _iso(sla.escalated_at),
            "resolved_at": _iso(sla.resolved_at),
        }
        if sla
        else None,
        "amount": p.amount,
        "trimmed": p.trimmed or None,  # values cut to the profile bounds, by field (README "Profile bounds")
    }

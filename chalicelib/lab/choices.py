"""Which nurture template each rule set would send a lead next, and the report of the choices that change.

At the end of a lead's replayed history (once per lead and rule set, never per event) the backtest asks the
nurture chooser (`chalicelib.domain.messaging.choose_next_message`) what it would send next: the same
catalogue of active template metas on both sides, the same seed per lead and no learned evidence (priors
only), so the only difference between the two answers is the rules: the interests, stage, persona and
lifecycle state they gave the lead, and their nurture settings. A lead one side would email and the other
would not (routed to sales, waiting for a relevant template) is a change too: `None` stands for "waits".

The catalogue travels to the AWS shard functions inside the job's spec (`catalogue_spec`, bounded by
`MAX_TEMPLATES`), so every shard judges the one catalogue that was active when the backtest started, even if a
template is edited while it runs. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chalicelib.domain.catalogue import Stage, TemplateMeta
from chalicelib.domain.messaging import Choice, choose_next_message
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores

MAX_TEMPLATES = 1000  # metas carried in a job spec; more active templates than this are cut, by name
TOP_CHANGES = 20  # (from -> to) pairs listed
EXAMPLES = 50  # leads shown with both choices and both whys
VERSIONS = ("published", "draft")


def next_choice(
    p: Prospect, catalogue: Sequence[TemplateMeta], rules: Rules, now: datetime, scores: Scores | None
) -> tuple[str | None, str]:
    """The template the chooser would send `p` next under `rules` (None: it waits) and why."""
    # One seed per lead, whatever the rules: the sampling draws the same numbers on both sides.
    chosen = choose_next_message(p, catalogue, rules, now, scores, seed=f"{p.lead_id}-backtest")
    if isinstance(chosen, Choice):
        return chosen.template.name, chosen.why
    return None, chosen.why


# --- the catalogue in a job spec ---------------------------------------------------------------------------


def catalogue_spec(metas: Sequence[TemplateMeta]) -> dict[str, Any]:
    """The active templates' metas as JSON for a job spec: at most MAX_TEMPLATES, by name."""
    ordered = sorted(metas, key=lambda m: m.name)
    return {
        "templates": [_meta_dict(m) for m in ordered[:MAX_TEMPLATES]],
        "active": len(ordered),
    }


def catalogue_from_spec(spec: Mapping[str, Any]) -> list[TemplateMeta]:
    return [_meta_from(item) for item in spec.get("templates", [])[:MAX_TEMPLATES]]


def _meta_dict(m: TemplateMeta) -> dict[str, Any]:
    # The subject is not needed to choose (only to render): left out to keep the spec small.
    return {
        "name": m.name,
        "topics": list(m.topics),
        "stages": [s.value for s in m.stages],
        "personas": list(m.personas),
        "priority": m.priority,
        "cooldown_days": m.cooldown_days,
        "recycle_reasons": list(m.recycle_reasons),
        "version": m.version,
        "requires_stages": [s.value for s in m.requires_stages],
        "requires_personas": list(m.requires_personas),
    }


def _meta_from(item: Mapping[str, Any]) -> TemplateMeta:
    return TemplateMeta(
        name=str(item["name"]),
        subject="",
        topics=tuple(item.get("topics", ())),
        stages=tuple(Stage(s) for s in item.get("stages", ())),
        personas=tuple(item.get("personas", ())),
        priority=int(item.get("priority", 0)),
        cooldown_days=int(item.get("cooldown_days", 30)),
        recycle_reasons=tuple(item.get("recycle_reasons", ())),
        version=int(item.get("version", 0)),
        requires_stages=tuple(Stage(s) for s in item.get("requires_stages", ())),
        requires_personas=tuple(item.get("requires_personas", ())),
    )


# --- the report's section ----------------------------------------------------------------------------------


def template_changes(
    rows: Sequence[Mapping[str, Any]], catalogue: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """How many leads' next template differs between the rule sets, the commonest (from -> to) pairs and
    up to EXAMPLES leads with both choices and whys. None when the rows carry no choices (no catalogue)."""
    if not rows or any("next" not in row["published"] for row in rows):
        return None
    changed = [row for row in rows if row["published"]["next"] != row["draft"]["next"]]
    pairs = Counter((row["published"]["next"], row["draft"]["next"]) for row in changed)
    top = sorted(pairs.items(), key=lambda item: (-item[1], item[0][0] or "", item[0][1] or ""))
    # Leads one side emails and the other does not come first: the changes a marketer notices most.
    examples = sorted(changed, key=lambda row: (None not in _nexts(row), row["lead"]))
    return {
        "leads": len(rows),
        "changed": len(changed),
        "sends_to_waits": sum(1 for r in changed if r["draft"]["next"] is None),
        "waits_to_sends": sum(1 for r in changed if r["published"]["next"] is None),
        "top": [{"from": a, "to": b, "count": n} for (a, b), n in top[:TOP_CHANGES]],
        "examples": [
            {
                "lead": row["lead"],
                **{
                    version: {"template": row[version]["next"], "why": row["next_why"][version]}
                    for version in VERSIONS
                },
            }
            for row in examples[:EXAMPLES]
        ],
        "catalogue": dict(catalogue or {}),
    }


def _nexts(row: Mapping[str, Any]) -> tuple[str | None, str | None]:
    return row["published"]["next"], row["draft"]["next"]

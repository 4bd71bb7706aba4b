"""Who owns a lead when it is routed to sales: the assignment rules, applied to one prospect.

An owner the CRM already knows wins (sales keeps its accounts); otherwise the first territory that matches
the prospect's country and company size names the team, else the default team; within the team, members
take turns. The turn is an argument (the service counts past assignments per team), so the same inputs
always give the same owner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Assignment, Territory

CRM_OWNER_TRAIT = "crm_owner"


@dataclass(frozen=True, slots=True)
class OwnerChoice:
    owner: str
    team: str | None  # None when the CRM named the owner
    why: str


def crm_owner(p: Prospect) -> str | None:
    value = p.traits.get(CRM_OWNER_TRAIT)
    text = str(value).strip() if value is not None else ""
    return text or None


def team_for(p: Prospect, rules: Assignment) -> tuple[str, str]:
    """The team a prospect belongs to, and why."""
    for index, territory in enumerate(rules.territories):
        if _matches(p, territory):
            return territory.team, f"territory {index + 1} ({_describe(territory)})"
    return rules.default_team, "default team"


def choose_owner(p: Prospect, rules: Assignment, turn: Callable[[str], int]) -> OwnerChoice:
    """The owner for a routed lead. `turn(team)` is how many leads that team was given before this one."""
    known = crm_owner(p) if rules.crm_owner_wins else None
    if known:
        return OwnerChoice(owner=known, team=None, why="owner known from the CRM")
    team, why = team_for(p, rules)
    members = rules.teams[team].members
    index = turn(team) % len(members)
    return OwnerChoice(
        owner=members[index], team=team, why=f"{why}; round robin {index + 1} of {len(members)} in {team}"
    )


def team_of(rules: Assignment | None, person: str | None) -> str | None:
    """The team `person` is a member or the lead of (addresses compared without case), else None: only such
    configured people are sent a lead's summary (an owner may have been named by a CRM or typed by sales)."""
    if rules is None or not person:
        return None
    wanted = person.strip().casefold()
    for name, team in rules.teams.items():
        if any(wanted == someone.casefold() for someone in (*team.members, team.lead or "")):
            return name
    return None


def team_lead(rules: Assignment | None, owner: str | None) -> str | None:
    """The lead of the team `owner` belongs to (who hears about an unworked lead)."""
    if rules is None or owner is None:
        return None
    return next((team.lead for team in rules.teams.values() if owner in team.members), None)


def _matches(p: Prospect, territory: Territory) -> bool:
    if territory.countries is not None:
        country = p.traits.get("country")
        if not isinstance(country, str) or country.upper() not in territory.country_codes:
            return False
    if territory.company_size is not None:
        size = _number(p.traits.get("company_size"))
        low, high = territory.company_size
        if size is None or not low <= size <= high:
            return False
    return True


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return None


def _describe(territory: Territory) -> str:
    parts = []
    if territory.countries is not None:
        parts.append("country in " + ", ".join(territory.countries))
    if territory.company_size is not None:
        low, high = territory.company_size
        parts.append(f"company size {low:g}-{high:g}")
    return " and ".join(parts)

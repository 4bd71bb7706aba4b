"""The account use cases: one account as sales reads it, and the counts a lead's summary names.

Reads only: an account and its member list come from the `AccountDirectory` (written by the outbox effect
of the writes that processed group calls); the people shown are read from their profiles, so their state,
score and engagement are those of now, not of the day they joined.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from chalicelib.domain.accounts import (
    ENGAGED_WINDOW_DAYS,
    MAX_MEMBERS_READ,
    AccountCounts,
    count_members,
    engagement_line,
    people_to_show,
)
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import score
from chalicelib.errors import NotFound
from chalicelib.usecases.ports import AccountDirectory, ProspectRepository


class AccountService:
    def __init__(
        self,
        *,
        accounts: AccountDirectory,
        prospects: ProspectRepository,
        rules: Callable[[], Rules],
        clock: Callable[[], datetime],
    ) -> None:
        self._accounts = accounts
        self._prospects = prospects
        self._rules = rules
        self._clock = clock

    def show(self, account_id: str) -> dict[str, Any]:
        """The account's traits, its people (the most recently engaged first, capped: `truncated`), their
        combined engagement now, and how many engaged in the last ENGAGED_WINDOW_DAYS days."""
        account_id = account_id.strip()
        record = self._accounts.get(account_id) if account_id else None
        if record is None:
            raise NotFound(f"no account {account_id!r} (accounts are made by group calls)")
        now, rules = self._clock(), self._rules()
        members, more = self._accounts.members(account_id, MAX_MEMBERS_READ)
        counts = count_members(members, now.date(), more)
        shown = people_to_show(members)
        people = []
        combined = 0.0
        for member in shown:
            stored = self._prospects.get(member.lead_id, consistent=False)
            if stored is None:
                continue  # merged into another lead or erased since: the survivor has its own row
            p = stored.item
            scores = score(p, rules, now)
            combined += scores.engagement
            people.append(_person(p, scores.total, scores.engagement, member.engaged_on))
        name = str(record.traits.get("name") or account_id)
        return {
            "id": account_id,
            "name": name,
            "traits": record.traits,
            "updated_at": record.updated_at.isoformat() if record.updated_at else None,
            "people": people,
            "people_count": counts.people,
            "truncated": counts.truncated or len(shown) < counts.people,
            "engagement": round(combined, 1),
            "engaged_people": counts.engaged_people,
            "engaged_window_days": ENGAGED_WINDOW_DAYS,
            "signal": engagement_line(counts.engaged_people, name) if counts.engaged_people >= 2 else None,
        }


def account_counts(accounts: AccountDirectory, p: Prospect, today: date) -> dict[str, AccountCounts]:
    """People and recently engaged people of each of the lead's accounts (one query per account)."""
    found = {}
    for link in p.accounts:
        members, more = accounts.members(link.account_id, MAX_MEMBERS_READ)
        found[link.account_id] = count_members(members, today, more)
    return found


def _person(p: Prospect, total: float, engagement: float, engaged_on: date | None) -> dict[str, Any]:
    return {
        "id": p.lead_id,
        "name": p.name or None,
        "email": p.email,
        "title": p.traits.get("title"),
        "state": p.state.value,
        "score": total,
        "engagement": engagement,
        "last_seen": p.last_activity_at.isoformat() if p.last_activity_at else None,
        "engaged_on": engaged_on.isoformat() if engaged_on else None,
    }

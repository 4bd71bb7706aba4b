"""Accounts: the companies people belong to (a tracking source's `group` call), kept apart from the person.

A group call names an account (`groupId`) and its traits (name, domain, employees, industry, plan...). It
links the person to the account, keeping a bounded snapshot of the account's traits on the profile (fit
rules read `account.<name>` from it, so scoring stays pure and needs no extra read), and never changes the
person's own traits. The account's own record and its member list live in their own table, written by an
outbox effect (`AccountsTouched` → chalicelib.effects.outbox `UpdateAccounts`); this module also decides
what those records say, and how an account and the accounts of a lead are shown. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from chalicelib.domain.bounds import ACCOUNT_CORE_TRAITS, account_value, fits_id, note
from chalicelib.domain.decisions import AccountsTouched, Effect
from chalicelib.domain.prospect import (
    MAX_ACCOUNT_TRAITS,
    MAX_ACCOUNTS,
    MAX_TRAIT_KEY_CHARS,
    AccountLink,
    Prospect,
)
from chalicelib.domain.rules import ACCOUNT_TRAIT_PREFIX

ENGAGED_WINDOW_DAYS = 14  # "engaged recently": earned engagement points in the last 14 days (today included)
MAX_PEOPLE_SHOWN = 50  # people listed on an account (the most recently engaged first)
MAX_MEMBERS_READ = 1000  # member rows an account's counts are made from; more are flagged `truncated`

# Segment's group traits spell some names several ways; the account keeps one.
ACCOUNT_TRAIT_ALIASES = {
    "employee_count": "employees",
    "employeeCount": "employees",
    "numberOfEmployees": "employees",
    "company_size": "employees",
    "website": "domain",
}
# Group traits that name a person, not the account (Segment's spec lets a group carry them): never kept.
_PERSONAL = frozenset({"email", "userId", "anonymousId", "phone", "firstName", "lastName", "first_name"})


# --- records the account table holds (the port's plain data) ---


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: str
    traits: dict[str, Any]
    updated_at: datetime | None  # when the group call that set these traits happened


@dataclass(frozen=True, slots=True)
class Member:
    """One person's row in an account's member list."""

    lead_id: str
    joined_at: datetime
    engaged_on: date | None  # the last day the person earned engagement points, as last written


# --- folding a group call ---


def account_traits(p: Prospect, proposed: Mapping[str, Any]) -> dict[str, Any]:
    """The account traits a group call proposes, bounded: plain values, known spellings, an address's
    country; at most MAX_ACCOUNT_TRAITS names (the core ones first)."""
    traits: dict[str, Any] = {}
    for key, value in proposed.items():
        name = ACCOUNT_TRAIT_ALIASES.get(str(key), str(key))
        if name in _PERSONAL or value is None:
            continue
        if name == "address" and isinstance(value, Mapping):
            name, value = "country", value.get("country")
            if value is None:
                continue
        if len(name) > MAX_TRAIT_KEY_CHARS:
            note(p, "accounts")
            continue
        plain = account_value(p, value)
        if plain is not None:
            traits[name] = plain
    return _capped(p, traits)


def _capped(p: Prospect, traits: dict[str, Any]) -> dict[str, Any]:
    """At most MAX_ACCOUNT_TRAITS names: the core ones (name, domain, employees...) first, then the newest."""
    if len(traits) <= MAX_ACCOUNT_TRAITS:
        return traits
    core = [name for name in traits if name in ACCOUNT_CORE_TRAITS]
    others = [name for name in traits if name not in ACCOUNT_CORE_TRAITS]
    kept = set(core + others[len(others) - (MAX_ACCOUNT_TRAITS - len(core)) :])
    note(p, "accounts", len(traits) - len(kept))
    return {name: value for name, value in traits.items() if name in kept}


def join_account(p: Prospect, account_id: str, proposed: Mapping[str, Any], at: datetime) -> list[Effect]:
    """Link the person to `account_id` with the traits the call proposes (merged over the snapshot: a group
    call may send only what changed). The person's own traits are not touched. An out-of-order (older) call
    refreshes the link but not newer traits. At most MAX_ACCOUNTS links: the one not heard from longest goes
    (its member row stays: the person did belong)."""
    if not fits_id(account_id):
        note(p, "accounts")
        return []
    traits = account_traits(p, proposed)
    link = next((a for a in p.accounts if a.account_id == account_id), None)
    if link is None:
        link = AccountLink(account_id=account_id, at=at, traits=traits)
    else:
        p.accounts.remove(link)
        if at >= link.at:
            fresh = {name: value for name, value in link.traits.items() if name not in traits}
            link.traits = _capped(p, {**fresh, **traits})  # the names just proposed are the newest
            link.at = at
    p.accounts.append(link)
    if len(p.accounts) > MAX_ACCOUNTS:
        note(p, "accounts", len(p.accounts) - MAX_ACCOUNTS)
        del p.accounts[: len(p.accounts) - MAX_ACCOUNTS]
    return [AccountsTouched((account_id,))]


def absorb_accounts(p: Prospect, other: Prospect) -> None:
    """A merged-away profile's accounts join the survivor's (the newer snapshot of one account wins); the
    survivor's member rows are written anew (synced_day None)."""
    for theirs in other.accounts:
        mine = next((a for a in p.accounts if a.account_id == theirs.account_id), None)
        if mine is None:
            p.accounts.insert(0, AccountLink(theirs.account_id, theirs.at, dict(theirs.traits), None))
        elif theirs.at > mine.at:
            mine.traits, mine.at = {**mine.traits, **theirs.traits}, theirs.at
    del p.accounts[: max(len(p.accounts) - MAX_ACCOUNTS, 0)]


def last_engaged_day(p: Prospect) -> int | None:
    """The last UTC day (proleptic ordinal) the person earned engagement points, if any is kept."""
    days = [day for buckets in p.engagement.values() for day, points in buckets.items() if points > 0]
    return max(days, default=None)


def sync_accounts(p: Prospect) -> list[Effect]:
    """After a unit of work: the member rows whose engagement day is behind the person's (or never written)
    are to be written. At most once a day per account, so membership costs no write per page view."""
    if not p.accounts:  # most people: no account, so no walk over every engagement bucket per event
        return []
    engaged = last_engaged_day(p)
    stale = []
    for link in p.accounts:
        if link.synced_day is None or (engaged is not None and engaged > link.synced_day):
            link.synced_day = engaged if engaged is not None else 0
            stale.append(link.account_id)
    return [AccountsTouched(tuple(stale))] if stale else []


def engaged_on(link: AccountLink) -> date | None:
    return date.fromordinal(link.synced_day) if link.synced_day else None


# --- fit ---


class AcrossAccounts(tuple[Any, ...]):
    """The values of one trait across the person's accounts: a fit rule takes the best of them."""


def trait_value(p: Prospect, name: str) -> Any:
    """What a fit rule reads for `name`: the email, a person's trait, or `account.<trait>` across accounts."""
    if name == "email":
        return p.email
    if name.startswith(ACCOUNT_TRAIT_PREFIX):
        key = name[len(ACCOUNT_TRAIT_PREFIX) :]
        values = AcrossAccounts(v for a in p.accounts if (v := a.traits.get(key)) is not None and v != "")
        return values or None
    return p.traits.get(name)


# --- showing ---


def engaged_since(today: date) -> date:
    return today - timedelta(days=ENGAGED_WINDOW_DAYS - 1)


@dataclass(frozen=True, slots=True)
class AccountCounts:
    people: int
    engaged_people: int
    truncated: bool = False


def count_members(members: Sequence[Member], today: date, truncated: bool = False) -> AccountCounts:
    since = engaged_since(today)
    engaged = sum(1 for m in members if m.engaged_on is not None and m.engaged_on >= since)
    return AccountCounts(people=len(members), engaged_people=engaged, truncated=truncated)


def engagement_line(people: int, account: str) -> str:
    return f"{people} people at {account} engaged in the last {ENGAGED_WINDOW_DAYS} days"


def lead_accounts(p: Prospect, counts: Mapping[str, AccountCounts]) -> list[dict[str, Any]]:
    """The lead summary's `accounts`: newest group call first; counts where they were read."""
    shown = []
    for link in reversed(p.accounts):
        count = counts.get(link.account_id)
        engaged = count.engaged_people if count else None
        shown.append(
            {
                "id": link.account_id,
                "name": link.name,
                "people": count.people if count else None,
                "engaged_people": engaged,
                # Several people of one company engaging is a buying signal sales acts on.
                "signal": engagement_line(engaged, link.name)
                if engaged is not None and engaged >= 2
                else None,
            }
        )
    return shown


def people_to_show(members: Sequence[Member]) -> list[Member]:
    """The most recently engaged first (then the newest members), at most MAX_PEOPLE_SHOWN."""
    ordered = sorted(members, key=lambda m: (m.engaged_on or date.min, m.joined_at), reverse=True)
    return ordered[:MAX_PEOPLE_SHOWN]

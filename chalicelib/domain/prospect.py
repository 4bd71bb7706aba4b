"""The prospect profile: everything Leadloop has learnt about one lead.

A profile accrues over time: identity, traits, engagement points and interests in day buckets (decayed at
read time, so nothing sweeps the table), lifecycle state with its history, contactability, the messages
sent, key moments for sales, and the recent event ids that make applying an event idempotent inside the
same conditional write that stores its effect.

The profile is a mutable dataclass on purpose: the worker folds a whole batch of events into one working
copy and writes it once (one conditional write per prospect per batch keeps write units per event low).
Its stored-document form (prospect_to_doc / prospect_from_doc) lives in chalicelib.domain.prospect_document.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from chalicelib.domain.events import ATTRIBUTION_FIELDS
from chalicelib.domain.lifecycle import State, Trigger
from chalicelib.domain.seen import SeenWindow

# Bounds that keep one profile item small (DynamoDB bills writes per KB, and refuses an item over 400 KB).
# README "Profile bounds" documents them; chalicelib.domain.bounds enforces them. Lists keep the newest.
# The idempotency window's bounds live with it, in chalicelib.domain.seen.
MAX_HISTORY = 50
MAX_MESSAGES = 30
MAX_KEY_MOMENTS = 25
MAX_OTHER_EVENTS = 15  # recent events no rule scores (no key moment), for the journey timeline
MAX_EVENT_PROPERTIES = 3  # properties kept per key moment or other event (what it was about)
MAX_PROPERTY_CHARS = 80  # a longer property value is cut
MAX_PAGES = 25
MAX_RECYCLES = 10
MAX_ANONYMOUS_IDS = 50
MAX_CRM_IDS = 20
MAX_ID_CHARS = 256  # an anonymous, user or CRM id longer than this is not stored (the parser refuses it)
MAX_TRAITS = 100
MAX_TRAIT_KEY_CHARS = 64  # a longer trait name is refused
MAX_TRAIT_TEXT_CHARS = 1024  # a longer trait value is truncated
MAX_TRAIT_NUMBER = 1e15  # a larger number (or NaN, infinity) is refused
MAX_PATH_CHARS = 512
MAX_TITLE_CHARS = 256
MAX_MOMENT_CHARS = 300
MAX_LABEL_CHARS = 200  # source, event names, template names, the reason a message was sent
MAX_TOUCH_CHARS = 200  # a touch's source, medium, campaign, term and content (its URLs: MAX_PATH_CHARS)
MAX_ACCOUNTS = 10  # accounts (group calls) a person belongs to; the one not heard from longest makes room
MAX_ACCOUNT_TRAITS = 20  # traits kept per account (in the profile's snapshot and in the account record)
MAX_ACCOUNT_TEXT_CHARS = 256  # a longer account trait value is truncated
MAX_INTEREST_TOPICS = 20
MAX_TOPIC_CHARS = 64
MAX_BUCKET_DAYS = 60  # days with points kept per engagement rule or topic (the most recent)
BUCKET_HORIZON_DAYS = 400
MAX_PROFILE_BYTES = 128 * 1024  # the stored JSON, before compression; DynamoDB's item limit is 400 KB
TRUNCATED = "…"  # ends a value cut to its bound

# Trait names that name facts sales or the CRM own (owner, CRM ids, lifecycle, suppression, scores), compared
# without case or punctuation ("crmOwner" is "crm_owner"). A tracking source may propose identity traits but
# never these; `crm_owner` is written only by the CRM path (apply.py `_remember_crm_owner`).
RESERVED_TRAITS = frozenset(
    {
        "owner", "ownerid", "owneremail", "crmowner", "crmownerid", "salesowner", "leadowner", "assignedto",
        "assignee", "hubspotownerid", "crmid", "crmids", "hubspotcontactid", "hubspotid", "salesforceid",
        "state", "lifecycle", "lifecyclestage", "stage", "leadstage", "leadstate", "leadstatus",
        "suppression", "suppressed", "unsubscribed", "optout", "optedout", "donotemail", "contactable",
        "score", "scores", "leadscore", "fit", "fitscore", "engagement", "engagementscore", "amount", "sla",
    }
)  # fmt: skip
RESERVED_TRAIT_PREFIXES = ("crm", "hubspot", "salesforce", "leadloop")


def is_reserved_trait(name: str) -> bool:
    """Whether a trait name belongs to sales or the CRM (a tracking source's value for it is dropped)."""
    # Asked for every trait of every identify call; sites send the same few names: a short one's answer
    # is remembered (a function of the name alone).
    return _reserved_short(name) if len(name) <= MAX_REMEMBERED_TRAIT_NAME else _is_reserved(name)


MAX_REMEMBERED_TRAIT_NAME = 64


def _is_reserved(name: str) -> bool:
    bare = "".join(ch for ch in name.casefold() if ch.isalnum())
    reserved = bare in RESERVED_TRAITS or bare.startswith(RESERVED_TRAIT_PREFIXES)
    return reserved or name.lower().startswith("hs_")  # HubSpot's own properties


_reserved_short = lru_cache(maxsize=2048)(_is_reserved)


DayBuckets = dict[int, float]  # proleptic ordinal of the UTC day -> points


@dataclass(slots=True)
class Transition:
    at: datetime
    from_state: State
    to_state: State
    trigger: Trigger
    actor: str
    reason: str | None = None
    note: str | None = None


@dataclass(slots=True)
class SentMessage:
    """One nurture touch. `claimed`: chosen, and being (or to be) sent: `at` is when the last try began or
    failed, and a sweep that finds the try over (failed, or its lease run out) sends this same message again;
    `sent`: handed to the mailer at `at`; `failed`: not sent (parked after too many tries, or abandoned).
    `tries` counts the tries so far, the one in flight included (so a try that dies without a word still
    counts); `error` says why the last one failed, without the prospect's data. Profiles stored before
    claims existed hold only messages sent at the first try, hence the defaults."""

    send_id: str
    template: str
    version: int
    at: datetime
    reason: str
    outcomes: dict[str, int] = field(default_factory=dict)  # delivered/opened/clicked/bounced -> count
    status: str = "sent"  # claimed | sent | failed (see chalicelib.domain.messaging)
    tries: int = 1
    error: str | None = None
    # The situation it was chosen for ("pricing/decision", chalicelib.domain.bandit) and the measures its
    # outcomes have already taught the chooser (each counts once per send). None: sent before learning.
    context: str | None = None
    learned: list[str] = field(default_factory=list)


@dataclass(slots=True)
class KeyMoment:
    at: datetime
    kind: str
    text: str


@dataclass(slots=True)
class OtherEvent:
    """A track event no rule scores (it made no key moment), kept so the journey timeline shows every event
    with what it was about: its name and up to MAX_EVENT_PROPERTIES (name, value) pairs, in picking order."""

    at: datetime
    name: str
    properties: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class PageVisit:
    at: datetime
    path: str
    title: str


@dataclass(slots=True)
class Touch:
    """One attributed visit (a campaign, UTM parameters or an external referrer), as the profile keeps it:
    the lead's first touch and its latest (chalicelib.domain.attribution)."""

    at: datetime
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    term: str | None = None
    content: str | None = None
    referrer: str | None = None
    landing_page: str | None = None


TOUCH_FIELDS = ATTRIBUTION_FIELDS  # a touch keeps what an event's attribution says, and when


@dataclass(slots=True)
class AccountLink:
    """An account (a group call's groupId) the person belongs to, with the profile's snapshot of the
    account's traits (so fit rules can read them without another read), when a group call last said so
    (`at`), and the engagement day last written to the account's member list (`synced_day`, a proleptic
    ordinal; None until written). chalicelib.domain.accounts owns the logic."""

    account_id: str
    at: datetime
    traits: dict[str, Any] = field(default_factory=dict)
    synced_day: int | None = None

    @property
    def name(self) -> str:
        return str(self.traits.get("name") or self.account_id)


@dataclass(slots=True)
class Recycle:
    reason: str
    at: datetime
    actor: str
    note: str | None = None
    revisit_at: datetime | None = None
    count: int = 1


@dataclass(slots=True)
class Suppression:
    reason: str  # hard_bounce | complaint | unsubscribed
    at: datetime


@dataclass(slots=True)
class SlaTimer:
    started_at: datetime
    due_at: datetime
    status: str = "waiting"  # waiting | escalated | met | missed | resolved
    task_token: str | None = None
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None


class _Memos:
    """What the domain remembers on a profile to spare work, and which is not the profile: `fit_memo`, the
    last fit with copies of the inputs it read (chalicelib.domain.scoring.FitMemo), checked by value on every
    score, so nothing that changes a trait needs to say so. A slot, not a field: neither stored, compared nor
    shown, and a copy (copy_prospect, copy.deepcopy) starts without it."""

    __slots__ = ("fit_memo",)
    fit_memo: Any


@dataclass(slots=True)
class Prospect(_Memos):
    lead_id: str
    created_at: datetime
    source: str = ""
    anonymous_ids: list[str] = field(default_factory=list)
    user_id: str | None = None
    email: str | None = None
    crm_ids: list[str] = field(default_factory=list)
    traits: dict[str, Any] = field(default_factory=dict)
    engagement: dict[str, DayBuckets] = field(default_factory=dict)
    interests: dict[str, DayBuckets] = field(default_factory=dict)
    state: State = State.ANONYMOUS
    owner: str | None = None
    history: list[Transition] = field(default_factory=list)
    suppression: Suppression | None = None
    messages: list[SentMessage] = field(default_factory=list)
    key_moments: list[KeyMoment] = field(default_factory=list)
    other_events: list[OtherEvent] = field(default_factory=list)  # oldest first, the newest kept
    pages: list[PageVisit] = field(default_factory=list)
    recycles: list[Recycle] = field(default_factory=list)
    sla: SlaTimer | None = None
    next_touch_at: datetime | None = None
    nurture_waiting: str | None = None  # why the last look found no email to send (None: one was sent)
    seen: SeenWindow = field(default_factory=SeenWindow)
    last_activity_at: datetime | None = None
    amount: float | None = None
    rules_version: int = 0
    pending_hand_raise: str | None = None  # a hand-raise not yet routed (e.g. raised while anonymous)
    first_touch: Touch | None = None  # set once, by the first attributed visit (or the earlier of a merge)
    last_touch: Touch | None = None
    accounts: list[AccountLink] = field(default_factory=list)  # newest group call last
    # What was cut to keep the profile within its bounds: field -> how many values (see domain.bounds).
    trimmed: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fit_memo = None

    @property
    def name(self) -> str:
        first, last = self.traits.get("first_name"), self.traits.get("last_name")
        full = " ".join(str(part) for part in (first, last) if part) or self.traits.get("name") or ""
        return str(full)

    @property
    def company(self) -> str:
        return str(self.traits.get("company") or "")

    @property
    def last_recycle(self) -> Recycle | None:
        return self.recycles[-1] if self.recycles else None

    @property
    def current_recycle(self) -> Recycle | None:
        """The recycle that put the lead back into nurture, while it is still there."""
        if self.state is State.NURTURING and self.history and self.history[-1].trigger is Trigger.RECYCLE:
            return self.last_recycle
        return None

    @property
    def identities(self) -> list[str]:
        keys = [f"anon:{anonymous_id}" for anonymous_id in self.anonymous_ids]
        if self.user_id:
            keys.append(f"user:{self.user_id}")
        if self.email:
            keys.append(f"email:{self.email}")
        keys.extend(f"crm:{crm_id}" for crm_id in self.crm_ids)
        return keys


# The states of sales' inbox: routed to sales and not yet an opportunity or closed.
INBOX_STATES = (State.SALES_READY, State.ACCEPTED)


def routed_at(p: Prospect) -> datetime | None:
    """When the lead was last routed to sales, while it is in sales' inbox; None when it is not. Taken from
    the last move into sales_ready (stable across later saves, so the inbox index is written only when this
    changes); a history shed past that move falls back to the SLA clock's start, then to creation."""
    if p.state not in INBOX_STATES:
        return None
    routed = next((t.at for t in reversed(p.history) if t.to_state is State.SALES_READY), None)
    if routed is None and p.sla is not None:
        routed = p.sla.started_at
    return routed or p.created_at


def event_fingerprint(message_id: str) -> str:
    """A short, stable stand-in for an event id: 64 bits (16 hex digits). With at most MAX_SEEN_EVENTS in a
    window, a new id is mistaken for a seen one with odds of at most 300 / 2^64 (about 1.6e-17) per event."""
    return hashlib.blake2b(message_id.encode(), digest_size=8).hexdigest()

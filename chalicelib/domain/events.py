"""The normalised event every source is translated into before it reaches a prospect.

Tracking calls (Segment spec), email provider webhooks and CRM stage changes all become an `Event`:
the ingest layer owns the translation, the domain only ever sees this shape. Also owns the two rules every
translation obeys: whose namespace an event id lives in (`external_id` for anything from outside,
`internal_id` for what Leadloop does itself) and which event times are believable (`plausible_time`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# --- event ids -------------------------------------------------------------------------------------------
# `message_id` is the idempotency key: an event whose id was seen before is not applied again. So an id must
# never be choosable by someone other than the one who makes such events: a tracking client that could send
# `unsubscribe:<lead id>` would turn the real unsubscribe into a "duplicate". Two disjoint namespaces:
#   external  `<source>:<the source's own id>`, e.g. `seg:<messageId>`, `sendgrid:<sg_event_id>`;
#   internal  `ll:<kind>:<key>`, e.g. `ll:unsubscribe:<lead id>`, made only by Leadloop's own services.
# No source is named `ll`, so no external id starts with INTERNAL_ID_PREFIX.
INTERNAL_ID_PREFIX = "ll:"


def internal_id(kind: str, key: str) -> str:
    """The id of an event Leadloop makes itself; `kind` says what made it (`unsubscribe`, `click`, `api`,
    `merge`, `sla`, ...), `key` makes it unique (or deliberately the same, for an idempotent action)."""
    if not kind or ":" in kind:
        raise ValueError(f"{kind!r} cannot name an internal event kind")
    return f"{INTERNAL_ID_PREFIX}{kind}:{key}"


def external_id(source: str, key: str) -> str:
    """The id of an event from outside, in its source's namespace (`seg`, `sendgrid`, `crm`, ...)."""
    if not source or ":" in source or f"{source}:" == INTERNAL_ID_PREFIX:
        raise ValueError(f"{source!r} cannot name an external id namespace")
    return f"{source}:{key}"


def is_internal_id(message_id: str) -> bool:
    return message_id.startswith(INTERNAL_ID_PREFIX)


# --- event times -----------------------------------------------------------------------------------------
# A client's or provider's clock can say anything: year 1, 1970, 9999. Such an instant cannot be stored
# (fixed-width timestamps, date arithmetic at the ends of the calendar) and means nothing for scoring. The
# event itself is still real, so it is kept, not refused: the received time stands in for any event time
# before EARLIEST_EVENT_TIME or more than MAX_CLOCK_AHEAD after receipt (the fallback the Segment spec
# already uses for a call without a timestamp).
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_AHEAD = timedelta(days=1)


def plausible_time(at: datetime | None, received_at: datetime) -> datetime:
    """`at` when it is a believable event time (aware, from 2000, at most a day ahead), else `received_at`."""
    if at is None or at.tzinfo is None:
        return received_at
    if not EARLIEST_EVENT_TIME <= at <= received_at + MAX_CLOCK_AHEAD:
        return received_at
    return at


class EventKind(StrEnum):
    IDENTIFY = "identify"
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"
    EMAIL = "email"  # an email provider's delivery/engagement event; `name` is an EmailEventName
    CRM = "crm"  # a CRM stage change or the generic CRM form; `name` is a lifecycle trigger
    SALES = "sales"  # a sales action or the SLA workflow; `name` is a lifecycle trigger


class EmailEventName(StrEnum):
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"  # properties["bounce"] is "hard" or "soft"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    DEFERRED = "deferred"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class Attribution:
    """Where a tracked visit came from, as the tracking client saw it: the campaign (Segment's
    `context.campaign`, else the page URL's `utm_*` parameters) and an external referrer. The parser sets it
    only when there is a campaign, a UTM parameter or an external referrer; a referrer alone names its host
    as `source` with `medium` "referral". Unbounded here: the profile clips what it keeps."""

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    term: str | None = None
    content: str | None = None
    referrer: str | None = None
    landing_page: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {name: value for name in ATTRIBUTION_FIELDS if (value := getattr(self, name))}


ATTRIBUTION_FIELDS = ("source", "medium", "campaign", "term", "content", "referrer", "landing_page")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to (or was done by) a prospect.

    `message_id` is the idempotency key: `external_id(source, id)` for what came from outside (the Segment
    messageId as `seg:<messageId>`, `<provider>:<provider event id>`), `internal_id(kind, key)` for what
    Leadloop did itself; the two namespaces never meet.
    Identity fields are whatever the source knew; at least one of anonymous_id, user_id, email or
    lead_id or crm_id is set. Properties by kind:
      page/screen: url, path, title, name, category (and any page property)
      track: the event's properties
      email: send_id (Leadloop's own message id, when the provider echoed it), template, url (clicked),
             bounce ("hard"/"soft"), machine_open (bool), provider
      crm/sales: actor, reason, note, owner, amount, revisit_in_days
    `attribution`: set by the tracking parser only, for a call with a campaign, UTM or external referrer.
    """

    message_id: str
    kind: EventKind
    at: datetime
    source: str
    name: str = ""
    anonymous_id: str | None = None
    user_id: str | None = None
    email: str | None = None
    lead_id: str | None = None
    previous_id: str | None = None  # alias: the id being merged into user_id
    crm_id: str | None = None  # "<crm>:<object>:<id>", e.g. "hubspot:contact:512"
    traits: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    properties: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    attribution: Attribution | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("Event.at must be timezone-aware")


def event_to_wire(event: Event) -> dict[str, Any]:
    """A JSON-ready dict for the queue; `event_from_wire` reverses it exactly."""
    wire: dict[str, Any] = {
        "message_id": event.message_id,
        "kind": event.kind.value,
        "at": event.at.isoformat(),
        "source": event.source,
    }
    for name in ("name", "anonymous_id", "user_id", "email", "lead_id", "previous_id", "crm_id"):
        value = getattr(event, name)
        if value:
            wire[name] = value
    if event.traits:
        wire["traits"] = dict(event.traits)
    if event.properties:
        wire["properties"] = dict(event.properties)
    if event.attribution is not None:
        wire["attribution"] = event.attribution.as_dict()
    return wire


def event_from_wire(wire: Mapping[str, Any]) -> Event:
    return Event(
        message_id=wire["message_id"],
        kind=EventKind(wire["kind"]),
        at=datetime.fromisoformat(wire["at"]),
        source=wire["source"],
        name=wire.get("name", ""),
        anonymous_id=wire.get("anonymous_id"),
        user_id=wire.get("user_id"),
        email=wire.get("email"),
        lead_id=wire.get("lead_id"),
        previous_id=wire.get("previous_id"),
        crm_id=wire.get("crm_id"),
        traits=wire.get("traits") or _EMPTY,
        properties=wire.get("properties") or _EMPTY,
        attribution=_attribution_from_wire(wire.get("attribution")),
    )


def _attribution_from_wire(wire: Mapping[str, Any] | None) -> Attribution | None:
    if wire is None:
        return None
    return Attribution(**{name: wire.get(name) for name in ATTRIBUTION_FIELDS})


def identity_keys(event: Event) -> list[str]:
    """The identities an event claims for its prospect (alias' previous id is looked up, never claimed)."""
    keys = []
    if event.email:
        keys.append(f"email:{event.email}")
    if event.user_id:
        keys.append(f"user:{event.user_id}")
    if event.anonymous_id:
        keys.append(f"anon:{event.anonymous_id}")
    if event.crm_id:
        keys.append(f"crm:{event.crm_id}")
    return keys


def alias_keys(event: Event) -> list[str]:
    """The identities an alias replaces: its lead is joined, the old ids are not claimed again."""
    if event.kind is EventKind.ALIAS and event.previous_id:
        return [f"anon:{event.previous_id}", f"user:{event.previous_id}"]
    return []

"""The normalised event every source is translated into before it reaches a prospect.

Tracking calls (Segment spec), email provider webhooks and CRM stage changes all become an `Event`:
the ingest layer owns the translation, the domain only ever sees this shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


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
class Event:
    """One thing that happened to (or was done by) a prospect.

    `message_id` is the idempotency key: the Segment messageId, or `<provider>:<provider event id>`.
    Identity fields are whatever the source knew; at least one of anonymous_id, user_id, email or
    lead_id or crm_id is set. Properties by kind:
      page/screen: url, path, title, name, category (and any page property)
      track: the event's properties
      email: send_id (Leadloop's own message id, when the provider echoed it), template, url (clicked),
             bounce ("hard"/"soft"), machine_open (bool), provider
      crm/sales: actor, reason, note, owner, amount, revisit_in_days
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
    )

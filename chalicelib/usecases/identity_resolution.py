"""Identity resolution: which lead each event of a batch belongs to, and the merges that join leads.

An event names its prospect by identities (email, userId, anonymousId, CRM id; an alias also names the id
it replaces, looked up but never claimed) and sometimes by lead id (email events echo it back). Every event
goes to the lead its identities already belong to, else to a new lead; the identities it names are claimed
for that lead in the identity index (a conditional claim: a worker that loses the race joins the winner's
lead). An event naming identities of two leads joins them: the later one is merged into the first, its
identities point at the survivor, and a forwarding identity (`lead:<old id>`) keeps links and ids sent out
before the merge reaching it (`follow_forwards`). Folding the merged profile into the survivor is the lead
service's unit of work, which `BatchResolution` is given as `fold`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain.events import Event, EventKind, alias_keys, identity_keys, internal_id
from chalicelib.domain.prospect import Prospect
from chalicelib.usecases.ports import IdentityIndex, ProspectRepository, Versioned

MAX_FORWARDS = 5  # merges of merges: A into B, B into C...

# Apply `events` to lead `into` after absorbing `source` (a merged-away profile) into it, in one write.
Fold = Callable[[str, list[Event], Prospect], None]


def new_lead_id() -> str:
    return "L" + secrets.token_hex(6)


def forward_key(lead_id: str) -> str:
    """The identity that forwards a merged-away lead id to the lead it was merged into."""
    return f"lead:{lead_id}"


def follow_forwards(
    identities: IdentityIndex, prospects: ProspectRepository, lead_id: str
) -> Versioned[Prospect] | None:
    """The lead that `lead_id` was merged into (following later merges too), if it was."""
    for _ in range(MAX_FORWARDS):
        target = identities.resolve([forward_key(lead_id)]).get(forward_key(lead_id))
        if target is None or target == lead_id:
            return None
        stored = prospects.get(target)
        if stored is not None:
            return stored
        lead_id = target
    return None


@dataclass
class LeadEvents:
    """One prospect's unit of work within a batch: its lead and the events that go to it."""

    lead_id: str
    events: list[Event]


class BatchResolution:
    """Sorts one batch's events into leads against the identity index and the stored profiles, merging the
    leads an event joins. Holds references only: the lead service builds one per batch."""

    def __init__(
        self,
        *,
        identities: IdentityIndex,
        prospects: ProspectRepository,
        new_id: Callable[[], str],
        clock: Callable[[], datetime],
        fold: Fold,
    ) -> None:
        self._identities = identities
        self._prospects = prospects
        self._new_id = new_id
        self._clock = clock
        self._fold = fold
        self.merges: list[tuple[str, list[Event]]] = []  # (survivor, [its merge event]): archived too

    def resolve(self, events: Sequence[Event]) -> list[LeadEvents]:
        """Map every event to a lead: known identities, else a new lead; merge leads an event joins."""
        keys = {key for event in events for key in identity_keys(event) + alias_keys(event)}
        owners = self._identities.resolve(sorted(keys)) if keys else {}
        # Events that name their lead (email events echo it back): one BatchGet for the batch, not a read
        # per event. A named lead merged away since is followed to the survivor.
        named = sorted({event.lead_id for event in events if event.lead_id})
        existing = self._prospects.exists(named)
        for gone in set(named) - existing:
            survivor = follow_forwards(self._identities, self._prospects, gone)
            if survivor is not None:
                owners[forward_key(gone)] = survivor.item.lead_id
        merged_into: dict[str, str] = {}
        order: list[str] = []
        grouped: dict[str, list[Event]] = {}

        def final(lead_id: str) -> str:
            while lead_id in merged_into:
                lead_id = merged_into[lead_id]
            return lead_id

        for event in events:
            claimed = identity_keys(event)
            known = [final(owners[key]) for key in claimed + alias_keys(event) if key in owners]
            if event.lead_id and event.lead_id in existing:
                known.insert(0, final(event.lead_id))
            elif event.lead_id and forward_key(event.lead_id) in owners:
                known.insert(0, final(owners[forward_key(event.lead_id)]))
            lead_id = known[0] if known else self._new_id()
            for other in dict.fromkeys(known[1:]):
                if other != lead_id:
                    self.merge(other, into=lead_id)
                    merged_into[other] = lead_id
                    self._repoint(owners, other, lead_id)
            for key in claimed:
                if owners.get(key) is None or final(owners[key]) != lead_id:
                    owner = self._identities.claim(key, lead_id)
                    if owner != lead_id and final(owner) != lead_id:
                        # Claimed an instant earlier by another worker: join that lead instead.
                        self.merge(lead_id, into=owner)
                        merged_into[lead_id] = owner
                        self._repoint(owners, lead_id, owner)
                        lead_id = owner
                    owners[key] = lead_id
            if lead_id not in grouped:
                order.append(lead_id)
                grouped[lead_id] = []
            grouped[lead_id].append(event)
        work: dict[str, LeadEvents] = {}
        for lead_id in order:
            target = final(lead_id)
            work.setdefault(target, LeadEvents(target, [])).events.extend(grouped[lead_id])
        return list(work.values())

    def _repoint(self, owners: dict[str, str], old: str, new: str) -> None:
        """Identities claimed for a lead that was merged away (stored or not yet) now name the survivor."""
        for key, owner in owners.items():
            if owner == old:
                self._identities.point(key, new)
                owners[key] = new

    def merge(self, other_id: str, *, into: str) -> None:
        """Fold one lead's stored profile into another (identify/alias joined them) and retire it."""
        other = self._prospects.get(other_id)
        if other is None:
            return
        source = other.item
        # Links and ids already sent out name the old lead: forward them (unsubscribe, /r/, provider echoes).
        for key in [*source.identities, forward_key(other_id)]:
            self._identities.point(key, into)
        merge_event = Event(
            message_id=internal_id("merge", f"{other_id}:{into}"),
            kind=EventKind.IDENTIFY,
            at=self._clock(),
            source="merge",
        )
        self._fold(into, [merge_event], source)
        self.merges.append((into, [merge_event]))
        self._prospects.delete(other_id, expected=other.version)

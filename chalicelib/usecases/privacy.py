"""Erase and export a person (GDPR/CCPA): everything Leadloop holds about one lead, answered or removed.

A person is a lead and every lead merged into it: their ids are found by following the `lead:<old id>`
forwards back (`PersonRecords.identities_of`). Erase removes, in an order that a retry can finish after any
failure (the profile goes last, so the same DELETE finds the person again): the address goes on the
suppression list first (a keyed hash only, so the address is never emailed again), the SLA workflow is
released, then the activity, the effect marks, the mail copies, the journal's bodies, the events in the
rules lab's archive (kept by lead id: the person's lead ids find them), the account memberships, the
identities, and the profile with its pending outbox. A second DELETE answers 404.

Both erase and export leave an entry on the activity feed under the lead id: who, when, and counts only,
never what was erased.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any, Protocol

from chalicelib.domain.activity import ActivityEntry
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_document import prospect_to_doc
from chalicelib.domain.suppression import ERASED, SuppressedAddress, address_digest
from chalicelib.errors import ConcurrentUpdate, Conflict, LeadloopError
from chalicelib.usecases.leads import LeadService
from chalicelib.usecases.ports import (
    ActivityRecords,
    PersonRecords,
    ProspectRepository,
    SuppressionList,
)

log = logging.getLogger("leadloop.privacy")

ERASE_ATTEMPTS = 3  # an event landing between reading and deleting the profile: read again, erase again
MAX_EXPORTED_ACTIVITY = 5_000  # keeps the answer under Lambda's 6 MB; `activity_truncated` says so
AUDIT_TTL_DAYS = 400  # as every activity entry (chalicelib.effects.dispatch.ACTIVITY_TTL_DAYS)
# Entries erase and export write (who, when, counts): they hold nothing of the person, and stay as the audit
# trail of what was done with the data.
AUDIT_KINDS = ("exported", "erased")


class ErasureNotConfigured(LeadloopError):
    """The stage has no suppression salt, so it cannot keep an erased address off its mailing."""

    status, code = 503, "not_configured"


class MailCopies(Protocol):
    """Copies of sent mail Leadloop itself keeps (the local outbox folder)."""

    def forget(self, lead_ids: Sequence[str], send_ids: Sequence[str]) -> int: ...


class EventArchive(Protocol):
    """Accepted event bodies kept beside the queue (the local stack's journal)."""

    def forget(self, identifiers: Sequence[str]) -> int: ...


class LeadEvents(Protocol):
    """The rules lab's event archive (chalicelib/adapters/archive.py), which keeps events by lead id."""

    def forget_leads(self, lead_ids: Sequence[str], today: date) -> int: ...


class SlaRelease(Protocol):
    def resolve(self, task_token: str, outcome: str) -> bool: ...


class Memberships(Protocol):
    def remove_member(self, lead_id: str, account_ids: Sequence[str]) -> None: ...


class ShadowComparison(Protocol):
    def forget_leads(self, lead_ids: Sequence[str]) -> int: ...


class PrivacyService:
    def __init__(
        self,
        *,
        leads: LeadService,
        prospects: ProspectRepository,
        records: PersonRecords,
        suppressions: SuppressionList,
        activity: ActivityRecords,
        copies: MailCopies,
        sla: SlaRelease,
        salt: str,
        clock: Callable[[], datetime],
        archive: EventArchive | None = None,
        memberships: Memberships | None = None,
        events: LeadEvents | None = None,
        shadow: ShadowComparison | None = None,
    ) -> None:
        self._events = events
        self._shadow = shadow
        self._leads = leads
        self._prospects = prospects
        self._records = records
        self._suppressions = suppressions
        self._activity = activity
        self._copies = copies
        self._sla = sla
        self._salt = salt
        self._clock = clock
        self._archive = archive
        self._memberships = memberships

    # --- export ------------------------------------------------------------------------------------------

    def export(self, ref: str, actor: str) -> dict[str, Any]:
        """Everything held about the person, as JSON."""
        p = self._leads.find(ref)
        now = self._clock()
        owners = self._records.identities_of(p.lead_id)
        lead_ids = _lead_ids(p.lead_id, owners)
        activity = self._records.activity_of(lead_ids, MAX_EXPORTED_ACTIVITY + 1)
        on_list = [email for email in _emails(p, owners) if self._listed(email)]
        answer: dict[str, Any] = {
            "lead_id": p.lead_id,
            "exported_at": now.isoformat(),
            "profile": prospect_to_doc(p),
            "identities": sorted(key for key in owners if not key.startswith("lead:")),
            "merged_lead_ids": [lead for lead in lead_ids if lead != p.lead_id],
            "activity": [_entry(e) for e in activity[:MAX_EXPORTED_ACTIVITY]],
            "activity_truncated": len(activity) > MAX_EXPORTED_ACTIVITY,
            "messages": [_message(m) for m in p.messages],
            "suppression": {
                "profile": _suppression(p),
                "contactable": p.suppression is None and bool(p.email) and not on_list,
                "on_erasure_list": bool(on_list),
            },
            "accounts": [
                {"account_id": link.account_id, "at": link.at.isoformat(), "traits": link.traits}
                for link in p.accounts
            ],
        }
        self._audit(p.lead_id, now, "exported", actor, {"activity_entries": len(answer["activity"])})
        return answer

    # --- erase -------------------------------------------------------------------------------------------

    def erase(self, ref: str, actor: str) -> dict[str, Any]:
        """Remove the person everywhere; NotFound (404) when there is no such lead (erased already)."""
        removed: dict[str, int] = {}
        for _ in range(ERASE_ATTEMPTS):
            lead_id = self._leads.find(ref).lead_id
            stored = self._prospects.get(lead_id)
            if stored is None:
                continue  # merged away an instant ago: find follows the forward next time
            ref = lead_id
            try:
                return self._erase(stored.item, stored.version, actor, removed)
            except ConcurrentUpdate:
                log.info("lead %s changed while it was erased; erasing what it became", lead_id)
        raise Conflict("the lead kept changing while it was erased; send the DELETE again")

    def _erase(self, p: Prospect, version: int, actor: str, removed: dict[str, int]) -> dict[str, Any]:
        now = self._clock()
        owners = self._records.identities_of(p.lead_id)
        lead_ids = _lead_ids(p.lead_id, owners)
        # First the suppression list: whatever fails after this, the address is never emailed again.
        emails = _emails(p, owners)
        for email in emails:
            self._suppressions.add(SuppressedAddress(address_digest(email, self._salt), ERASED, now))
        released = self._release_sla(p)
        _add(removed, "activity", self._records.forget_activity(lead_ids, keep_kinds=AUDIT_KINDS))
        deleted, kept = self._records.forget_marks(lead_ids, now=now)
        _add(removed, "effect_marks", deleted)
        removed["effect_marks_expiring"] = kept
        _add(removed, "mail_copies", self._copies.forget(lead_ids, [m.send_id for m in p.messages]))
        if self._archive is not None:
            identifiers = [*lead_ids, *emails, *p.anonymous_ids, *([p.user_id] if p.user_id else [])]
            identifiers += [key.split(":", 1)[1] for key in owners if key.startswith(("anon:", "user:"))]
            _add(removed, "journal_bodies", self._archive.forget(sorted(set(identifiers))))
        if self._events is not None:
            _add(removed, "archived_events", self._events.forget_leads(lead_ids, now.date()))
        if self._shadow is not None:  # a rules shadow's per-lead comparison row (scores, why it would route)
            _add(removed, "shadow_rows", self._shadow.forget_leads(lead_ids))
        if self._memberships is not None and _account_ids(p):
            self._memberships.remove_member(p.lead_id, sorted(_account_ids(p)))
        # The profile's own identities too, in case a trimmed list left one the scan has not seen yet.
        owners = {**{key: p.lead_id for key in p.identities}, **owners}
        _add(removed, "identities", self._records.forget_identities(owners))
        self._prospects.delete(p.lead_id, expected=version)  # the profile and its pending outbox
        data: dict[str, Any] = {
            **removed,
            "merged_leads": len(lead_ids) - 1,
            "addresses_suppressed": len(emails),
        }
        if released:
            data["sla_released"] = True
        self._audit(p.lead_id, self._clock(), "erased", actor, data)
        return {"erased": p.lead_id, "at": now.isoformat(), "removed": data}

    def _release_sla(self, p: Prospect) -> bool:
        """Hand the SLA workflow its token back, so it never reports on the lead again; a workflow whose
        token the lead does not hold yet reports once, finds no lead, and is released then (README)."""
        sla = p.sla
        if sla is None or not sla.task_token or sla.status not in ("waiting", "escalated"):
            return False
        return self._sla.resolve(sla.task_token, ERASED)

    # --- the suppression list ----------------------------------------------------------------------------

    def _listed(self, email: str) -> bool:
        return self._suppressions.find(address_digest(email, self._salt)) is not None

    def _audit(self, lead_id: str, at: datetime, kind: str, actor: str, data: dict[str, Any]) -> None:
        entry = ActivityEntry(lead_id, at, kind, actor, data, AUDIT_TTL_DAYS)
        self._activity.append(lead_id, [entry])


class ErasedAddresses:
    """Answers "was this address erased?" for the write path, the nurture send guard and replay."""

    def __init__(self, suppressions: SuppressionList, salt: str) -> None:
        self._suppressions = suppressions
        self._salt = salt

    def __call__(self, email: str) -> SuppressedAddress | None:
        return self._suppressions.find(address_digest(email, self._salt)) if email else None


def _lead_ids(lead_id: str, owners: dict[str, str]) -> list[str]:
    merged = {key.split(":", 1)[1] for key in owners if key.startswith("lead:")}
    return [lead_id, *sorted(merged - {lead_id})]


def _emails(p: Prospect, owners: dict[str, str]) -> list[str]:
    found = {key.split(":", 1)[1] for key in owners if key.startswith("email:")}
    if p.email:
        found.add(p.email)
    return sorted(found)


def _account_ids(p: Prospect) -> set[str]:
    """The accounts the lead belongs to (chalicelib.domain.accounts)."""
    return {link.account_id for link in p.accounts}


def _add(removed: dict[str, int], name: str, count: int) -> None:
    removed[name] = removed.get(name, 0) + count


def _entry(e: ActivityEntry) -> dict[str, Any]:
    return {"at": e.at.isoformat(), "lead_id": e.lead_id, "kind": e.kind, "actor": e.actor, **e.data}


def _message(m: Any) -> dict[str, Any]:
    message = asdict(m)
    message["at"] = m.at.isoformat()
    return message


def _suppression(p: Prospect) -> dict[str, Any] | None:
    if p.suppression is None:
        return None
    return {"reason": p.suppression.reason, "at": p.suppression.at.isoformat()}

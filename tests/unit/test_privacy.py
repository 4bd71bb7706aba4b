"""Erase and export over in-memory storage: what erase removes and keeps, the suppression list it leaves
(a keyed hash, never the address), and the fresh, suppressed profile an erased address starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from chalicelib.adapters.local_copies import JournalCopies, OutboxCopies
from chalicelib.domain.activity import ActivityEntry
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.suppression import ERASED, SuppressedAddress, address_digest
from chalicelib.errors import NotFound
from chalicelib.usecases.privacy import ErasedAddresses, PrivacyService
from tests.unit.test_lead_service import NOW, Store

SALT = "test-salt"
EMAIL = "erin@bigco.example"


class Suppressions:
    def __init__(self) -> None:
        self.entries: dict[str, SuppressedAddress] = {}

    def add(self, entry: SuppressedAddress) -> None:
        self.entries.setdefault(entry.digest, entry)

    def find(self, digest: str) -> SuppressedAddress | None:
        return self.entries.get(digest)


class Records:
    """PersonRecords over the in-memory identities and activity of a `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.marks_forgotten: list[str] = []

    def identities_of(self, lead_id: str) -> dict[str, str]:
        leads, found = {lead_id}, {}
        while True:
            found = {key: owner for key, owner in self.store.identities.owners.items() if owner in leads}
            more = {key[5:] for key in found if key.startswith("lead:")} - leads
            if not more:
                return found
            leads |= more

    def forget_identities(self, owners: Mapping[str, str]) -> int:
        doomed = [key for key, lead in owners.items() if self.store.identities.owners.get(key) == lead]
        for key in doomed:
            del self.store.identities.owners[key]
        return len(doomed)

    def activity_of(self, lead_ids: Sequence[str], limit: int) -> list[ActivityEntry]:
        return [e for lead in lead_ids for e in self.store.activity.for_lead(lead, limit)][:limit]

    def forget_activity(self, lead_ids: Sequence[str], *, keep_kinds: Sequence[str] = ()) -> int:
        entries = self.store.activity._entries
        doomed = [k for k, e in entries.items() if e.lead_id in lead_ids and e.kind not in keep_kinds]
        for key in doomed:
            del entries[key]
        return len(doomed)

    def forget_marks(self, lead_ids: Sequence[str], *, now: datetime) -> tuple[int, int]:
        self.marks_forgotten.extend(lead_ids)
        return 0, 0


class Sla:
    def __init__(self) -> None:
        self.released: list[tuple[str, str]] = []

    def resolve(self, task_token: str, outcome: str) -> bool:
        self.released.append((task_token, outcome))
        return True


def identify(n: int, email: str = EMAIL, anon: str = "anon-erin") -> Event:
    return Event(
        message_id=f"seg:erin:{n}",
        kind=EventKind.IDENTIFY,
        at=NOW - timedelta(minutes=10 - n),
        source="website",
        anonymous_id=anon,
        email=email,
        traits={"first_name": "Erin", "company": "BigCo"},
    )


def privacy(store: Store, outbox: Path, suppressions: Suppressions, sla: Sla | None = None) -> PrivacyService:
    return PrivacyService(
        leads=store.leads,
        prospects=store.prospects,
        records=Records(store),
        suppressions=suppressions,
        activity=store.activity,
        copies=OutboxCopies(outbox),
        sla=sla or Sla(),
        salt=SALT,
        clock=lambda: NOW,
        archive=JournalCopies(outbox / "journal"),
    )


def with_erased_check(store: Store, suppressions: Suppressions) -> None:
    store.leads._erased = ErasedAddresses(suppressions, SALT)


def test_the_suppression_list_holds_a_keyed_hash_of_the_address_never_the_address() -> None:
    digest = address_digest(" Erin@BigCo.example ", SALT)
    assert digest == address_digest(EMAIL, SALT)  # normalised as the tracking path stores it
    assert EMAIL not in digest and len(digest) == 64
    assert digest != address_digest(EMAIL, "another-salt")  # without the salt, guesses cannot be tested
    with pytest.raises(ValueError):
        address_digest(EMAIL, "")


def test_erase_removes_the_person_keeps_the_hash_and_an_audit_entry_without_their_data(
    tmp_path: Path,
) -> None:
    store, suppressions = Store(), Suppressions()
    with_erased_check(store, suppressions)
    store.leads.apply_events([identify(1), identify(2, anon="anon-phone")])
    lead_id = store.leads.find(EMAIL).lead_id
    (tmp_path / "journal").mkdir()
    (tmp_path / "journal" / "accepted.jsonl").write_text(
        '{"id":"a","body":"{\\"events\\":[{\\"email\\":\\"erin@bigco.example\\"}]}"}\n'
        '{"id":"b","body":"{\\"events\\":[{\\"email\\":\\"other@bigco.example\\"}]}"}\n'
    )

    answer = privacy(store, tmp_path, suppressions).erase(EMAIL, "admin-key")

    assert answer["erased"] == lead_id
    assert store.prospects.ids() == []
    assert store.identities.owners == {}
    assert set(suppressions.entries) == {address_digest(EMAIL, SALT)}
    assert suppressions.entries[address_digest(EMAIL, SALT)].reason == ERASED
    (audit,) = store.activity.for_lead(lead_id)
    assert (audit.kind, audit.actor) == ("erased", "admin-key")
    assert not {EMAIL, "Erin", "anon-erin", "anon-phone"} & {str(v) for v in audit.data.values()}
    journal = (tmp_path / "journal" / "accepted.jsonl").read_text()
    assert EMAIL not in journal and "other@bigco.example" in journal
    with pytest.raises(NotFound):
        privacy(store, tmp_path, suppressions).erase(lead_id, "admin-key")  # a second DELETE: 404


def test_an_erased_address_starts_a_fresh_suppressed_profile(tmp_path: Path) -> None:
    store, suppressions = Store(), Suppressions()
    with_erased_check(store, suppressions)
    store.leads.apply_events([identify(1)])
    old = store.leads.find(EMAIL).lead_id
    privacy(store, tmp_path, suppressions).erase(old, "admin-key")

    store.leads.apply_events([identify(3, anon="anon-new")])

    fresh = store.leads.find(EMAIL)
    assert fresh.lead_id != old
    assert fresh.suppression is not None and fresh.suppression.reason == ERASED
    assert fresh.next_touch_at is None  # never scheduled for nurture
    # An anonymous visitor with the old anonymous id is someone new: nothing links them.
    store.leads.apply_events([Event("seg:p9", EventKind.PAGE, NOW, "website", anonymous_id="anon-erin")])
    visitor = store.leads.find("anon-erin")
    assert visitor.lead_id not in (old, fresh.lead_id) and visitor.email is None


def test_export_answers_the_profile_identities_activity_and_suppression(tmp_path: Path) -> None:
    store, suppressions = Store(), Suppressions()
    store.leads.apply_events([identify(1)])
    lead_id = store.leads.find(EMAIL).lead_id

    export = privacy(store, tmp_path, suppressions).export(EMAIL, "admin-key")

    assert export["lead_id"] == lead_id and export["profile"]["email"] == EMAIL
    assert set(export["identities"]) == {f"email:{EMAIL}", "anon:anon-erin"}
    assert export["suppression"] == {"profile": None, "contactable": True, "on_erasure_list": False}
    assert [e.kind for e in store.activity.for_lead(lead_id)][0] == "exported"


def test_erase_releases_a_waiting_sla_workflow(tmp_path: Path) -> None:
    store, suppressions, sla = Store(), Suppressions(), Sla()
    demo = Event("seg:t", EventKind.TRACK, NOW, "website", name="Demo Requested", anonymous_id="anon-erin")
    store.leads.apply_events([identify(1), demo])
    lead_id = store.leads.find(EMAIL).lead_id
    signal = Event("sla:1", EventKind.SALES, NOW, "sla-workflow", name="sla_started", lead_id=lead_id,
                   properties={"task_token": "token-1", "actor": "sla"})  # fmt: skip
    store.leads.apply_events([signal])

    privacy(store, tmp_path, suppressions, sla).erase(lead_id, "admin-key")

    assert sla.released == [("token-1", ERASED)]

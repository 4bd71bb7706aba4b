"""The append-mostly records beside the profiles: activity log, replay nonces, API keys and versioned content
(templates, rules), on DynamoDB (metric counters: `dynamo_counters`).

Every write that must not race is a condition here (a nonce is remembered once, a content version is
written once), never a read followed by a write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalicelib.adapters.dynamo_tables import (
    ActivityModel,
    ContentModel,
    KeyModel,
    Tables,
    from_iso,
    is_condition_failure,
    iso,
    models_for,
    storage_errors,
)
from chalicelib.domain.activity import ActivityEntry
from chalicelib.errors import ConcurrentUpdate, MalformedInput, NotFound

FEED_MAX_DAYS = 400


# --- activity ---


class ActivityLog:
    """Per-lead history (newest first) and a global audit feed by day. An entry's sort key is its time plus
    a digest of its content, so a redelivered event rewrites its own entry instead of adding a twin."""

    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).activity

    def append(self, lead_id: str, entries: Sequence[ActivityEntry]) -> None:
        items = [self._item(lead_id, entry) for entry in entries]
        with storage_errors(f"append activity for {lead_id}"):
            if len(items) == 1:
                # Same units as a batch of one, and it needs only PutItem (the scheduler's permission).
                items[0].save()
                return
            with self._model.batch_write() as batch:
                for item in items:
                    batch.save(item)

    def for_lead(self, lead_id: str, limit: int = 100) -> list[ActivityEntry]:
        with storage_errors(f"read activity of {lead_id}"):
            query = self._model.query(lead_id, scan_index_forward=False, limit=limit)
            return [_entry(item) for item in query]

    def feed(self, *, since: datetime, until: datetime, actor: str | None, limit: int) -> list[ActivityEntry]:
        """Entries with since <= at < until, newest first, optionally by one actor."""
        if until - since > timedelta(days=FEED_MAX_DAYS):
            raise MalformedInput(f"the activity feed spans at most {FEED_MAX_DAYS} days; narrow since/until")
        found: list[ActivityEntry] = []
        if limit < 1 or until <= since:
            return found
        actor_filter = self._model.actor == actor if actor is not None else None
        # The seq of an entry at t is iso(t) + "#..." so it sorts after iso(t): BETWEEN gives [since, until).
        seq_range = self._model.seq.between(iso(since), iso(until))
        with storage_errors("read the activity feed"):
            for day in _days_descending(since, until):
                query = self._model.by_day.query(
                    day.isoformat(),
                    seq_range,
                    filter_condition=actor_filter,
                    scan_index_forward=False,
                    limit=limit - len(found),
                )
                found.extend(_entry(item) for item in query)
                if len(found) >= limit:
                    break
        return found

    def _item(self, lead_id: str, entry: ActivityEntry) -> ActivityModel:
        if entry.lead_id != lead_id:
            raise ValueError(f"activity entry is for {entry.lead_id!r}, not {lead_id!r}")
        data = json.dumps(entry.data, separators=(",", ":"), sort_keys=True, default=_json_default)
        digest = hashlib.sha256("\x1f".join((lead_id, entry.kind, entry.actor, data)).encode()).hexdigest()
        return self._model(
            lead_id,
            f"{iso(entry.at)}#{digest[:10]}",
            kind=entry.kind,
            actor=entry.actor,
            data=data,
            day=entry.at.astimezone(UTC).date().isoformat(),
            expires_at=entry.at + timedelta(days=entry.ttl_days),
        )


def _entry(item: ActivityModel) -> ActivityEntry:
    at = from_iso(item.seq.split("#", 1)[0])
    ttl_days = round((item.expires_at - at).total_seconds() / 86400)
    return ActivityEntry(item.lead_id, at, item.kind, item.actor, json.loads(item.data), ttl_days)


def _days_descending(since: datetime, until: datetime) -> list[date]:
    first = since.astimezone(UTC).date()
    day = until.astimezone(UTC).date()
    days = []
    while day >= first:
        days.append(day)
        day -= timedelta(days=1)
    return days


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"activity data holds a {type(value).__name__}, which JSON cannot carry")


# --- nonces ---


class NonceStore:
    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).nonces

    def remember(self, key: str, *, expires_at: datetime) -> bool:
        """True the first time `key` is seen, False on every replay. DynamoDB drops it after `expires_at`
        (lazily); callers reject stale tokens on their timestamp anyway, so a late purge is harmless."""
        with storage_errors("remember nonce"):
            try:
                self._model(key, expires_at=expires_at).save(condition=self._model.key.does_not_exist())
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    return False
                raise
        return True


class DynamoSeenChunks:
    """Chunks of profiles' idempotency windows (chalicelib.domain.seen) in the nonces table, as
    `seen#<chunk id>` with the fingerprints packed 8 bytes each: written once, deleted by TTL."""

    PREFIX = "seen#"

    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).nonces

    def put(self, chunk_id: str, fingerprints: Sequence[str], *, expires_at: datetime) -> None:
        packed = b"".join(bytes.fromhex(fingerprint) for fingerprint in fingerprints)
        item = self._model(self.PREFIX + chunk_id, expires_at=expires_at, ids=packed)
        with storage_errors("write idempotency chunk"):
            try:
                item.save(condition=self._model.key.does_not_exist())
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    raise ConcurrentUpdate(f"idempotency chunk {chunk_id} exists") from None
                raise

    def get_many(self, chunk_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        keys = {self.PREFIX + chunk_id for chunk_id in chunk_ids}
        with storage_errors("read idempotency chunks"):
            items = list(self._model.batch_get(keys, consistent_read=True))
        found: dict[str, frozenset[str]] = {}
        for item in items:
            raw = (item.ids or b"").hex()
            found[item.key.removeprefix(self.PREFIX)] = frozenset(
                raw[at : at + 16] for at in range(0, len(raw), 16)
            )
        return found


class EffectLedger:
    """Marks of effects already performed (a notification sent, a write's effects all done), so a retried
    effect is not performed again. Kept in the nonces table until they expire, past any redelivery."""

    PREFIX = "effect#"

    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).nonces

    def done(self, key: str) -> bool:
        with storage_errors("read effect mark"):
            try:
                self._model.get(self.PREFIX + key, consistent_read=True)
            except self._model.DoesNotExist:
                return False
        return True

    def mark(self, key: str, *, expires_at: datetime) -> None:
        with storage_errors("mark effect done"):
            self._model(self.PREFIX + key, expires_at=expires_at).save()


# --- API keys ---


@dataclass(frozen=True)
class ApiKeyRecord:
    key_hash: str
    role: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyStore:
    """API keys by the sha256 hex of the key; the key itself is never given to this store."""

    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).keys

    def put(self, key_hash: str, role: str, name: str, created_at: datetime) -> None:
        """Create or replace (re-seeding a dev key is harmless; replacing clears a revocation)."""
        with storage_errors("store API key"):
            self._model(key_hash, role=role, name=name, created_at=created_at).save()

    def get(self, key_hash: str) -> ApiKeyRecord | None:
        with storage_errors("read API key"):
            try:
                return _key(self._model.get(key_hash))
            except self._model.DoesNotExist:
                return None

    def list(self) -> list[ApiKeyRecord]:
        with storage_errors("list API keys"):
            records = [_key(item) for item in self._model.scan()]
        return sorted(records, key=lambda record: (record.created_at, record.name))

    def revoke(self, key_hash: str, at: datetime) -> None:
        """Revoke once: a second revoke keeps the first time. Unknown key -> NotFound."""
        model = self._model
        with storage_errors("revoke API key"):
            try:
                model(key_hash).update(
                    actions=[model.revoked_at.set(model.revoked_at | at)],
                    condition=model.key_hash.exists(),
                )
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    raise NotFound("no API key with that hash") from exc
                raise


def _key(item: KeyModel) -> ApiKeyRecord:
    return ApiKeyRecord(item.key_hash, item.role, item.name, item.created_at, item.revoked_at)


# --- content ---


@dataclass(frozen=True)
class ContentVersion:
    key: str
    version: int
    body: str
    author: str
    created_at: datetime


class ContentStore:
    """Immutable versions of templates ("template#<name>") and rules ("rules#default"), from 1 upward."""

    def __init__(self, tables: Tables) -> None:
        self._model = models_for(tables).content

    def save(
        self, key: str, body: str, author: str, at: datetime, *, expected_latest: int | None = None
    ) -> int:
        """Write the next version and return its number. `expected_latest` is the version the author
        edited (0 = creating it); if another save landed first this raises `ConcurrentUpdate`, as does
        losing the race for the same version number."""
        current = self._latest_number(key)
        if expected_latest is not None and expected_latest != current:
            raise ConcurrentUpdate(
                f"{key} is at version {current}, but the change was made to version {expected_latest}; "
                "reload it and apply the change again"
            )
        version = current + 1
        item = self._model(key, version, body=body, author=author, created_at=at)
        with storage_errors(f"save {key}"):
            try:
                item.save(condition=self._model.version.does_not_exist())
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    raise ConcurrentUpdate(
                        f"{key} version {version} was saved by someone else just now; reload it and retry"
                    ) from exc
                raise
        return version

    def latest(self, key: str) -> ContentVersion | None:
        with storage_errors(f"read {key}"):
            items = list(self._model.query(key, scan_index_forward=False, limit=1, consistent_read=True))
        return _content(items[0]) if items else None

    def get(self, key: str, version: int) -> ContentVersion | None:
        with storage_errors(f"read {key} version {version}"):
            try:
                return _content(self._model.get(key, version))
            except self._model.DoesNotExist:
                return None

    def versions(self, key: str) -> list[ContentVersion]:
        """Every version, newest first."""
        with storage_errors(f"read versions of {key}"):
            return [_content(item) for item in self._model.query(key, scan_index_forward=False)]

    def keys(self, prefix: str) -> list[str]:
        """Distinct keys starting with `prefix`, sorted. Scans: the content table is small by nature."""
        model = self._model
        with storage_errors("list content"):
            scan = model.scan(model.key.startswith(prefix), attributes_to_get=["key"])
            return sorted({item.key for item in scan})

    def _latest_number(self, key: str) -> int:
        with storage_errors(f"read {key}"):
            query = self._model.query(
                key,
                scan_index_forward=False,
                limit=1,
                consistent_read=True,
                attributes_to_get=["key", "version"],
            )
            return max((int(item.version) for item in query), default=0)


def _content(item: ContentModel) -> ContentVersion:
    return ContentVersion(item.key, int(item.version), item.body, item.author, item.created_at)

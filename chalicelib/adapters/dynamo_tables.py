"""DynamoDB table layout: the PynamoDB models of Leadloop's tables, their binding to real table names.

Models here describe storage only. They are declared without a table; `models_for(Tables(...))` derives
subclasses bound to `<prefix><suffix>` on a host and region, so nothing touches AWS (or needs moto running)
at import time. `create_tables` is for local stacks and tests; deployed stages get the same layout from
infra/. `storage_errors` turns the SDK failures that are not the caller's fault into `StorageUnavailable`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import TypeVar, cast

from botocore.exceptions import BotoCoreError
from pynamodb.attributes import (
    BinaryAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.exceptions import PynamoDBException, TableError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.errors import StorageUnavailable

DUE_SHARDS = 4
CONDITION_FAILED = "ConditionalCheckFailedException"
# Codes that mean "DynamoDB could not serve this now", as opposed to a request it will never accept.
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "LimitExceededException",
        "TableNotFoundException",
        "ResourceNotFoundException",
    }
)


@dataclass(frozen=True)
class Tables:
    """Where the tables live: names are `<prefix><suffix>`; `host` is None for AWS itself."""

    prefix: str
    host: str | None = None
    region: str = "us-east-1"


# --- prospects ---


class ByStateIndex(GlobalSecondaryIndex["ProspectModel"]):
    """The shared pool by lifecycle state, best score band first (dynamo_pool: the exact order is recovered
    at read time). Projects the list columns, not `doc`: the profile is the big attribute and copying it
    would double the write cost of every event."""

    class Meta:
        index_name = "by_state"
        # Not updated_at nor the exact score: they change on nearly every save, and projecting either
        # would make every save an index write too.
        projection = IncludeProjection(["owner", "email", "name", "company", "sla_status"])

    state = UnicodeAttribute(hash_key=True)
    # Stored as `score`, the name the deployed index was created with, so the index needs no migration.
    score_band = NumberAttribute(range_key=True, attr_name="score")


class InboxIndex(GlobalSecondaryIndex["ProspectModel"]):
    """Sparse: only leads with sales (sales_ready or accepted) carry `inbox` (their state) and `routed_key`
    (when they were last routed, then the lead id), so the inbox lists newest routing first and pages by
    key. The score is deliberately not projected: an index row is written when a lead is routed, accepted or
    leaves the inbox (or its owner, SLA status or name changes), never on a score change."""

    class Meta:
        index_name = "inbox"
        projection = IncludeProjection(["owner", "email", "name", "company", "sla_status"])

    inbox = UnicodeAttribute(hash_key=True)
    routed_key = UnicodeAttribute(range_key=True)


class DueIndex(GlobalSecondaryIndex["ProspectModel"]):
    """Sparse: only prospects with a scheduled touch carry `due_shard`, so a sweep reads only those."""

    class Meta:
        index_name = "due"
        projection = KeysOnlyProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    next_touch_at = NumberAttribute(range_key=True)


class ProspectModel(Model):
    lead_id = UnicodeAttribute(hash_key=True)
    doc = BinaryAttribute(legacy_encoding=False)  # zlib-compressed JSON: writes are billed per KB
    version = VersionAttribute()
    state = UnicodeAttribute()
    owner = UnicodeAttribute(null=True)
    # The pool index's sort key, a band the exact score stays near (dynamo_pool.band_for); before bands it
    # was the exact score itself, and an item written then has no `exact_score`.
    score_band = NumberAttribute(attr_name="score")
    score = NumberAttribute(attr_name="exact_score", null=True)
    email = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    company = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute()
    sla_status = UnicodeAttribute(null=True)  # waiting | escalated | met | late | missed; changes with state
    next_touch_at = NumberAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    inbox = UnicodeAttribute(null=True)  # the state, only while sales_ready or accepted (InboxIndex)
    routed_key = UnicodeAttribute(null=True)  # "<routed at, iso()>#<lead id>", only with `inbox`
    # The effects this write decided (chalicelib.effects.outbox), zlib JSON; absent when it decided none.
    # Written in the same conditional write as the decision; the table's stream hands it to the dispatcher.
    outbox = BinaryAttribute(null=True, legacy_encoding=False)
    by_state = ByStateIndex()
    due = DueIndex()
    inbox_index = InboxIndex()


class IdentityModel(Model):
    identity = UnicodeAttribute(hash_key=True)
    lead_id = UnicodeAttribute()


# --- activity ---


class ByDayIndex(GlobalSecondaryIndex["ActivityModel"]):
    class Meta:
        index_name = "by_day"
        projection = AllProjection()

    day = UnicodeAttribute(hash_key=True)
    seq = UnicodeAttribute(range_key=True)


class ActivityModel(Model):
    lead_id = UnicodeAttribute(hash_key=True)
    seq = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    actor = UnicodeAttribute()
    data = UnicodeAttribute()
    day = UnicodeAttribute()
    expires_at = TTLAttribute()
    by_day = ByDayIndex()


# --- small tables ---


class NonceModel(Model):
    key = UnicodeAttribute(hash_key=True)
    expires_at = TTLAttribute()
    ids = BinaryAttribute(null=True, legacy_encoding=False)  # an idempotency chunk: 8-byte fingerprints


class KeyModel(Model):
    key_hash = UnicodeAttribute(hash_key=True)
    role = UnicodeAttribute()
    name = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    revoked_at = UTCDateTimeAttribute(null=True)


class ContentModel(Model):
    key = UnicodeAttribute(hash_key=True)
    version = NumberAttribute(range_key=True)
    body = UnicodeAttribute()
    author = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


class CounterModel(Model):
    period = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(range_key=True)
    value = NumberAttribute()


class AccountModel(Model):
    """An account (`item` "#account": its traits) and its member list (`item` "lead#<id>": one row a
    person). Written by chalicelib.adapters.dynamo_accounts."""

    account_id = UnicodeAttribute(hash_key=True)
    item = UnicodeAttribute(range_key=True)
    traits = UnicodeAttribute(null=True)  # the account: JSON of its traits
    updated_at = UnicodeAttribute(null=True)  # the account: when the group call that set them happened
    joined_at = UnicodeAttribute(null=True)  # a member: first linked
    engaged_on = UnicodeAttribute(null=True)  # a member: the last day they earned engagement points
    lead_version = NumberAttribute(null=True)  # a member: the lead's write that wrote the row


# --- binding ---


@dataclass(frozen=True)
class BoundModels:
    """The models of one `Tables`, each bound to its table."""

    prospects: type[ProspectModel]
    identities: type[IdentityModel]
    activity: type[ActivityModel]
    nonces: type[NonceModel]
    keys: type[KeyModel]
    content: type[ContentModel]
    counters: type[CounterModel]
    accounts: type[AccountModel]

    def all(self) -> list[type[Model]]:
        return [getattr(self, f.name) for f in fields(self)]


_M = TypeVar("_M", bound=Model)


# Tables whose writes feed a stream: every prospect write carries its outbox to the effects dispatcher.
STREAMED = {"prospects": "NEW_IMAGE"}


def _bind(base: type[_M], tables: Tables, suffix: str) -> type[_M]:
    attributes: dict[str, object] = {
        "table_name": f"{tables.prefix}{suffix}",
        "host": tables.host,
        "region": tables.region,
        "billing_mode": PAY_PER_REQUEST_BILLING_MODE,
    }
    if suffix in STREAMED:
        attributes["stream_view_type"] = STREAMED[suffix]
    meta = type("Meta", (), attributes)
    bound = cast(type[_M], type(base.__name__, (base,), {"Meta": meta, "__module__": __name__}))
    # PynamoDB gives every model its own botocore session and client, and building one costs ~0.4 s of
    # JSON loading: seven tables would add seconds to each cold start. All tables on one endpoint share
    # one connection instead (it is lazy: nothing connects until the first call).
    table_connection = bound._get_connection()
    shared = _shared_connection(tables.host, tables.region)
    shared.add_meta_table(table_connection.get_meta_table())
    table_connection.connection = shared
    return bound


@lru_cache(maxsize=16)
def _shared_connection(host: str | None, region: str) -> Connection:
    return Connection(region=region, host=host)


def shared_connection(tables: Tables) -> Connection:
    """The connection every table of `tables` uses (transactions span tables through it)."""
    models_for(tables)  # binds the tables, registering their schemas on the connection
    return _shared_connection(tables.host, tables.region)


@lru_cache(maxsize=64)
def models_for(tables: Tables) -> BoundModels:
    """Bound model classes for `tables`, cached so every store of one stage shares connections."""
    return BoundModels(
        prospects=_bind(ProspectModel, tables, "prospects"),
        identities=_bind(IdentityModel, tables, "identities"),
        activity=_bind(ActivityModel, tables, "activity"),
        nonces=_bind(NonceModel, tables, "nonces"),
        keys=_bind(KeyModel, tables, "keys"),
        content=_bind(ContentModel, tables, "content"),
        counters=_bind(CounterModel, tables, "counters"),
        accounts=_bind(AccountModel, tables, "accounts"),
    )


def create_tables(tables: Tables) -> None:
    """Create every table that does not exist yet (on-demand billing) and switch TTL on where it applies;
    a table made before its stream existed (an older local data directory) gets the stream switched on."""
    for model in models_for(tables).all():
        with storage_errors(f"create table {model.Meta.table_name}"):
            try:
                model.create_table(wait=True, ignore_update_ttl_errors=True)
            except TableError as exc:
                # Another process created it between our exists() check and the create: that is success.
                if exc.cause_response_code != "ResourceInUseException":
                    raise
            view = getattr(model.Meta, "stream_view_type", None)
            if view is not None:
                _ensure_stream(model, view)


def _ensure_stream(model: type[Model], view: str) -> None:
    client = model._get_connection().connection.client
    table = client.describe_table(TableName=model.Meta.table_name)["Table"]
    if (table.get("StreamSpecification") or {}).get("StreamEnabled"):
        return
    client.update_table(
        TableName=model.Meta.table_name,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
    )


# --- shared translation ---


def is_condition_failure(exc: PynamoDBException) -> bool:
    return exc.cause_response_code == CONDITION_FAILED


def is_unavailable(exc: PynamoDBException) -> bool:
    if exc.cause_response_code in _UNAVAILABLE_CODES:
        return True
    # No response code at all: the request never got an answer (connection refused, timeout).
    return exc.cause_response_code is None and isinstance(exc.cause, BotoCoreError)


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Re-raise throttling, server and network failures as `StorageUnavailable`; anything else (a request
    DynamoDB rejects) is a bug in this module and propagates unchanged."""
    try:
        yield
    except PynamoDBException as exc:
        if is_unavailable(exc):
            detail = exc.cause_response_message or str(exc.cause or exc)
            raise StorageUnavailable(f"storage is unavailable ({action}): {detail}") from exc
        raise


def due_shard(lead_id: str) -> str:
    """A stable shard for the due index, spread by a hash of the lead id (not Python's salted hash())."""
    digest = hashlib.sha256(lead_id.encode()).digest()
    return f"due#{int.from_bytes(digest[:4], 'big') % DUE_SHARDS}"


def due_shards() -> list[str]:
    return [f"due#{n}" for n in range(DUE_SHARDS)]


def iso(at: datetime) -> str:
    """UTC, fixed-width ISO-8601 (microseconds, `Z`), so strings sort in time order."""
    if at.tzinfo is None:
        raise ValueError("timestamps given to storage must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

"""Leadloop's storage on DynamoDB: the one import path for the repositories and their plain records.

The code lives in `dynamo_tables` (models, table binding, `create_tables`, error translation),
`dynamo_prospects` (profiles, identities), `dynamo_records` (activity, nonces, keys, content),
`dynamo_counters` (sharded metric counters) and `dynamo_capacity` (read/write unit metering). Every store
takes a `Tables` in its constructor and hands back dataclasses and dicts, never a PynamoDB object;
conditional-write losses raise `ConcurrentUpdate`, throttling and outages `StorageUnavailable`.
"""

from __future__ import annotations

from chalicelib.adapters.dynamo_capacity import CapacityMeter, CapacityReading
from chalicelib.adapters.dynamo_counters import Counters
from chalicelib.adapters.dynamo_prospects import IdentityStore, ProspectRow, ProspectStore, StoredProspect
from chalicelib.adapters.dynamo_records import (
    ActivityEntry,
    ActivityLog,
    ApiKeyRecord,
    ContentStore,
    ContentVersion,
    DynamoSeenChunks,
    EffectLedger,
    KeyStore,
    NonceStore,
)
from chalicelib.adapters.dynamo_tables import DUE_SHARDS, Tables, create_tables

__all__ = [
    "DUE_SHARDS",
    "ActivityEntry",
    "ActivityLog",
    "ApiKeyRecord",
    "CapacityMeter",
    "CapacityReading",
    "ContentStore",
    "ContentVersion",
    "Counters",
    "DynamoSeenChunks",
    "EffectLedger",
    "IdentityStore",
    "KeyStore",
    "NonceStore",
    "ProspectRow",
    "ProspectStore",
    "StoredProspect",
    "Tables",
    "create_tables",
]

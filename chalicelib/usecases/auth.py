"""Who is calling: write keys (tracking sources) and Bearer API keys with roles, checked against hashes.

Keys are stored only as SHA-256 hashes; a lookup is one GetItem, with no cache, so a revoked key stops
working on the very next request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from chalicelib.adapters.dynamo import ApiKeyRecord, KeyStore
from chalicelib.errors import Forbidden, Unauthenticated
from chalicelib.ingest.headers import header

ROLES = ("write", "sales", "marketing", "admin")
READERS = ("sales", "marketing", "admin")


@dataclass(frozen=True)
class Principal:
    role: str
    name: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(role: str) -> str:
    return f"ll_{role}_{secrets.token_urlsafe(24)}"


class Authenticator:
    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    def _record(self, key: str) -> ApiKeyRecord | None:
        record = self._keys.get(hash_key(key))
        return None if record is None or record.revoked_at is not None else record

    def bearer(self, headers: Mapping[str, str], allowed: Iterable[str]) -> Principal:
        value = header(headers, "authorization") or ""
        if not value.lower().startswith("bearer ") or not value[7:].strip():
            raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
        record = self._record(value[7:].strip())
        if record is None or record.role == "write":
            raise Unauthenticated("unknown or revoked API key")
        allowed = tuple(allowed)
        if record.role not in allowed:
            raise Forbidden(f"role {record.role!r} may not do this; allowed: {', '.join(allowed)}")
        return Principal(role=record.role, name=record.name)

    def write_key(self, key: str | None) -> Principal:
        if not key:
            raise Unauthenticated("send the source's write key as the Basic username, or as writeKey")
        record = self._record(key)
        if record is None or record.role != "write":
            raise Unauthenticated("unknown or revoked write key")
        return Principal(role="write", name=record.name)

    def create(self, role: str, name: str, now: datetime) -> str:
        """A new key (shown once); only its hash is stored."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        key = new_key(role)
        self._keys.put(hash_key(key), role, name, now)
        return key

"""Cursors of the prospect lists: a DynamoDB LastEvaluatedKey as an opaque URL-safe string, and back.

A cursor is checked to be exactly the shape the list hands out (its key names, their types, the same state),
so an edited cursor is a 400 that says so, never a DynamoDB validation error or a read of another list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from chalicelib.errors import MalformedInput

Key = dict[str, dict[str, str]]

# The pool index (by_state: state, score) and the inbox index (inbox: state, routed_key), each with lead_id.
POOL_KEY_TYPES = {"lead_id": "S", "state": "S", "score": "N"}
INBOX_KEY_TYPES = {"lead_id": "S", "inbox": "S", "routed_key": "S"}


def _refused() -> MalformedInput:
    return MalformedInput("cursor is not one this list returned; start again without a cursor")


def encode_cursor(last_key: Key) -> str:
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, types: Mapping[str, str]) -> Key:
    """The key inside `cursor` if it has exactly these attribute names, each a string of its DynamoDB type."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _refused() from None
    if not isinstance(key, dict) or set(key) != set(types):
        raise _refused()
    for name, kind in types.items():
        value = key[name]
        if not isinstance(value, dict) or list(value) != [kind] or not isinstance(value[kind], str):
            raise _refused()
    if not key["lead_id"]["S"]:
        raise _refused()
    return key


def decode_pool_cursor(cursor: str, state: str | None) -> Key:
    """A pool list's cursor (for the same state, when one is asked for), with a finite score."""
    key = _decode(cursor, POOL_KEY_TYPES)
    if state is not None and key["state"]["S"] != state:
        raise _refused()
    try:
        score = Decimal(key["score"]["N"])
    except InvalidOperation:
        raise _refused() from None
    if not score.is_finite():
        raise _refused()
    return key


def decode_inbox_cursor(cursor: str, state: str) -> Key:
    """An inbox page's cursor, for the same state."""
    key = _decode(cursor, INBOX_KEY_TYPES)
    if key["inbox"]["S"] != state or not key["routed_key"]["S"]:
        raise _refused()
    return key

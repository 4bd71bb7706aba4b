"""Moving a profile's older event ids out of its item, and finding them again (chalicelib.domain.seen).

The profile item holds its newest ids; older ones live in chunks, items written once that expire with their
ids. Before a batch is applied, `recall_seen` looks up each event whose id the chunks' filters may hold, so
`apply_event` skips a redelivery as it always did. Before a profile is written, `spill_seen` writes a new
chunk when the item holds too many ids, so a busy prospect's every save does not carry its whole horizon.
The chunk is written first: a profile never names a chunk that is not stored.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from chalicelib.domain.events import Event
from chalicelib.domain.prospect import Prospect, event_fingerprint
from chalicelib.domain.seen import SEEN_HORIZON_HOURS
from chalicelib.usecases.ports import SeenChunks

log = logging.getLogger(__name__)

# A chunk is kept this long past its horizon: a profile stops reading it at the horizon, and DynamoDB's TTL
# deletes it some time after it expires.
CHUNK_SLACK = timedelta(hours=24)


def new_chunk_id() -> str:
    """64 random bits: the store refuses an id held already, so a collision costs a retry, never an id."""
    return secrets.token_hex(8)


def recall_seen(chunks: SeenChunks | None, p: Prospect, events: Iterable[Event], now: datetime) -> None:
    """Mark which of `events` the profile's chunks hold: applied before, so `apply_event` skips them."""
    window = p.seen
    if chunks is None or not window.chunks:
        return
    wanted = window.to_look_up((event_fingerprint(e.message_id) for e in events), now)
    if not wanted:
        return
    found = chunks.get_many(list(wanted))
    for chunk_id, fingerprints in wanted.items():
        held = found.get(chunk_id)
        if held is None:
            # Written before the profile that names it, and kept past its horizon: only a restore from an
            # older backup loses one. The events are applied (at least once) rather than dropped.
            log.warning(
                "lead %s: idempotency chunk %s not found; its ids may apply again", p.lead_id, chunk_id
            )
            continue
        window.recall(fingerprint for fingerprint in fingerprints if fingerprint in held)


def spill_seen(chunks: SeenChunks | None, p: Prospect, new_id: Callable[[], str] = new_chunk_id) -> None:
    """When the profile item holds more ids than it keeps, write them to new chunks and name those instead."""
    if chunks is None:
        return
    for chunk_id, entries in p.seen.spill(new_id):
        newest = datetime.fromtimestamp(max(entries.values()) * 3600, UTC)
        expires_at = newest + timedelta(hours=SEEN_HORIZON_HOURS + 1) + CHUNK_SLACK
        chunks.put(chunk_id, list(entries), expires_at=expires_at)

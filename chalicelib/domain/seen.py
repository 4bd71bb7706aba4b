"""The idempotency window: which event ids a profile applied lately, so a redelivery is applied once.

Idempotency is promised in time (README "Idempotency window"): an event id redelivered within
SEEN_HORIZON_HOURS of its first application is not applied again. MAX_SEEN_EVENTS bounds the window whatever
the rate: a burst of more ids than that within the horizon stays exact for its newest MAX_SEEN_EVENTS.

The window must not make a busy prospect's every save dearer (issue 15: a save writes at most 2 KB whatever
the history or the rate). So only its newest ids live in the profile item, which every save rewrites. When
they pass SPILL_AT, the store moves them into a chunk of their own (`spill`): an item written once, never
rewritten, that expires with its ids (chalicelib.usecases.seen_chunks). The profile keeps, per chunk, its id,
newest hour, size and a Bloom filter of its ids (one byte per id): an id the filters do not match was never
applied; one they match is looked up in its chunk before the batch is applied (`recall`). So a redelivery is
still exact, and the item pays about one byte per id of the last horizon instead of nine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

SEEN_HORIZON_HOURS = 72
MAX_SEEN_EVENTS = 300
# Ids kept in the profile item itself before the store moves them into a chunk. A prospect with fewer
# events than this in a horizon (most of them) never has a chunk; above it, the item holds at most this
# many ids plus one batch's (9 bytes each) and a filter byte per older id of the horizon.
SPILL_AT = 24
# Ids per chunk at most: a big batch spills into several chunks, so the window forgets its oldest ids a chunk
# at a time and still holds at least the newest MAX_SEEN_EVENTS (and fewer than MAX_CHUNK more).
MAX_CHUNK = 64
# Bloom filter: BLOOM_BITS_PER_ID bits per id and BLOOM_PROBES probes give about 2% false matches per chunk;
# a false match costs one read of that chunk, never a wrong answer.
BLOOM_BITS_PER_ID = 8
BLOOM_PROBES = 5


def hour_of(at: datetime) -> int:
    """Hours since the Unix epoch: the idempotency window's coarse clock."""
    return int(at.timestamp()) // 3600


def _positions(fingerprint: str, bits: int) -> Iterator[int]:
    """The filter bits of one fingerprint (16 hex digits of a hash, so its halves are independent hashes:
    double hashing, Kirsch and Mitzenmacher 2006)."""
    first = int(fingerprint[:8], 16)
    step = int(fingerprint[8:16], 16) | 1
    for probe in range(BLOOM_PROBES):
        yield (first + probe * step) % bits


def bloom_size(count: int) -> int:
    """Bytes of the filter of `count` ids."""
    return max(count * BLOOM_BITS_PER_ID // 8, 8)


def bloom_of(fingerprints: Iterable[str], count: int) -> bytes:
    size = bloom_size(count)
    bits = bytearray(size)
    for fingerprint in fingerprints:
        for at in _positions(fingerprint, size * 8):
            bits[at >> 3] |= 1 << (at & 7)
    return bytes(bits)


@dataclass(frozen=True, slots=True)
class SeenChunk:
    """Ids moved out of the profile item into their own stored chunk: `chunk_id` names it (random and
    unique: the store refuses to write over another chunk), `newest` is the hour its newest id was applied
    (it expires a horizon after), `count` how many ids it holds (at most MAX_CHUNK), `bloom` their filter."""

    chunk_id: str
    newest: int
    count: int
    bloom: bytes

    def may_hold(self, fingerprint: str) -> bool:
        bloom = self.bloom
        return all(bloom[at >> 3] & (1 << (at & 7)) for at in _positions(fingerprint, len(bloom) * 8))


@dataclass(slots=True)
class SeenWindow:
    """The ids of the events a profile applied lately, as fingerprints (`event_fingerprint`) with the hour
    each was applied; oldest first. Bounded in time and count: `remember` forgets what is older than
    SEEN_HORIZON_HOURS before the hour it is given and keeps the newest MAX_SEEN_EVENTS (with its chunks,
    which go whole, fewer than MAX_CHUNK more). An hour of None marks
    a fingerprint stored before the window kept hours (a profile's old `seen` list): it still dedupes, and
    the next `remember` stamps it with that hour, so it too is kept for a whole horizon after the upgrade.

    `chunks` are the older ids moved to their own items (oldest first); `recalled` the fingerprints the
    store found in them for the batch at hand (`recall`), never stored."""

    hours: dict[str, int | None] = field(default_factory=dict)
    unstamped: bool = False  # some hour is None (set by the loader, so `remember` need not look every time)
    chunks: list[SeenChunk] = field(default_factory=list)
    recalled: set[str] = field(default_factory=set)

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self.hours or fingerprint in self.recalled

    def __iter__(self) -> Iterator[str]:
        return iter(self.hours)

    def __len__(self) -> int:
        """Every id remembered: in the item and in its chunks."""
        return len(self.hours) + sum(chunk.count for chunk in self.chunks)

    def remember(self, fingerprint: str, at: datetime) -> None:
        """Record `fingerprint` as applied at `at` and forget what has passed the horizon by then."""
        hour = int(at.timestamp()) // 3600  # hour_of, inline: once per event applied
        hours = self.hours
        if self.unstamped:
            for key, stamp in hours.items():
                if stamp is None:
                    hours[key] = hour
            self.unstamped = False
        hours.pop(fingerprint, None)
        hours[fingerprint] = hour
        cutoff = hour - SEEN_HORIZON_HOURS
        chunks = self.chunks
        if chunks:
            self._forget_chunks(cutoff, MAX_SEEN_EVENTS - len(hours))
        # Oldest first: stop at the first entry still inside the horizon. An entry stamped out of order (a
        # merged profile's) may outlive its horizon a little; keeping an id longer is never wrong.
        while len(hours) > 1:
            oldest = next(iter(hours))
            stamp = hours[oldest]
            if len(hours) <= MAX_SEEN_EVENTS and (stamp is None or stamp >= cutoff):
                break
            del hours[oldest]

    def _forget_chunks(self, cutoff: int, room: int) -> None:
        """Drop chunks whose newest id has passed the horizon, then the oldest while the rest still hold
        `room` ids: at least the newest MAX_SEEN_EVENTS ids are kept, a chunk at a time."""
        kept = [chunk for chunk in self.chunks if chunk.newest >= cutoff]
        total = sum(chunk.count for chunk in kept)
        while kept and total - kept[0].count >= room:
            total -= kept.pop(0).count
        self.chunks = kept

    def live_chunks(self, now: datetime) -> list[SeenChunk]:
        """The chunks still inside the horizon at `now` (an expired one may be gone from storage)."""
        cutoff = hour_of(now) - SEEN_HORIZON_HOURS
        return [chunk for chunk in self.chunks if chunk.newest >= cutoff]

    def to_look_up(self, fingerprints: Iterable[str], now: datetime) -> dict[str, list[str]]:
        """Which chunk may hold which of `fingerprints` not in the item: chunk id -> fingerprints."""
        wanted: dict[str, list[str]] = {}
        live = self.live_chunks(now)
        for fingerprint in fingerprints:
            if fingerprint in self.hours:
                continue
            for chunk in live:
                if chunk.may_hold(fingerprint):
                    wanted.setdefault(chunk.chunk_id, []).append(fingerprint)
        return wanted

    def recall(self, fingerprints: Iterable[str]) -> None:
        """Fingerprints found in this profile's chunks: applied before, so not again."""
        self.recalled.update(fingerprints)

    def spill(self, new_id: Callable[[], str]) -> list[tuple[str, dict[str, int]]]:
        """When the item holds more than SPILL_AT ids, move them all into new chunks of at most MAX_CHUNK ids
        (oldest first), each named by `new_id()`: answers each chunk's id and its ids with their hours, for
        the store to write before the profile that names them; nothing when nothing is to move."""
        if len(self.hours) <= SPILL_AT:
            return []
        stamps = [stamp for stamp in self.hours.values() if stamp is not None]
        if not stamps:
            return []  # only ids stored before hours were kept: the next remember stamps them first
        latest = max(stamps)
        entries = [(key, latest if stamp is None else stamp) for key, stamp in self.hours.items()]
        spilled: list[tuple[str, dict[str, int]]] = []
        for start in range(0, len(entries), MAX_CHUNK):
            part = dict(entries[start : start + MAX_CHUNK])
            chunk_id = new_id()
            self.chunks.append(SeenChunk(chunk_id, max(part.values()), len(part), bloom_of(part, len(part))))
            spilled.append((chunk_id, part))
        self.hours = {}
        self.unstamped = False
        return spilled

    def absorb(self, other: SeenWindow) -> None:
        """Add a merged-away profile's window: its entries first (they make room first), this one's newest.
        Its chunks come too (a chunk's id names it alone, not its lead), in order of their newest ids: the
        oldest chunk goes first when the window is full, whichever half held it (a visitor busy in the last
        hour, merged into a lead busy two days ago, keeps its last hour's ids)."""
        merged = {**other.hours, **self.hours}
        self.hours = dict(list(merged.items())[-MAX_SEEN_EVENTS:])
        self.unstamped = self.unstamped or other.unstamped
        self.chunks = sorted([*other.chunks, *self.chunks], key=lambda chunk: chunk.newest)
        self.recalled |= other.recalled

    def bound(self, limit: int) -> int:
        """Keep the newest `limit` ids, and fewer than MAX_CHUNK more (chunks go whole, oldest first);
        answers how many went."""
        before = len(self)
        drop = max(len(self.hours) - limit, 0)
        for key in list(self.hours)[:drop]:
            del self.hours[key]
        total = len(self)
        while self.chunks and total - self.chunks[0].count >= limit:
            total -= self.chunks.pop(0).count
        return before - len(self)

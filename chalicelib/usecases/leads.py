"""The lead use cases: load → decide (domain) → persist with a conditional write → carry out the effects.

`LeadService` is the only writer of prospect profiles and lifecycle state. The queue worker calls
`apply_events`; the sales API calls `command`, which runs the very same unit of work in-process so an illegal
transition can be answered with 409 at once. The effects a unit of work decides (the activity feed, the
scoreboard counters, the sales notification with the owner the assignment rules chose, starting or
releasing the SLA workflow) are stored in the same conditional write as the decision and performed at least
once (`chalicelib.effects`). One prospect's failure is its own: `apply_events` reports it per prospect.
Which lead each event belongs to, and merging the leads an event joins, is
`chalicelib.usecases.identity_resolution`: a lead merged into another leaves a forwarding record
(`lead:<old id>`), so links and ids sent out before the merge still reach the survivor. Nurture (choose,
render, send, preview) lives in `chalicelib.usecases.nurture`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.apply import apply_event
from chalicelib.domain.bounds import fit_traits, keep_within_budget
from chalicelib.domain.decisions import Effect, InvalidCommand, Noted
from chalicelib.domain.events import Event, EventKind, internal_id
from chalicelib.domain.lifecycle import IllegalTransition
from chalicelib.domain.merge import absorb_profile
from chalicelib.domain.prospect import Prospect, Suppression, event_fingerprint
from chalicelib.domain.prospect_copy import copy_prospect
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import Rules
from chalicelib.domain.scoring import Scores
from chalicelib.domain.summary import summarize
from chalicelib.domain.suppression import ERASED, SuppressedAddress
from chalicelib.effects.dispatch import Dispatcher, SavedWrite
from chalicelib.effects.outbox import counted_by_stream, plan
from chalicelib.errors import ConcurrentUpdate, InvalidContent, NotFound, StorageUnavailable
from chalicelib.usecases.accounts import account_counts
from chalicelib.usecases.identity_resolution import BatchResolution, LeadEvents, follow_forwards, new_lead_id
from chalicelib.usecases.ports import (
    AccountDirectory,
    ActivityRecords,
    IdentityIndex,
    ProspectRepository,
    ScoreboardCounters,
    SeenChunks,
    ShadowHook,
    Versioned,
)
from chalicelib.usecases.refusals import as_http_error
from chalicelib.usecases.seen_chunks import recall_seen, spill_seen

log = logging.getLogger("leadloop")

MAX_WRITE_ATTEMPTS = 8
RETRY_PAUSE_SECONDS = 0.02
FEED_DEFAULT_DAYS = 7
CLICK_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class FailedProspect:
    lead_id: str
    events: list[Event]
    error: Exception

    @property
    def retryable(self) -> bool:
        """Storage trouble or a lost race may pass; anything else (a record too large, a bug) will not."""
        return isinstance(self.error, StorageUnavailable | ConcurrentUpdate)


@dataclass
class BatchOutcome:
    written: int = 0
    failed: list[FailedProspect] = field(default_factory=list)
    # Each prospect applied (or found applied already) with its events: what the event archive keeps.
    applied: list[tuple[str, list[Event]]] = field(default_factory=list)


class LeadService:
    def __init__(
        self,
        *,
        prospects: ProspectRepository,
        identities: IdentityIndex,
        activity: ActivityRecords,
        counters: ScoreboardCounters,
        rules: Callable[[], Rules],
        effects: Dispatcher,
        public_url: str,
        clock: Callable[[], datetime],
        new_id: Callable[[], str] = new_lead_id,
        pause: Callable[[float], None] = time.sleep,
        erased: Callable[[str], SuppressedAddress | None] | None = None,
        accounts: AccountDirectory | None = None,  # the summary's account counts (none: not read)
        shadow: ShadowHook | None = None,  # a rules draft scored beside the live rules (usecases/shadow.py)
        count_in_stream: bool = False,  # counts left to the stream's count consumer (effects/stream_counts)
        seen_chunks: SeenChunks | None = None,  # older event ids out of the item (none: all kept in it)
    ) -> None:
        self._seen_chunks = seen_chunks
        self._count_in_stream = count_in_stream
        self._shadow = shadow
        self._pause = pause
        self._accounts = accounts
        self._erased = erased  # the suppression list of erased people's addresses (None: not kept)
        self._prospects = prospects
        self._identities = identities
        self._activity = activity
        self._counters = counters
        self._rules = rules
        self._effects = effects
        self._public_url = public_url
        self._clock = clock
        self._new_id = new_id

    # --- reading -----------------------------------------------------------------------------------------

    def find(self, ref: str) -> Prospect:
        """A lead by id (or an id it was merged from), email or userId; NotFound otherwise."""
        ref = ref.strip()
        stored = self._prospects.get(ref) if ref else None
        if stored is not None:
            return stored.item
        if ref:
            forwarded = self._forwarded(ref)
            if forwarded is not None:
                return forwarded.item
        candidates = [f"email:{ref.lower()}"] if "@" in ref else [f"user:{ref}", f"anon:{ref}"]
        owners = self._identities.resolve(candidates)
        for key in candidates:
            if key in owners:
                found = self._prospects.get(owners[key])
                if found is not None:
                    return found.item
        raise NotFound(f"no lead with id, email or userId {ref!r}")

    def _forwarded(self, lead_id: str) -> Versioned[Prospect] | None:
        """The lead that `lead_id` was merged into (following later merges too), if it was."""
        return follow_forwards(self._identities, self._prospects, lead_id)

    def summary(self, ref: str) -> dict[str, Any]:
        p = self.find(ref)
        now = self._clock()
        counts = account_counts(self._accounts, p, now.date()) if self._accounts is not None else None
        result = summarize(p, self._rules(), now, account_counts=counts)
        result["activity"] = [
            {"at": e.at.isoformat(), "kind": e.kind, "actor": e.actor, **e.data}
            for e in self._activity.for_lead(p.lead_id, limit=50)
        ]
        return result

    def prospect(self, ref: str) -> Prospect:
        return self.find(ref)

    def applied_before(self, p: Prospect, event: Event) -> bool:
        """Whether `p` applied `event` within its idempotency window: in its item or in its chunks (one
        read, only when a chunk's filter matches the event's id)."""
        recall_seen(self._seen_chunks, p, [event], self._clock())
        return event_fingerprint(event.message_id) in p.seen

    def activity_feed(
        self,
        *,
        lead: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """Who did what to which lead, newest first: one lead's history or the global feed by time."""
        until = until or self._clock() + timedelta(seconds=1)
        since = since or until - timedelta(days=FEED_DEFAULT_DAYS)
        if since >= until:
            raise InvalidContent("'since' must be before 'until'")
        if lead:
            lead_id = self.find(lead).lead_id
            entries = [
                e
                for e in self._activity.for_lead(lead_id, limit=1000)
                if since <= e.at < until and (actor is None or e.actor == actor)
            ][:limit]
        else:
            entries = self._activity.feed(since=since, until=until, actor=actor, limit=limit)
        return {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "entries": [
                {"at": e.at.isoformat(), "lead_id": e.lead_id, "kind": e.kind, "actor": e.actor, **e.data}
                for e in entries
            ],
        }

    # --- writing: the worker and the sales API share this path ---------------------------------------------

    def apply_events(self, events: Sequence[Event]) -> BatchOutcome:
        """Apply a batch, each prospect on its own: a prospect that fails is reported with its events and
        the error, and the others are applied. Raises only when the batch cannot be sorted into prospects
        (identity storage unavailable): then nothing was written and all of it is retried."""
        outcome = BatchOutcome()
        for item in self._resolve(events, outcome.applied):
            try:
                self._apply(item.lead_id, item.events, strict=False)
            except Exception as error:  # noqa: BLE001 - one prospect's failure is its own (the worker decides)
                log.warning("lead %s failed: %s: %s", item.lead_id, type(error).__name__, error)
                outcome.failed.append(FailedProspect(item.lead_id, item.events, error))
            else:
                outcome.written += 1
                outcome.applied.append((item.lead_id, item.events))
        return outcome

    def command(self, ref: str, action: str, args: dict[str, Any], actor: str) -> dict[str, Any]:
        """A sales action on one lead, applied at once. Raises Conflict (409) on an illegal transition."""
        stored = self.find(ref)
        now = self._clock()
        event = Event(
            message_id=internal_id("api", secrets.token_hex(8)),
            kind=EventKind.SALES,
            at=now,
            source="sales-api",
            name=action,
            lead_id=stored.lead_id,
            properties={**args, "actor": actor},
        )
        self._apply(stored.lead_id, [event], strict=True)
        return self.summary(stored.lead_id)

    def unsubscribe(self, lead_id: str) -> None:
        """One-click unsubscribe: suppress at once (idempotent: the same link twice changes nothing)."""
        stored = self.find(lead_id)
        event = Event(
            message_id=internal_id("unsubscribe", stored.lead_id),
            kind=EventKind.EMAIL,
            at=self._clock(),
            source="unsubscribe-link",
            name="unsubscribed",
            lead_id=stored.lead_id,
            properties={"provider": "leadloop"},
        )
        self._apply(stored.lead_id, [event], strict=False)

    def record_click(self, link: dict[str, Any]) -> None:
        """A click through Leadloop's redirect: interest in the link's topics, engagement points. Repeats
        of one link from one email within CLICK_WINDOW count once (readers and scanners click twice)."""
        lead_id = str(link.get("l", ""))
        stored = self._prospects.get(lead_id) if lead_id else None
        if stored is None:
            stored = self._forwarded(lead_id) if lead_id else None
        if stored is None:
            return  # the lead was removed; the redirect still works for the reader
        lead_id = stored.item.lead_id
        now = self._clock()
        window = int(now.timestamp() // CLICK_WINDOW.total_seconds())
        email = link.get("s") or link.get("m")  # the send it came in; older links name only the template
        what = hashlib.blake2b(f"{email}\x1f{link.get('u')}".encode(), digest_size=8).hexdigest()
        event = Event(
            message_id=internal_id("click", f"{lead_id}:{what}:{window}"),
            kind=EventKind.EMAIL,
            at=now,
            source="redirect",
            name="clicked",
            lead_id=lead_id,
            properties={
                "url": link.get("u"),
                "topics": list(link.get("t") or []),
                "template": link.get("m"),
                "send_id": link.get("s"),
                "provider": "leadloop",
            },
        )
        self._apply(lead_id, [event], strict=False)

    def _resolve(self, events: Sequence[Event], merges: list[tuple[str, list[Event]]]) -> list[LeadEvents]:
        """Sort the batch into leads (chalicelib.usecases.identity_resolution), merging leads it joins."""
        resolution = BatchResolution(
            identities=self._identities,
            prospects=self._prospects,
            new_id=self._new_id,
            clock=self._clock,
            fold=self._absorb,
        )
        found = resolution.resolve(events)
        merges += resolution.merges  # each merge's event, under its survivor: the event archive keeps it
        return found

    def _absorb(self, into: str, events: list[Event], source: Prospect) -> None:
        """A merge's unit of work: `source` folded into lead `into` with the merge's events, one write."""
        self._apply(into, events, strict=False, absorb=source)

    def _apply(
        self, lead_id: str, events: list[Event], *, strict: bool, absorb: Prospect | None = None
    ) -> None:
        rules = self._rules()
        turns = _Turns(self._counters)
        for attempt in range(MAX_WRITE_ATTEMPTS):
            now = self._clock()
            # A first, cheap read may be stale; the versioned write refuses it and the retry reads strongly.
            stored = self._prospects.get(lead_id, consistent=attempt > 0)
            if stored is None:
                first = min(events, key=lambda e: e.at)
                p = Prospect(lead_id=lead_id, created_at=min(first.at, now), source=first.source)
            else:
                p = stored.item
            email_before = p.email
            if absorb is not None:
                absorb_profile(p, absorb)
            recall_seen(self._seen_chunks, p, events, now)
            shadow = self._shadow.current(now) if self._shadow is not None else None  # cached: no read
            before = copy_prospect(p) if shadow is not None else None  # the shadow's copy, before the events
            effects: list[Effect] = []
            applied = 0
            for event in sorted(events, key=lambda e: e.at):
                try:
                    outcome = apply_event(p, event, rules, now)
                except (IllegalTransition, InvalidCommand) as error:
                    if strict:
                        raise as_http_error(error) from None
                    outcome = [
                        Noted(
                            "ignored",
                            str(event.properties.get("actor") or event.source),
                            {"event": event.name, "why": str(error)},
                        )
                    ]
                if outcome is not None:
                    applied += 1
                    effects.extend(outcome)
            if not applied and absorb is None:
                return  # every event was a duplicate: nothing to write, nothing to do
            if p.email != email_before:
                self._suppress_if_erased(p, now, effects)
            scores, later = reassess(p, rules, now, turns)
            effects.extend(later)
            try:
                self.save_profile(p, scores, stored.version if stored else None, now, effects)
            except ConcurrentUpdate:
                # Another worker wrote this prospect: reload and fold again, after a short random pause
                # so that workers racing for one hot prospect stop colliding in lockstep.
                self._pause(random.uniform(0, RETRY_PAUSE_SECONDS * (attempt + 1)))
                continue
            if self._shadow is not None and shadow is not None and before is not None:
                self._shadow.observe(shadow, before, events, p, scores.total, now)
            return
        raise ConcurrentUpdate(f"lead {lead_id} kept changing under us; the batch will be retried")

    def _suppress_if_erased(self, p: Prospect, now: datetime, effects: list[Effect]) -> None:
        """An address that arrives on a profile (a new lead, an identify, an import, a merge) and belongs to
        an erased person: the fresh profile is suppressed at once, so it is never emailed. One read, only
        when the profile's address changes."""
        if self._erased is None or not p.email or p.suppression is not None or self._erased(p.email) is None:
            return
        p.suppression = Suppression(reason=ERASED, at=now)
        effects.append(Noted("suppressed", "leadloop", {"reason": ERASED}))

    def save_profile(
        self,
        p: Prospect,
        scores: Scores,
        version: int | None,
        now: datetime,
        effects: Sequence[Effect] = (),
    ) -> int:
        """Write a profile and the effects it decided in one conditional write, then perform those effects
        (the stream performs them again if this process fails to); ConcurrentUpdate when `version` moved."""
        keep_within_budget(p, fit_traits(self._rules()))  # the item must stay storable, whatever was fed
        planned = tuple(plan(p, effects, now))
        if self._count_in_stream:
            planned = tuple(counted_by_stream(planned))
        spill_seen(self._seen_chunks, p)  # before the write that names the chunk
        new_version = self._prospects.save(p, score=scores.total, now=now, expected=version, effects=planned)
        if planned:
            self._perform(SavedWrite(p.lead_id, new_version, p, planned))
        return new_version

    def _perform(self, write: SavedWrite) -> None:
        """The fast path: effects right after their write. A failure here loses nothing (the write holds
        them and the stream performs them until done), so it is logged, not raised."""
        try:
            self._effects.perform(write, just_written=True)
        except Exception as error:  # noqa: BLE001 - the stream dispatcher retries whatever failed
            log.warning("effects of %s left to the stream dispatcher: %s", write.key, error)


class _Turns:
    """Round robin positions per team, read from the scoreboard's assignment counts once per unit of work
    and only if a lead is routed. Two leads routed at the same instant may get the same rep: fairness,
    not correctness, is at stake, and the counters stay exact."""

    def __init__(self, counters: ScoreboardCounters) -> None:
        self._counters = counters
        self._known: dict[str, float] | None = None

    def __call__(self, team: str) -> int:
        if self._known is None:
            self._known = self._counters.read("all")
        return int(self._known.get(f"assign:team:{team}", 0.0))

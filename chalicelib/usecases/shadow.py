"""Shadow mode for a rules draft (README "Rules lab"): publish, read, promote and discard a shadow, and the
worker's hook that scores every applied prospect beside the live rules.

One shadow at a time: PUT /rules/shadow replaces the one before (its rows are dropped). The shadow is kept
as versions of `shadow#default` in the content store (the rules' store), so every process reads the same;
the worker reads it at most once per `CACHE_SECONDS` and stops scoring once `ends_at` has passed. Its
comparison rows (chalicelib/lab/shadow.py) go to a `ShadowRows` store, one per lead, overwritten by later
batches except each rule set's first routing, so a redelivered batch changes nothing. The hook never
routes, sends, notifies or writes the profile: the copy's decisions are dropped. Given the live rules and
the active templates (`live_rules`, `catalogue`: read with the shadow, at most once per CACHE_SECONDS), a
row also carries each rule set's next template, so GET /rules/shadow reports the template choices that
would change, as the backtest does.

Cost (bench/lab.py "shadow", docs/benchmarks.md): the hook scores the worker's own copy of the profile in
place (no second copy), and a lead's row is written only when the report would show something new: a
routing, a changed next-template choice, either score moved by SCORE_STEP points or more, or REFRESH since
this process last wrote it (the first batch of a lead a process sees is always written). So a row may lag
its lead's latest batch by less than SCORE_STEP points, or by REFRESH at most.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from chalicelib.domain.activity import ActivityEntry
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.competitors import with_learned_competitors
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.errors import MalformedInput, NotFound, StorageUnavailable
from chalicelib.lab.report import Outcome, outcome_of
from chalicelib.lab.shadow import MAX_DAYS, Shadow, comparison, observe
from chalicelib.usecases.ports import ActivityRecords
from chalicelib.usecases.rules_text import check_rules_text, read_rules_draft

log = logging.getLogger("leadloop.shadow")

SHADOW_KEY = "shadow#default"
CACHE_SECONDS = 30.0
ACTIVE, DISCARDED, PROMOTED = "active", "discarded", "promoted"
MAX_OUTCOME_READS = 2000  # profiles read per GET to judge routed leads; beyond that they count unjudged
RULES_ACTIVITY_LEAD = "rules"  # the activity feed's entries about the rules, not about one lead
NOT_SCORED = frozenset({EventKind.SALES, EventKind.CRM})  # sales' own actions: outcomes, not signals
SCORE_STEP = 5.0  # points either score may move before its lead's row is written again (bars are 10 wide)
REFRESH = timedelta(days=1)  # a lead's row is rewritten at least this often while it is active
MEMO_LEADS = 50_000  # leads whose last written row a process remembers (the oldest forgotten first)


class Versions(Protocol):
    """The content store (adapters/dynamo_records.ContentStore) as the shadow uses it."""

    def save(
        self, key: str, body: str, author: str, at: datetime, *, expected_latest: int | None = ...
    ) -> int: ...
    def latest(self, key: str) -> Any: ...


class ShadowRows(Protocol):
    def record(self, shadow_id: str, lead_id: str, row: Mapping[str, Any], *, expires_at: datetime) -> None:
        """Overwrite the lead's scores; keep the first `live` and `shadow` routing already stored."""
        ...

    def all(self, shadow_id: str) -> dict[str, dict[str, Any]]: ...

    def forget(self, shadow_id: str) -> int: ...

    def forget_leads(self, shadow_id: str, lead_ids: Sequence[str]) -> int:
        """Delete these leads' rows (erasing a person); how many there were."""
        ...


@dataclass(frozen=True, slots=True)
class _Written:
    """What this process last wrote of a lead's row: enough to tell whether a new one would show more."""

    shadow_id: str
    live_score: float
    shadow_score: float
    chose: Any
    at: datetime


def _worth_writing(row: Mapping[str, Any], last: _Written | None, shadow_id: str, now: datetime) -> bool:
    if last is None or last.shadow_id != shadow_id:
        return True
    if row.get("live") or row.get("shadow"):  # a routing in this batch: the first one must be stored
        return True
    if row.get("next") != last.chose:
        return True
    moved = max(abs(row["live_score"] - last.live_score), abs(row["shadow_score"] - last.shadow_score))
    return moved >= SCORE_STEP or now - last.at >= REFRESH


@dataclass(frozen=True, slots=True)
class _Stored:
    shadow: Shadow
    status: str


def _parse(body: str) -> _Stored | None:
    doc = json.loads(body)
    parsed, _ = check_rules_text(doc["rules"])
    if parsed is None:  # a stored draft that today's checks refuse scores nothing
        return None
    shadow = Shadow(
        id=doc["id"],
        rules=parsed,
        source=doc["rules"],
        based_on=doc.get("based_on"),
        days=int(doc["days"]),
        started_at=datetime.fromisoformat(doc["started_at"]),
        ends_at=datetime.fromisoformat(doc["ends_at"]),
        author=doc["author"],
    )
    return _Stored(shadow, doc["status"])


def _read(versions: Versions) -> _Stored | None:
    latest = versions.latest(SHADOW_KEY)
    return _parse(latest.body) if latest is not None else None


class ShadowScoring:
    """The worker's hook (LeadService): the active shadow, read at most once per CACHE_SECONDS."""

    def __init__(
        self,
        *,
        versions: Versions,
        rows: ShadowRows,
        monotonic: Callable[[], float] = time.monotonic,
        cache_seconds: float = CACHE_SECONDS,
        live_rules: Callable[[], Rules] | None = None,
        catalogue: Callable[[], Sequence[TemplateMeta]] | None = None,
        learned: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._versions = versions
        self._rows = rows
        self._learned = learned  # competitor domains sales taught the live rules: the draft learns them too
        self._monotonic = monotonic
        self._cache_seconds = cache_seconds
        self._live_rules = live_rules
        self._catalogue = catalogue
        self._cached: _Stored | None = None
        self._metas: Sequence[TemplateMeta] | None = None
        self._read_at: float | None = None
        self._written: dict[str, _Written] = {}

    def current(self, now: datetime) -> Shadow | None:
        if self._read_at is None or self._monotonic() - self._read_at > self._cache_seconds:
            try:
                self._cached = self._with_learned(_read(self._versions))
            except StorageUnavailable as error:  # the live path must not wait on the shadow
                log.warning("shadow not read: %s", error)
                self._cached = None
            self._metas = self._read_catalogue() if self._cached is not None else None
            self._read_at = self._monotonic()
        found = self._cached
        if found is None or found.status != ACTIVE or not found.shadow.active(now):
            return None
        return found.shadow

    def _with_learned(self, stored: _Stored | None) -> _Stored | None:
        if stored is None:
            return None
        rules = with_learned_competitors(stored.shadow.rules, self._learned())
        return replace(stored, shadow=replace(stored.shadow, rules=rules))

    def _read_catalogue(self) -> Sequence[TemplateMeta] | None:
        if self._catalogue is None:
            return None
        try:
            return list(self._catalogue())
        except StorageUnavailable as error:  # rows without choices, never a delayed live write
            log.warning("templates not read for the shadow: %s", error)
            return None

    def forget(self) -> None:
        self._read_at = None

    def forget_leads(self, lead_ids: Sequence[str]) -> int:
        """Erasing a person: their rows in the stored shadow's comparison (active or ended, its report is
        readable until discarded), read afresh rather than from the worker's cache."""
        for lead in lead_ids:
            self._written.pop(lead, None)
        stored = _read(self._versions)
        return 0 if stored is None else self._rows.forget_leads(stored.shadow.id, lead_ids)

    def observe(
        self,
        shadow: Shadow,
        before: Prospect,
        events: Sequence[Event],
        live: Prospect,
        score: float,
        now: datetime,
    ) -> None:
        scored = [e for e in events if e.kind not in NOT_SCORED]
        if not scored:
            return
        choosing = None
        if self._live_rules is not None and self._metas is not None:
            choosing = (self._live_rules(), self._metas)
        # `before` is the worker's copy made for this hook alone (usecases/leads.py): scored in place.
        row = observe(shadow.rules, before, scored, live, score, now, choosing=choosing, owned=True)
        lead = live.lead_id
        if not _worth_writing(row, self._written.get(lead), shadow.id, now):
            return
        try:
            self._rows.record(shadow.id, lead, row, expires_at=shadow.ends_at + timedelta(days=MAX_DAYS))
        except StorageUnavailable as error:  # a lost comparison row, never a lost live write
            log.warning("shadow row of %s not written: %s", lead, error)
            return
        self._written.pop(lead, None)  # re-inserted last: the dict's order is the order of writes
        self._written[lead] = _Written(
            shadow.id, row["live_score"], row["shadow_score"], row.get("next"), now
        )
        while len(self._written) > MEMO_LEADS:
            self._written.pop(next(iter(self._written)))


class ShadowService:
    """PUT/GET/DELETE /rules/shadow and POST /rules/shadow/promote."""

    def __init__(
        self,
        *,
        versions: Versions,
        rows: ShadowRows,
        rules_source: Callable[[int], str],
        save_rules: Callable[[str, str], dict[str, Any]],
        profile: Callable[[str], Prospect | None],
        activity: ActivityRecords,
        clock: Callable[[], datetime],
        forget: Callable[[], None] = lambda: None,
        catalogue: Callable[[], Sequence[TemplateMeta]] | None = None,
    ) -> None:
        self._catalogue = catalogue
        self._versions = versions
        self._rows = rows
        self._rules_source = rules_source
        self._save_rules = save_rules
        self._profile = profile
        self._activity = activity
        self._clock = clock
        self._forget = forget

    def start(self, body: Mapping[str, Any], author: str) -> dict[str, Any]:
        """Check the draft as PUT /rules does (422) and `days` (1..30); it replaces any shadow before it."""
        text, based_on = self._draft(body)
        days = body.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
            raise MalformedInput(f"'days' must be a whole number of days from 1 to {MAX_DAYS}")
        previous = _read(self._versions)
        now = self._clock()
        doc = {
            "id": "sh-" + secrets.token_hex(6),
            "rules": text,
            "based_on": based_on,
            "days": days,
            "started_at": now.isoformat(),
            "ends_at": (now + timedelta(days=days)).isoformat(),
            "author": author,
            "status": ACTIVE,
        }
        self._versions.save(SHADOW_KEY, json.dumps(doc), author, now)
        if previous is not None:
            self._rows.forget(previous.shadow.id)
        self._forget()
        return self.status()

    def status(self) -> dict[str, Any]:
        stored = self._stored()
        now = self._clock()
        shadow = stored.shadow
        rows = self._rows.all(shadow.id)
        outcomes: dict[str, Outcome] = {}
        routed = [lead for lead, row in rows.items() if row.get("live") or row.get("shadow")]
        for lead in routed[:MAX_OUTCOME_READS]:
            p = self._profile(lead)
            if p is not None:
                outcomes[lead] = outcome_of(p)
        return {
            "id": shadow.id,
            "active": shadow.active(now),
            "based_on": shadow.based_on,
            "author": shadow.author,
            "days": shadow.days,
            "started_at": shadow.started_at.isoformat(),
            "ends_at": shadow.ends_at.isoformat(),
            "days_left": shadow.days_left(now),
            "report": comparison(shadow, rows, outcomes, now, self._templates()),
        }

    def _templates(self) -> dict[str, int] | None:
        """The active templates the worker chooses from, counted now (the report's `catalogue`)."""
        if self._catalogue is None:
            return None
        active = len(self._catalogue())
        return {"active": active, "compared": active}  # the worker compares them all, uncut

    def promote(self, author: str) -> dict[str, Any]:
        """Publish the shadow's draft as the next rules version (the activity feed records it); the shadow
        ends."""
        stored = self._stored()
        saved = self._save_rules(stored.shadow.source, author)
        now = self._clock()
        self._close(stored, PROMOTED, author, now)
        entry = ActivityEntry(
            RULES_ACTIVITY_LEAD,
            now,
            "rules_promoted",
            author,
            {"version": saved["version"], "shadow": stored.shadow.id, "based_on": stored.shadow.based_on},
        )
        self._activity.append(RULES_ACTIVITY_LEAD, [entry])
        return {"promoted": stored.shadow.id, "version": saved["version"], "rules": saved["rules"]}

    def discard(self, author: str) -> dict[str, Any]:
        stored = self._stored()
        self._close(stored, DISCARDED, author, self._clock())
        return {"discarded": stored.shadow.id}

    def _close(self, stored: _Stored, status: str, author: str, now: datetime) -> None:
        shadow = stored.shadow
        doc = {
            "id": shadow.id,
            "rules": shadow.source,
            "based_on": shadow.based_on,
            "days": shadow.days,
            "started_at": shadow.started_at.isoformat(),
            "ends_at": shadow.ends_at.isoformat(),
            "author": shadow.author,
            "status": status,
        }
        self._versions.save(SHADOW_KEY, json.dumps(doc), author, now)
        self._rows.forget(shadow.id)
        self._forget()

    def _stored(self) -> _Stored:
        stored = _read(self._versions)
        if stored is None or stored.status != ACTIVE:
            raise NotFound("no rules shadow: publish one with PUT /rules/shadow")
        return stored

    def _draft(self, body: Mapping[str, Any]) -> tuple[str, int | None]:
        draft = read_rules_draft(body, self._rules_source, takes=("days",))
        return draft.text, draft.based_on

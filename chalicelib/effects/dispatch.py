"""Performing a write's effects: one handler per effect, at least once, idempotently, until done.

The writer performs a write's outbox right after the write (the fast path: a hand-raise reaches sales in
milliseconds). The table's stream hands every write's outbox to `Dispatcher.perform` once more (the
guarantee: a crash or a failed effect after the write is made good there, and Lambda retries the stream
batch until it succeeds). A mark per write says its effects are all done, so the second pass usually costs
one read; each handler is idempotent on its own as well, for the race between the two passes:
- activity entries are keyed by their content (rewriting one changes nothing);
- a write's counters (scoreboard and learning alike) move in one transaction with one marker
  (chalicelib.adapters.dynamo_counters.Counters.add_once), unless the writer handed them to the stream's
  count consumer (`by_stream`: chalicelib.effects.stream_counts), which this dispatcher leaves alone;
- a notification is marked when sent and not sent again;
- a competitor domain learned already is found and not added again;
- an SLA workflow is named after its routing (a second start finds the first), and a release of a token
  already used is answered "nothing to release".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from chalicelib.adapters.competitor_list import StoredCompetitorList
from chalicelib.adapters.dynamo import ActivityEntry, ActivityLog, Counters, EffectLedger, Tables
from chalicelib.adapters.dynamo_counters import COUNTERS_PER_TRANSACTION
from chalicelib.adapters.dynamo_records import ContentStore
from chalicelib.adapters.dynamo_stream import writes_with_effects
from chalicelib.adapters.notify import SalesNotifier
from chalicelib.adapters.workflow import SlaWorkflow
from chalicelib.domain.accounts import AccountRecord, Member, engaged_on
from chalicelib.domain.bandit import LEARNING_PERIOD
from chalicelib.domain.competitors import MAX_LEARNED_COMPETITORS, LearnedCompetitor
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_document import prospect_from_doc
from chalicelib.domain.rules import Rules
from chalicelib.domain.summary import summarize
from chalicelib.effects.outbox import (
    CountOnScoreboard,
    LearnCompetitor,
    LearnFromOutcomes,
    NotifyOwner,
    OutboxEffect,
    RecordActivity,
    ReleaseSlaClock,
    StartSlaClock,
    UpdateAccounts,
    decode,
    writers_effects,
)
from chalicelib.errors import StorageUnavailable
from chalicelib.usecases.ports import (
    AccountDirectory,
    ActivityRecords,
    CompetitorList,
    EffectMarks,
    ScoreboardCounters,
)
from chalicelib.usecases.scoreboard import kept_in

log = logging.getLogger("leadloop.effects")

ACTIVITY_TTL_DAYS = 400
# Marks outlive the stream's 24-hour retention and the queue's redelivery, so a late retry still finds them.
MARK_DAYS = 3


@dataclass(frozen=True)
class SavedWrite:
    """One prospect write and the effects it decided, as the writer or the stream hands it over."""

    lead_id: str
    version: int
    prospect: Prospect
    effects: tuple[OutboxEffect, ...]

    @property
    def key(self) -> str:
        return f"{self.lead_id}#{self.version}"


class EffectsFailed(StorageUnavailable):
    """Some effects of a write failed; the ones done stay done, and a retry performs the rest."""

    def __init__(self, write: SavedWrite, failures: Sequence[str]) -> None:
        super().__init__(
            f"{len(failures)} effect(s) of {write.key} failed and will be retried: {'; '.join(failures)}"
        )
        self.failures = list(failures)


@dataclass
class Dispatcher:
    activity: ActivityRecords
    counters: ScoreboardCounters
    ledger: EffectMarks
    notifier: SalesNotifier
    workflow: SlaWorkflow
    rules: Callable[[], Rules]
    lead_url: Callable[[str], str]
    accounts: AccountDirectory | None = None  # needed once a group call links someone to an account
    competitors: CompetitorList | None = None  # needed once sales disqualifies a lead as a competitor

    @classmethod
    def on_tables(
        cls,
        tables: Tables,
        *,
        notifier: SalesNotifier,
        workflow: SlaWorkflow,
        rules: Callable[[], Rules],
        public_url: str = "https://leads.example.test",
    ) -> Dispatcher:
        """A dispatcher whose records live in `tables` (tests, benchmarks, scripts)."""
        return cls(
            activity=ActivityLog(tables),
            counters=Counters(tables),
            ledger=EffectLedger(tables),
            notifier=notifier,
            workflow=workflow,
            rules=rules,
            lead_url=lambda lead_id: f"{public_url}/leads/{lead_id}",
            competitors=StoredCompetitorList(ContentStore(tables)),
        )

    def perform(self, write: SavedWrite, *, just_written: bool = False) -> None:
        """Perform every effect of `write` not done yet; raises EffectsFailed if any failed (after trying
        them all: one failing effect does not hold back the others). `just_written`: the writer itself, a
        moment after its write, skips reading the write's done mark (nothing can have set it but a stream
        pass racing ahead, and every handler is idempotent anyway)."""
        mine = writers_effects(write.effects)  # the stream's counts: chalicelib.effects.stream_counts
        if len(mine) < len(write.effects):
            write = replace(write, effects=mine)
        if not write.effects:
            return
        counts_only = _counted_in_one_transaction(write)
        if counts_only is not None:
            # A write that only moves counters: its counter marker is its done mark (one item, not two).
            # Writes counted before, when a done mark followed, have the same marker, so they count once.
            try:
                if just_written or not self.counters.counted(_count_key(write)):
                    self.counters.add_once(_count_key(write), counts_only, expires_at=_mark_expiry(write))
            except Exception as error:  # noqa: BLE001 - reported as the write's failed effects, retried later
                log.error("counts of %s failed: %s: %s", write.key, type(error).__name__, error)
                raise EffectsFailed(write, [f"counts: {type(error).__name__}"]) from error
            return
        if not just_written and self.ledger.done(f"write#{write.key}"):
            return
        failures = []
        for handler in dict.fromkeys(HANDLERS.values()):
            group = [effect for effect in write.effects if HANDLERS.get(type(effect)) is handler]
            if not group:
                continue
            kinds = "+".join(dict.fromkeys(type(effect).__name__ for effect in group))
            try:
                handler(self, write, group)
            except Exception as error:  # noqa: BLE001 - each effect fails alone; all are retried later
                log.error("effect %s of %s failed: %s: %s", kinds, write.key, type(error).__name__, error)
                failures.append(f"{kinds}: {type(error).__name__}")
        if failures:
            raise EffectsFailed(write, failures)
        self.ledger.mark(f"write#{write.key}", expires_at=_mark_expiry(write))

    def _entry(self, write: SavedWrite, at: datetime, kind: str, actor: str, data: dict[str, Any]) -> None:
        entry = ActivityEntry(write.lead_id, at, kind, actor, data, ACTIVITY_TTL_DAYS)
        self.activity.append(write.lead_id, [entry])


def _mark_expiry(write: SavedWrite) -> datetime:
    newest = max(effect.at for effect in write.effects)
    return newest + timedelta(days=MARK_DAYS)


# --- one handler per effect ---


def record_activity(d: Dispatcher, write: SavedWrite, entries: Sequence[OutboxEffect]) -> None:
    items = [
        ActivityEntry(write.lead_id, e.at, e.kind, e.actor, e.data, ACTIVITY_TTL_DAYS)
        for e in entries
        if isinstance(e, RecordActivity)
    ]
    d.activity.append(write.lead_id, items)


def count(d: Dispatcher, write: SavedWrite, counts: Sequence[OutboxEffect]) -> None:
    """Every counter a write moves — the scoreboard's, in the periods its readers use (`kept_in`), and the
    nurture chooser's evidence — in one transaction with one marker: a redelivered write counts once.
    The key is the one the scoreboard's first part had before the two were merged, so a write counted
    then is not counted again by a redelivery now."""
    increments = counter_increments(counts)
    if increments:
        d.counters.add_once(_count_key(write), increments, expires_at=_mark_expiry(write))


def _count_key(write: SavedWrite) -> str:
    return f"{write.key}#0"


def _counted_in_one_transaction(write: SavedWrite) -> dict[tuple[str, str], float] | None:
    """The increments of a write whose every effect is a count and whose counters fit one transaction (a
    single marker says all of them moved); None for any other write."""
    if not all(isinstance(effect, CountOnScoreboard | LearnFromOutcomes) for effect in write.effects):
        return None
    increments = counter_increments(write.effects)
    return increments if 0 < len(increments) <= COUNTERS_PER_TRANSACTION else None


def counter_increments(counts: Sequence[OutboxEffect]) -> dict[tuple[str, str], float]:
    increments: dict[tuple[str, str], float] = {}
    for effect in counts:
        if isinstance(effect, CountOnScoreboard):
            moved = {
                (period, name): amount
                for name, amount in effect.increments.items()
                for period in kept_in(name, effect.at)
            }
        elif isinstance(effect, LearnFromOutcomes):
            moved = {(LEARNING_PERIOD, name): amount for name, amount in effect.increments.items()}
        else:
            continue
        for counter, amount in moved.items():
            increments[counter] = increments.get(counter, 0.0) + amount
    return increments


def notify_owner(d: Dispatcher, write: SavedWrite, notes: Sequence[OutboxEffect]) -> None:
    def notify(effect: NotifyOwner) -> None:
        summary = summarize(write.prospect, d.rules(), effect.at)
        deliveries = d.notifier.notify(summary, effect.why, d.lead_url(write.lead_id), effect.at)
        results = [{"channel": x.channel, "ok": x.ok, "detail": x.detail} for x in deliveries]
        d._entry(write, effect.at, "notified", "leadloop", {"why": effect.why, "deliveries": results})

    _each_once(d, write, "notify", [e for e in notes if isinstance(e, NotifyOwner)], notify)


def start_sla_clock(d: Dispatcher, write: SavedWrite, starts: Sequence[OutboxEffect]) -> None:
    for effect in starts:
        if not isinstance(effect, StartSlaClock):
            continue
        execution = d.workflow.start(
            write.lead_id, effect.run, effect.accept_seconds, effect.escalate_seconds
        )
        if execution:
            d._entry(write, effect.at, "sla_started", "leadloop", {"execution": execution})


def release_sla_clock(d: Dispatcher, write: SavedWrite, releases: Sequence[OutboxEffect]) -> None:
    def release(effect: ReleaseSlaClock) -> None:
        released = d.workflow.resolve(effect.task_token, effect.outcome)
        data = {"outcome": effect.outcome, "released": released}
        d._entry(write, effect.at, "sla_resolved", "leadloop", data)

    _each_once(d, write, "release", [e for e in releases if isinstance(e, ReleaseSlaClock)], release)


def update_accounts(d: Dispatcher, write: SavedWrite, updates: Sequence[OutboxEffect]) -> None:
    """Each write is conditional on time (traits) and on the lead's version (member row): a retry or a late
    stream pass rewrites the same values or changes nothing."""
    if d.accounts is None:
        raise RuntimeError("no account directory is wired to the effects dispatcher")
    links = {link.account_id: link for link in write.prospect.accounts}
    for effect in updates:
        if not isinstance(effect, UpdateAccounts):
            continue
        for account_id in effect.account_ids:
            link = links.get(account_id)
            if link is None:
                continue  # made room for newer accounts in this same unit of work
            account = AccountRecord(account_id, dict(link.traits), link.at)
            member = Member(write.lead_id, link.at, engaged_on(link))
            d.accounts.record(account, member, lead_version=write.version)


def learn_competitor(d: Dispatcher, write: SavedWrite, named: Sequence[OutboxEffect]) -> None:
    """Idempotent: a domain learned already is "known" and changes nothing (and writes no feed entry)."""
    if d.competitors is None:
        raise RuntimeError("no competitor list is wired to the effects dispatcher")
    for effect in named:
        if not isinstance(effect, LearnCompetitor):
            continue
        entry = LearnedCompetitor(effect.domain, effect.at, write.lead_id, effect.actor)
        outcome = d.competitors.learn(entry)
        if outcome == "learned":
            d._entry(write, effect.at, "competitor_learned", "leadloop", {"domain": effect.domain})
        elif outcome == "full":
            data = {"domain": effect.domain, "why": f"{MAX_LEARNED_COMPETITORS} domains learned already"}
            d._entry(write, effect.at, "competitor_not_learned", "leadloop", data)


E = TypeVar("E", NotifyOwner, ReleaseSlaClock)


def _each_once(
    d: Dispatcher, write: SavedWrite, kind: str, effects: list[E], perform: Callable[[E], None]
) -> None:
    """Effects whose repetition a person would notice (a second notification, a second "resolved"): each is
    marked when done and skipped when marked."""
    for n, effect in enumerate(effects):
        mark = f"{kind}#{write.key}#{n}"
        if d.ledger.done(mark):
            continue
        perform(effect)
        d.ledger.mark(mark, expires_at=_mark_expiry(write))


Handler = Callable[[Dispatcher, SavedWrite, Sequence[OutboxEffect]], None]

# In this order: the feed first (it says what happened), then the counters, then the outside world
# (accounts last: no one waits on them). Effects whose types share a handler are handed to it together.
HANDLERS: dict[type, Handler] = {
    RecordActivity: record_activity,
    CountOnScoreboard: count,
    LearnFromOutcomes: count,
    NotifyOwner: notify_owner,
    StartSlaClock: start_sla_clock,
    ReleaseSlaClock: release_sla_clock,
    UpdateAccounts: update_accounts,
    LearnCompetitor: learn_competitor,
}


# --- the stream ---


class StreamBatchFailed(StorageUnavailable):
    """Effects of some writes in a stream batch failed; Lambda retries the batch (done ones are skipped)."""


def perform_streamed(d: Dispatcher, records: Sequence[dict[str, Any]]) -> int:
    """Perform the effects of every write in a batch of stream records; returns how many writes had any.
    Every write is tried before failing the batch, so one lead's failing effect delays no one else's."""
    writes = writes_with_effects(records)
    failed = []
    for streamed in writes:
        write = SavedWrite(
            streamed.lead_id,
            streamed.version,
            prospect_from_doc(streamed.doc),
            tuple(decode(streamed.outbox)),
        )
        try:
            d.perform(write)
        except EffectsFailed as error:
            failed.append(f"{write.key}: {error.failures}")
    if failed:
        raise StreamBatchFailed(f"effects of {len(failed)} write(s) failed: {'; '.join(failed)}")
    return len(writes)

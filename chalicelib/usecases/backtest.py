"""Backtests of a rules draft (README "Rules lab"): check the request, run the replay, keep its status.

`start` checks the draft (the same field/line problems as PUT /rules, a 422), the window (ISO dates, at most
the archive's retention) and queues a job; the job reads the window's archived events, replays them with
the published rules and with the draft (chalicelib/lab/replay.py), reads what actually happened to the
leads from their current profiles and merges it all into the report (chalicelib/lab/report.py). The active
templates' metas are read once, when the job starts (`catalogue`), and travel with the job: each lead's next
template under both rule sets is chosen from that one snapshot (chalicelib/lab/choices.py).

Two ways to run a job, one store for its status (`JobStore`: chalicelib/adapters/backtest_jobs.py keeps it
under `backtests/` of the archive's store, so any API invocation reads it; `BacktestJobs` is the in-memory
one of tests and of a stage without an archive):
- in-process (the local stack, `launch` unset): a background thread replays everything and merges;
- on AWS (`launch` set): `start` writes the job's spec (both rule sets' text, the window, the catalogue's
  metas: at most choices.MAX_TEMPLATES, no template bodies) and starts the
  backtest state machine (infra/backtest_workflow.asl.json), whose Distributed Map runs `run_part` once per
  archive shard and slice of it (app.backtest_shard) and then `merge` (app.backtest_merge). Progress is the
  share of parts written.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.competitors import with_learned_competitors
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.errors import InvalidContent, LeadloopError, MalformedInput, NotFound
from chalicelib.lab.choices import catalogue_from_spec, catalogue_spec
from chalicelib.lab.layout import DEFAULT_SHARDS, ArchivedEvent
from chalicelib.lab.replay import replay_shard
from chalicelib.lab.report import Outcome, build_report, outcome_of
from chalicelib.usecases.rules_text import check_rules_text, read_rules_draft, rules_error

log = logging.getLogger("leadloop.backtest")

MAX_JOBS = 50  # finished reports kept per process by the in-memory store; the oldest are forgotten first
MERGE_SHARE = 0.9  # progress when every event is replayed; the rest is reading outcomes and merging
PART_READERS = 32  # objects a Map child fetches at once (S3 round trips, not CPU)
PROGRESS_STEP = 0.05  # the thread writes progress this often, not per lead (a store write each)


class ArchiveNotConfigured(LeadloopError):
    status, code = 503, "not_configured"


class ArchiveReader(Protocol):
    retention_days: int

    def shard_keys(self, start: date, end: date, shard: str | None = None) -> list[str]: ...
    def read(self, keys: Sequence[str], readers: int = 1) -> Iterator[ArchivedEvent]: ...
    def read_part(
        self, start: date, end: date, shard: str, index: int, slices: int, readers: int
    ) -> list[ArchivedEvent]: ...


class JobStore(Protocol):
    def put(self, job_id: str, **fields: Any) -> None: ...
    def get(self, job_id: str) -> dict[str, Any] | None: ...


class PartStore(JobStore, Protocol):
    """What the AWS path needs beside status: the spec the parts replay and their rows."""

    def put_spec(self, job_id: str, spec: dict[str, Any]) -> None: ...
    def spec(self, job_id: str) -> dict[str, Any]: ...
    def put_part(self, job_id: str, part: str, rows: list[dict[str, Any]]) -> None: ...
    def parts_done(self, job_id: str) -> int: ...
    def parts(self, job_id: str) -> Iterator[list[dict[str, Any]]]: ...


class BacktestJobs:
    """Job id -> status, progress and report, in this process (thread-safe): tests, and a stage with no
    archive (whose backtests are refused anyway)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}

    def put(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            self._jobs.setdefault(job_id, {}).update(fields)
            while len(self._jobs) > MAX_JOBS:
                self._jobs.pop(next(iter(self._jobs)))

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._jobs.get(job_id)
            return dict(found) if found is not None else None


def in_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="backtest", daemon=True).start()


class BacktestService:
    def __init__(
        self,
        *,
        archive: ArchiveReader | None,
        published: Callable[[], Rules],
        rules_source: Callable[[int], str],
        profile: Callable[[str], Prospect | None],
        jobs: JobStore,
        run: Callable[[Callable[[], None]], None] = in_thread,
        launch: Callable[[str, dict[str, Any]], None] | None = None,
        slices: int = 1,
        clock: Callable[[], datetime],
        catalogue: Callable[[], Sequence[TemplateMeta]] | None = None,
        learned: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._archive = archive
        self._learned = learned  # competitor domains sales taught the rules: both sides score with them
        self._published = published
        self._rules_source = rules_source
        self._profile = profile
        self._jobs = jobs
        self._run = run
        self._launch = launch
        self._slices = max(1, slices)
        self._clock = clock
        self._catalogue = catalogue

    def start(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Check the request and queue the job; its id to poll."""
        draft, draft_text = self._draft(body)
        learned = sorted(self._learned())
        draft = with_learned_competitors(draft, learned)
        if self._archive is None:
            raise ArchiveNotConfigured("no event archive on this stage: set LEADLOOP_ARCHIVE_BUCKET or _DIR")
        start, end = self._window(body, self._archive.retention_days)
        job_id = "bt-" + secrets.token_hex(8)
        published = self._published()
        # The templates nurture chooses from now: both sides and every shard choose from this snapshot.
        templates = catalogue_spec(self._catalogue()) if self._catalogue is not None else None
        if self._launch is not None:
            self._start_distributed(job_id, published, draft_text, start, end, templates, learned)
        else:
            self._jobs.put(job_id, id=job_id, status="queued", progress=0.0, report=None)
            self._run(lambda: self._replay(job_id, published, draft, start, end, templates))
        return {"id": job_id}

    def status(self, job_id: str) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no backtest {job_id!r}")
        parts = job.pop("parts", None)
        if job["status"] in ("queued", "running") and parts and self._is_part_store():
            done = self._parts().parts_done(job_id)
            job["progress"] = round(MERGE_SHARE * min(1.0, done / parts), 3)
            job["status"] = "running" if done else job["status"]
        return job

    # --- the AWS path: a Distributed Map of parts, then a merge ---

    def _is_part_store(self) -> bool:
        return hasattr(self._jobs, "put_part")

    def _parts(self) -> PartStore:
        assert self._is_part_store(), "the distributed path needs the stored jobs (adapters/backtest_jobs)"
        return self._jobs  # type: ignore[return-value]

    def _start_distributed(
        self,
        job_id: str,
        published: Rules,
        draft_text: str,
        start: date,
        end: date,
        templates: dict[str, Any] | None,
        learned: list[str],
    ) -> None:
        assert self._launch is not None
        items = [
            {"job": job_id, "shard": f"{shard:02x}", "slice": index}
            for shard in range(DEFAULT_SHARDS)
            for index in range(self._slices)
        ]
        self._parts().put_spec(
            job_id,
            {
                "published": self._rules_source(published.version),
                "published_version": published.version,
                "draft": draft_text,
                "from": start.isoformat(),
                "to": end.isoformat(),
                "slices": self._slices,
                "catalogue": templates,
                "learned_competitors": learned,
            },
        )
        self._jobs.put(job_id, id=job_id, status="queued", progress=0.0, report=None, parts=len(items))
        self._launch(job_id, {"job": job_id, "parts": items})

    def run_part(self, job_id: str, shard: str, index: int) -> dict[str, Any]:
        """One Map child: the whole histories of one shard's slice of leads, replayed with both rule sets,
        written as one part; a small summary back to the state machine."""
        if self._archive is None:
            raise ArchiveNotConfigured("no event archive on this stage")
        store = self._parts()
        spec = store.spec(job_id)
        learned = spec.get("learned_competitors") or ()  # absent from a job started before learning existed
        published = with_learned_competitors(_parsed(spec["published"]), learned)
        draft = with_learned_competitors(_parsed(spec["draft"]), learned)
        start, end = date.fromisoformat(spec["from"]), date.fromisoformat(spec["to"])
        slices = int(spec["slices"])
        # The slice's leads and the leads merged into them, from whichever shard holds them.
        items = self._archive.read_part(start, end, shard, index, slices, PART_READERS)
        templates = spec.get("catalogue")  # absent from a job started before template choices existed
        catalogue = catalogue_from_spec(templates) if templates is not None else None
        rows = replay_shard(items, published, draft, catalogue=catalogue)
        store.put_part(job_id, f"{shard}-{index}", rows)
        return {"job": job_id, "shard": shard, "slice": index, "leads": len(rows),
                "events": sum(row["events"] for row in rows)}  # fmt: skip

    def merge(self, job_id: str, error: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The final step: every part's rows judged and merged into the job's report (or the failure)."""
        if error is not None:
            cause = str(error.get("Cause") or error.get("Error") or "the backtest workflow failed")
            self._jobs.put(job_id, status="failed", error=cause[:500])
            return {"job": job_id, "status": "failed"}
        store = self._parts()
        spec = store.spec(job_id)
        rows = [row for part in store.parts(job_id) for row in part]
        rows.sort(key=lambda row: row["lead"])
        window = {"from": spec["from"], "to": spec["to"]}
        self._finish(job_id, rows, window, int(spec["published_version"]), spec.get("catalogue"))
        return {"job": job_id, "status": "done", "leads": len(rows)}

    def _finish(
        self,
        job_id: str,
        rows: Sequence[dict[str, Any]],
        window: dict[str, Any],
        version: int,
        templates: Mapping[str, Any] | None,
    ) -> None:
        outcomes: dict[str, Outcome] = {}
        for row in rows:
            p = self._profile(row["lead"])
            if p is not None:
                outcomes[row["lead"]] = outcome_of(p)
        chosen_from = (
            {"active": templates["active"], "compared": len(templates["templates"])}
            if templates is not None
            else None
        )
        report = build_report(rows, outcomes, window=window, catalogue=chosen_from)
        report["rules"] = {"published_version": version}
        self._jobs.put(job_id, status="done", progress=1.0, report=report)

    def _draft(self, body: Mapping[str, Any]) -> tuple[Rules, str]:
        draft = read_rules_draft(body, self._rules_source, takes=("from", "to"))
        return draft.rules, draft.text

    def _window(self, body: Mapping[str, Any], retention_days: int) -> tuple[date, date]:
        days: list[date] = []
        for name in ("from", "to"):
            value = body.get(name)
            if not value:
                raise MalformedInput(f"'{name}' is required: an ISO date (YYYY-MM-DD)")
            try:
                days.append(date.fromisoformat(str(value)[:10]))
            except ValueError:
                raise MalformedInput(f"'{name}' must be an ISO date (YYYY-MM-DD), got {value!r}") from None
        start, end = days
        if start > end:
            raise InvalidContent("'from' must not be after 'to'")
        if (end - start).days > retention_days:
            raise InvalidContent(
                f"the window is longer than the archive keeps events ({retention_days} days)"
            )
        return start, end

    def _replay(
        self,
        job_id: str,
        published: Rules,
        draft: Rules,
        start: date,
        end: date,
        templates: dict[str, Any] | None,
    ) -> None:
        assert self._archive is not None
        try:
            self._jobs.put(job_id, status="running", started_at=self._clock().isoformat())
            keys = self._archive.shard_keys(start, end)
            items = [
                item
                for item in self._archive.read(keys)
                if start <= item.event.at.date() <= end  # an object's day is its events' day
            ]
            total, done, told = max(1, len(items)), 0, 0.0

            def advance(events: int) -> None:
                nonlocal done, told
                done += events
                progress = round(MERGE_SHARE * min(1.0, done / total), 3)
                if progress - told >= PROGRESS_STEP:
                    told = progress
                    self._jobs.put(job_id, progress=progress)

            catalogue = catalogue_from_spec(templates) if templates is not None else None
            rows = replay_shard(items, published, draft, advance, catalogue)
            window = {"from": start.isoformat(), "to": end.isoformat(), "objects": len(keys)}
            self._finish(job_id, rows, window, published.version, templates)
        except Exception as error:  # noqa: BLE001 - the outermost edge of a background job: reported, logged
            log.exception("backtest %s failed", job_id)
            self._jobs.put(job_id, status="failed", error=f"{type(error).__name__}: {error}")


def _parsed(text: str) -> Rules:
    parsed, problems = check_rules_text(text)
    if parsed is None:  # checked when the job started; only a change to the checks could fail it here
        raise rules_error(problems)
    return parsed

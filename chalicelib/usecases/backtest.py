"""Backtests of a rules draft (README "Rules lab"): check the request, run the replay, keep its status.

`start` checks the draft (the same field/line problems as PUT /rules, a 422), the window (ISO dates, at most
the archive's retention) and queues a job; the job reads the window's archived events, replays them with
the published rules and with the draft (chalicelib/lab/replay.py), reads what actually happened to the
leads from their current profiles and merges it all into the report (chalicelib/lab/report.py).
Jobs run where `run` puts them: a background thread in the process that was asked (the local stack); their
status is kept in `BacktestJobs`, in that process's memory. A deployed stage needs a shared job store and
the Step Functions replay over the shards (not built yet: README says so).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import Rules
from chalicelib.errors import InvalidContent, LeadloopError, MalformedInput, NotFound
from chalicelib.lab.layout import ArchivedEvent
from chalicelib.lab.replay import replay_shard
from chalicelib.lab.report import Outcome, build_report, outcome_of
from chalicelib.usecases.rules_text import check_rules_text, rules_error

log = logging.getLogger("leadloop.backtest")

MAX_JOBS = 50  # finished reports kept per process; the oldest are forgotten first


class ArchiveNotConfigured(LeadloopError):
    status, code = 503, "not_configured"


class ArchiveReader(Protocol):
    retention_days: int

    def shard_keys(self, start: date, end: date, shard: str | None = None) -> list[str]: ...
    def read(self, keys: Sequence[str]) -> Iterator[ArchivedEvent]: ...


class BacktestJobs:
    """Job id -> status, progress and report, in this process (thread-safe)."""

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
        jobs: BacktestJobs,
        run: Callable[[Callable[[], None]], None] = in_thread,
        clock: Callable[[], datetime],
    ) -> None:
        self._archive = archive
        self._published = published
        self._rules_source = rules_source
        self._profile = profile
        self._jobs = jobs
        self._run = run
        self._clock = clock

    def start(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Check the request and queue the job; its id to poll."""
        draft = self._draft(body)
        if self._archive is None:
            raise ArchiveNotConfigured("no event archive on this stage: set LEADLOOP_ARCHIVE_BUCKET or _DIR")
        start, end = self._window(body, self._archive.retention_days)
        job_id = "bt-" + secrets.token_hex(8)
        self._jobs.put(job_id, id=job_id, status="queued", progress=0.0, report=None)
        published = self._published()
        self._run(lambda: self._replay(job_id, published, draft, start, end))
        return {"id": job_id}

    def status(self, job_id: str) -> dict[str, Any]:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no backtest {job_id!r} (reports are kept in the process that ran them)")
        return job

    def _draft(self, body: Mapping[str, Any]) -> Rules:
        text, version = body.get("rules"), body.get("version")
        if (text is None) == (version is None):
            raise MalformedInput("send the draft as 'rules' (the rules text) or 'version' (a saved version)")
        if version is not None:
            if not isinstance(version, int) or isinstance(version, bool) or version < 0:
                raise MalformedInput("'version' must be a rules version number")
            text = self._rules_source(version)
        if not isinstance(text, str) or not text.strip():
            raise MalformedInput("'rules' must be the rules text (YAML or JSON)")
        parsed, problems = check_rules_text(text)  # JSON is YAML: the same problems as PUT /rules
        if parsed is None:
            raise rules_error(problems)
        return parsed

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

    def _replay(self, job_id: str, published: Rules, draft: Rules, start: date, end: date) -> None:
        assert self._archive is not None
        try:
            self._jobs.put(job_id, status="running", started_at=self._clock().isoformat())
            keys = self._archive.shard_keys(start, end)
            items = [
                item
                for item in self._archive.read(keys)
                if start <= item.event.at.date() <= end  # an object's day is its events' day
            ]
            total, done = max(1, len(items)), 0

            def advance(events: int) -> None:
                nonlocal done
                done += events
                self._jobs.put(job_id, progress=round(0.9 * min(1.0, done / total), 3))

            rows = replay_shard(items, published, draft, advance)
            outcomes: dict[str, Outcome] = {}
            for row in rows:
                p = self._profile(row["lead"])
                if p is not None:
                    outcomes[row["lead"]] = outcome_of(p)
            window = {"from": start.isoformat(), "to": end.isoformat(), "objects": len(keys)}
            report = build_report(rows, outcomes, window=window)
            report["rules"] = {"published_version": published.version}
            self._jobs.put(job_id, status="done", progress=1.0, report=report)
        except Exception as error:  # noqa: BLE001 - the outermost edge of a background job: reported, logged
            log.exception("backtest %s failed", job_id)
            self._jobs.put(job_id, status="failed", error=f"{type(error).__name__}: {error}")

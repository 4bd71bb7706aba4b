"""Backtest jobs that survive the process, and the AWS path's shard and merge functions on moto's S3.

A job started by one API invocation is read by another (a fresh service over the same store); the
Distributed Map's children (`run_part`, one per shard and slice) and the final merge (`merge`), run here on
the same archived events in moto's S3, give the very report the in-process replay gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.archive import EventArchive, FolderBlobs, S3Blobs
from chalicelib.adapters.backtest_jobs import StoredJobs
from chalicelib.domain.rules import Rules
from chalicelib.errors import NotFound
from chalicelib.usecases.backtest import BacktestService
from chalicelib.wiring import DEFAULT_RULES, load_default_rules
from tests.unit.test_backtest import DAY, DRAFT_TEXT, HISTORY, PROFILES

BUCKET = "leadloop-test-archive"
WINDOW = {"from": "2026-11-01", "to": "2026-11-30"}


def _published() -> Rules:
    return load_default_rules()


def _service(archive: EventArchive, jobs: Any, **options: Any) -> BacktestService:
    return BacktestService(
        archive=archive,
        published=_published,
        rules_source=lambda version: {0: DEFAULT_RULES.read_text()}[version],
        profile=PROFILES.get,
        jobs=jobs,
        run=lambda work: work(),
        clock=lambda: DAY + timedelta(days=30),
        **options,
    )


@pytest.fixture
def s3_archive() -> Iterator[S3Blobs]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        blobs = S3Blobs(client, BUCKET)
        EventArchive(blobs, retention_days=4000).write(HISTORY)
        yield blobs


def test_a_finished_job_is_read_by_another_invocation(tmp_path: Path) -> None:
    blobs = FolderBlobs(tmp_path)
    EventArchive(blobs, retention_days=4000).write(HISTORY)
    job_id = _service(EventArchive(blobs, retention_days=4000), StoredJobs(blobs)).start(
        {"rules": DRAFT_TEXT, **WINDOW}
    )["id"]
    # Another process: nothing shared but the store.
    other = _service(
        EventArchive(FolderBlobs(tmp_path), retention_days=4000), StoredJobs(FolderBlobs(tmp_path))
    )
    job = other.status(job_id)
    assert (job["status"], job["progress"]) == ("done", 1.0)
    assert job["report"]["gained"]["count"] == 1 and job["report"]["lost"]["count"] == 1


def test_an_unknown_or_forged_job_id_is_a_404(tmp_path: Path) -> None:
    service = _service(
        EventArchive(FolderBlobs(tmp_path), retention_days=4000), StoredJobs(FolderBlobs(tmp_path))
    )
    for job_id in ("bt-0123456789abcdef", "../../etc/passwd", "bt-../x"):
        with pytest.raises(NotFound):
            service.status(job_id)


@pytest.mark.parametrize("slices", [1, 3])
def test_shard_functions_and_the_merge_give_the_in_process_report(s3_archive: S3Blobs, slices: int) -> None:
    archive = EventArchive(s3_archive, retention_days=4000)
    in_process = _service(archive, StoredJobs(s3_archive))
    expected = in_process.status(in_process.start({"rules": DRAFT_TEXT, **WINDOW})["id"])["report"]

    started: list[dict[str, Any]] = []
    api = _service(
        archive, StoredJobs(s3_archive), launch=lambda job, given: started.append(given), slices=slices
    )
    job_id = api.start({"rules": DRAFT_TEXT, **WINDOW})["id"]
    (execution,) = started
    assert len(execution["parts"]) == 16 * slices
    assert api.status(job_id) == {"id": job_id, "status": "queued", "progress": 0.0, "report": None}

    # Each Map child and the merge run in their own Lambda invocation: a fresh service each time.
    for number, item in enumerate(execution["parts"], start=1):
        summary = _service(archive, StoredJobs(s3_archive)).run_part(
            item["job"], item["shard"], item["slice"]
        )
        assert summary["shard"] == item["shard"]
        if number == 8 * slices:
            halfway = api.status(job_id)
            assert (halfway["status"], halfway["progress"]) == ("running", 0.45)
    _service(archive, StoredJobs(s3_archive)).merge(job_id)

    job = api.status(job_id)
    assert (job["status"], job["progress"]) == ("done", 1.0)
    expected["window"].pop("objects")
    assert job["report"] == expected


def test_a_failed_workflow_says_why(s3_archive: S3Blobs) -> None:
    archive = EventArchive(s3_archive, retention_days=4000)
    api = _service(archive, StoredJobs(s3_archive), launch=lambda job, given: None)
    job_id = api.start({"rules": DRAFT_TEXT, **WINDOW})["id"]
    api.merge(job_id, {"Error": "Lambda.Unknown", "Cause": "the shard function ran out of memory"})
    job = api.status(job_id)
    assert job["status"] == "failed"
    assert "out of memory" in job["error"]

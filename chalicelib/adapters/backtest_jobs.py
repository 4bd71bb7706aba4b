"""Backtest jobs that outlive the process that started them, and the Step Functions launcher of the AWS path.

A job is objects under `backtests/` of the event archive's store (the S3 bucket on AWS, the folder on the
local stack), so `GET /rules/backtest/{id}` answers from any API invocation:

- `backtests/<id>/job.json.gz`: status, progress, error and report (bounded: the report's lists of leads are
  its top 50, the rest are counts), what the API answers;
- `backtests/<id>/spec.json.gz`: what the shard functions replay (both rule sets' text, the window), never
  answered to a client;
- `backtests/<id>/parts/<shard>-<slice>.json.gz`: one Map child's rows, read by the merge function; how many
  exist is the job's progress while the Distributed Map runs.

The bucket's lifecycle rule expires them with the archive's events (infra/resources.yaml).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.archive import Blobs
from chalicelib.errors import StorageUnavailable

PREFIX = "backtests/"
JOB_ID = re.compile(r"^bt-[0-9a-f]{16}$")  # what BacktestService mints; anything else is no job (no ../)


def _pack(value: Any) -> bytes:
    return gzip.compress(json.dumps(value, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def _unpack(body: bytes) -> Any:
    return json.loads(gzip.decompress(body))


class StoredJobs:
    """Job id -> status, progress and report, as objects in the archive's store."""

    def __init__(self, blobs: Blobs) -> None:
        self._blobs = blobs

    def put(self, job_id: str, **fields: Any) -> None:
        # One writer per job at a time (the thread, or the merge function), so read-then-write is safe.
        job = self.get(job_id) or {}
        job.update(fields)
        self._blobs.put(f"{PREFIX}{job_id}/job.json.gz", _pack(job))

    def get(self, job_id: str) -> dict[str, Any] | None:
        if not JOB_ID.match(job_id):
            return None
        body = self._blobs.find(f"{PREFIX}{job_id}/job.json.gz")
        return dict(_unpack(body)) if body is not None else None

    def put_spec(self, job_id: str, spec: dict[str, Any]) -> None:
        self._blobs.put(f"{PREFIX}{job_id}/spec.json.gz", _pack(spec))

    def spec(self, job_id: str) -> dict[str, Any]:
        return dict(_unpack(self._blobs.get(f"{PREFIX}{job_id}/spec.json.gz")))

    def put_part(self, job_id: str, part: str, rows: list[dict[str, Any]]) -> None:
        self._blobs.put(f"{PREFIX}{job_id}/parts/{part}.json.gz", _pack(rows))

    def parts_done(self, job_id: str) -> int:
        return len(self._blobs.keys(f"{PREFIX}{job_id}/parts/"))

    def parts(self, job_id: str) -> Iterator[list[dict[str, Any]]]:
        for key in self._blobs.keys(f"{PREFIX}{job_id}/parts/"):
            yield list(_unpack(self._blobs.get(key)))


class StepFunctionsLauncher:
    """Starts the backtest state machine (infra/backtest_workflow.asl.json) for one job; the execution is
    named after the job, so a retried start of the same job is refused by Step Functions, not run twice."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def __call__(self, job_id: str, execution_input: dict[str, Any]) -> None:
        try:
            self._client.start_execution(
                stateMachineArn=self._arn, name=job_id, input=json.dumps(execution_input)
            )
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable(f"could not start the backtest workflow: {error}") from error

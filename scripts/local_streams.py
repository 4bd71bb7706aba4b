"""The effects dispatcher's event source on the local stack: the prospects table's DynamoDB stream, read as
Lambda's DynamoDB Streams event source mapping reads it, handed to `app.dispatch_effects`.

Each prospect write carries the effects it decided (its outbox); on AWS a Lambda consumes the table's stream
and performs them. Here `StreamPoller` does that against DynamoDB Local: find the stream
(describe_table → LatestStreamArn), list its shards (a child only after its parent is read to the end), read
each from a checkpoint kept under .local/data (TRIM_HORIZON the first time), and invoke the handler with the
Lambda event shape. A batch whose handler raises is retried, same records, with backoff, and the checkpoint
does not move; after `max_attempts` the batch is set aside in `effects-dead-letter.jsonl` with the error and
the poller moves on, as Lambda does with bisect-off, a retry limit and an on-failure destination.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from local_runner import REGION, LambdaContext

CHECKPOINT_FILE = "effects-stream-checkpoint.json"
DEAD_LETTER_FILE = "effects-dead-letter.jsonl"
POLL_INTERVAL_S = 0.15  # hand-raise to notification: p99 ≤ 1 s on the local stack (DESIGN.md)
MAX_ATTEMPTS = 10
BATCH_SIZE = 100  # Lambda's default batch size for a DynamoDB stream
FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 2.0
SHARDS_REFRESH_S = 2.0
STREAM_RECHECK_S = 5.0

log = logging.getLogger("local_stack")

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class Checkpoint:
    """Where each shard was read up to, kept on disk so a restart resumes instead of starting over."""

    path: Path
    stream_arn: str | None = None
    positions: dict[str, str] = field(default_factory=dict)  # shard id -> last sequence number delivered
    finished: set[str] = field(default_factory=set)  # closed shards read to the end

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except ValueError:
            log.warning("effects stream: unreadable checkpoint %s; reading the stream from its start", path)
            return cls(path)
        return cls(
            path, saved.get("stream_arn"), dict(saved.get("positions", {})), set(saved.get("finished", []))
        )

    def follow(self, stream_arn: str) -> None:
        """A different stream (the table was recreated): its shards start from their beginning."""
        if stream_arn != self.stream_arn:
            self.stream_arn, self.positions, self.finished = stream_arn, {}, set()
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        state = {
            "stream_arn": self.stream_arn,
            "positions": self.positions,
            "finished": sorted(self.finished),
        }
        with temporary.open("w") as out:
            json.dump(state, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it: eventSourceARN added, the creation time in epoch seconds,
    binary attribute values base64 text (as in the JSON Lambda receives)."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": _as_json(change),
        "eventSourceARN": stream_arn,
    }


def _as_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_as_json(item) for item in value]
    return value


class StreamPoller:
    """Reads one table's stream and hands each batch of records to `handler`, at least once, in order per
    shard."""

    def __init__(
        self,
        dynamodb: Any,
        streams: Any,
        table_name: str,
        handler: Handler,
        data_dir: Path,
        *,
        interval_s: float = POLL_INTERVAL_S,
        max_attempts: int = MAX_ATTEMPTS,
        first_backoff_s: float = FIRST_BACKOFF_S,
        name: str = "dispatch_effects",
        checkpoint_file: str = CHECKPOINT_FILE,
        dead_letter_file: str = DEAD_LETTER_FILE,
    ) -> None:
        self._dynamodb = dynamodb
        self._streams = streams
        self._table = table_name
        self._handler = handler
        self._interval_s = interval_s
        self._max_attempts = max_attempts
        self._first_backoff_s = first_backoff_s
        self._name = name  # the handler's function name, in logs and its context
        self.checkpoint = Checkpoint.load(data_dir / checkpoint_file)
        self.dead_letter_path = data_dir / dead_letter_file
        self._stream_arn: str | None = None
        self._stream_checked = -1e9
        self._shards: list[dict[str, Any]] = []
        self._shards_at = -1e9
        self._iterators: dict[str, str] = {}
        # While draining at stop: when a failing batch stops being retried (left unacknowledged, so the
        # next start hands it over again), or a reader that retries until it succeeds would never stop.
        self._drain_deadline: float | None = None

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                if not self.poll_once(stopping):
                    stopping.wait(self._interval_s)
            except Exception:  # the outermost edge: the next poll tries again from the checkpoint
                if stopping.is_set():
                    return
                log.exception("effects stream: polling %s failed; retrying", self._table)
                self._iterators.clear()
                stopping.wait(1.0)

    def drain(self, timeout_s: float, hurry: threading.Event) -> None:
        """Deliver what the stream holds now (the last queued events' effects) before the stack stops."""
        deadline = time.monotonic() + timeout_s
        self._shards_at = -1e9
        self._drain_deadline = deadline
        try:
            while not hurry.is_set() and time.monotonic() < deadline and self.poll_once(hurry):
                pass
        finally:
            self._drain_deadline = None

    def poll_once(self, stopping: threading.Event) -> int:
        """One pass over the readable shards; the number of records delivered (or set aside)."""
        stream_arn = self._stream()
        if stream_arn is None:
            return 0
        delivered = 0
        for shard in self._readable_shards(stream_arn):
            delivered += self._read(stream_arn, shard["ShardId"], stopping)
            if stopping.is_set():
                break
        return delivered

    def _stream(self) -> str | None:
        if self._stream_arn is None and time.monotonic() - self._stream_checked > STREAM_RECHECK_S:
            self._stream_checked = time.monotonic()
            table = self._dynamodb.describe_table(TableName=self._table)["Table"]
            self._stream_arn = table.get("LatestStreamArn")
            if self._stream_arn is None:
                log.warning("effects stream: %s has no stream yet; looking again later", self._table)
            else:
                self.checkpoint.follow(self._stream_arn)
        return self._stream_arn

    def _readable_shards(self, stream_arn: str) -> list[dict[str, Any]]:
        if time.monotonic() - self._shards_at > SHARDS_REFRESH_S:
            self._shards, self._shards_at = self._describe_shards(stream_arn), time.monotonic()
        known = {shard["ShardId"] for shard in self._shards}
        finished = self.checkpoint.finished
        return [
            shard
            for shard in self._shards
            if shard["ShardId"] not in finished
            # A child's records follow its parent's: read it only once the parent is read to the end.
            and (shard.get("ParentShardId") in (None, *finished) or shard["ParentShardId"] not in known)
        ]

    def _describe_shards(self, stream_arn: str) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        start: dict[str, str] = {}
        while True:
            description = self._streams.describe_stream(StreamArn=stream_arn, **start)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            start = {"ExclusiveStartShardId": last}

    def _read(self, stream_arn: str, shard_id: str, stopping: threading.Event) -> int:
        iterator = self._iterators.pop(shard_id, None) or self._new_iterator(stream_arn, shard_id)
        try:
            answer = self._streams.get_records(ShardIterator=iterator, Limit=BATCH_SIZE)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "TrimmedDataAccessException":  # the checkpoint is older than the stream keeps
                log.warning("effects stream: shard %s trimmed past the checkpoint; reading on", shard_id)
                self.checkpoint.positions.pop(shard_id, None)
                return 0
            if code == "ExpiredIteratorException":
                return 0  # a new iterator from the checkpoint next time
            if code == "ResourceNotFoundException":  # the stream went away (table recreated)
                self._stream_arn, self._shards_at = None, -1e9
                return 0
            raise
        records = answer.get("Records", [])
        if records:
            if not self._deliver(stream_arn, shard_id, records, stopping):
                return 0  # stopping mid-retry: the checkpoint did not move, a restart delivers them again
            self.checkpoint.positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
        following = answer.get("NextShardIterator")
        if following:
            self._iterators[shard_id] = following
        else:  # a closed shard read to the end: its children may be read now
            self.checkpoint.finished.add(shard_id)
            self.checkpoint.positions.pop(shard_id, None)
            self._shards_at = -1e9
        if records or not following:
            self.checkpoint.save()
        return len(records)

    def _new_iterator(self, stream_arn: str, shard_id: str) -> str:
        after = self.checkpoint.positions.get(shard_id)
        where = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after} if after else {}
        answer = self._streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard_id, **(where or {"ShardIteratorType": "TRIM_HORIZON"})
        )
        return str(answer["ShardIterator"])

    def _deliver(
        self, stream_arn: str, shard_id: str, records: list[dict[str, Any]], stopping: threading.Event
    ) -> bool:
        """True once the handler took the batch or it was set aside; False if stopping (or a drain's time) cut
        the retries."""
        # A tumbling window's event names its shard (app.count_effects needs it; the dispatcher ignores it).
        event = {"Records": [lambda_record(record, stream_arn) for record in records], "shardId": shard_id}
        error: Exception | None = None
        for attempt in range(self._max_attempts):
            try:
                self._handler(event, LambdaContext(function_name=f"leadloop-local-{self._name}"))
                return True
            except Exception as failure:  # Lambda retries the same batch when the handler raises
                error = failure
                log.warning(
                    "%s failed on %d record(s) (attempt %d of %d): %r",
                    self._name,
                    len(records),
                    attempt + 1,
                    self._max_attempts,
                    failure,
                )
            pause = min(MAX_BACKOFF_S, self._first_backoff_s * 2 ** min(attempt, 30))
            if attempt + 1 < self._max_attempts and (stopping.wait(pause) or self._drained()):
                return False
        self._set_aside(stream_arn, shard_id, event["Records"], error)
        return True

    def _drained(self) -> bool:
        return self._drain_deadline is not None and time.monotonic() >= self._drain_deadline

    def _set_aside(
        self, stream_arn: str, shard_id: str, records: list[dict[str, Any]], error: Exception | None
    ) -> None:
        log.error(
            "dispatch_effects failed %d times on %d record(s); set aside in %s",
            self._max_attempts,
            len(records),
            self.dead_letter_path,
        )
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "stream_arn": stream_arn,
            "shard_id": shard_id,
            "error": repr(error),
            "records": records,
        }
        self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        with self.dead_letter_path.open("a") as out:
            out.write(json.dumps(entry, default=str) + "\n")
            out.flush()
            os.fsync(out.fileno())

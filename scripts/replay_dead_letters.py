"""Replay what was set aside, once its cause is fixed: `make replay ARGS="events"` or `ARGS="effects ..."`.

- `events`: the events dead-letter queue holds messages no retry could apply (an unreadable body, or one
  prospect's events parked with the reason: "lead L… cannot be applied: …"). Each is sent back to the events
  queue and removed from the dead-letter queue. Applying is idempotent, so replaying a message whose events
  were partly applied before is harmless.
- `effects --queue-url URL` (a deployed stage): Lambda's on-failure destination of the effects dispatcher
  holds, for each stream batch that kept failing, where it lies in the prospects table's stream. The records
  are read back from the stream (it keeps them 24 hours) and dispatched again; effects already done are
  skipped by their marks.
- `effects --file PATH` (the local stack): the runner writes stream batches it gave up on to a JSON-lines
  file (default .local/data/effects-dead-letter.jsonl); each is dispatched again and the file keeps only the
  batches that still fail.

Nothing here prints message bodies: they hold people's data. `--dry-run` counts without moving anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from chalicelib import wiring  # noqa: E402
from chalicelib.effects.dispatch import perform_streamed  # noqa: E402
from chalicelib.errors import StorageUnavailable  # noqa: E402

LOCAL_EFFECTS_FILE = REPO_ROOT / ".local" / "data" / "effects-dead-letter.jsonl"


def replay_events(limit: int, dry_run: bool) -> dict[str, Any]:
    settings = wiring.settings()
    if not settings.dead_letter_queue_url or not settings.queue_url:
        raise SystemExit("LEADLOOP_DLQ_URL and LEADLOOP_QUEUE_URL must name the queues")
    sqs = wiring.aws("sqs")
    reasons: Counter[str] = Counter()
    moved = 0
    while moved < limit:
        answer = sqs.receive_message(
            QueueUrl=settings.dead_letter_queue_url,
            MaxNumberOfMessages=min(10, limit - moved),
            MessageAttributeNames=["reason"],
            VisibilityTimeout=60,
            WaitTimeSeconds=1,
        )
        messages = answer.get("Messages", [])
        if not messages:
            break
        for message in messages:
            reason = ((message.get("MessageAttributes") or {}).get("reason") or {}).get("StringValue", "")
            reasons[reason.split(":", 1)[-1].strip()[:80] or "redriven by SQS"] += 1
            if not dry_run:
                wiring.event_queue().send_bodies([message["Body"]])
                sqs.delete_message(
                    QueueUrl=settings.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            moved += 1
        if dry_run:
            break  # received messages come back after their visibility timeout; count one page only
    return {"replayed": 0 if dry_run else moved, "seen": moved, "reasons": dict(reasons)}


def replay_effects_file(path: Path, dry_run: bool) -> dict[str, Any]:
    if not path.exists():
        return {"replayed": 0, "still_failing": 0}
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if dry_run:
        return {"batches": len(lines)}
    remaining, replayed = [], 0
    for line in lines:
        entry = json.loads(line)
        try:
            perform_streamed(wiring.dispatcher(), _records_of(entry))
            replayed += 1
        except StorageUnavailable:
            remaining.append(line)
    path.write_text("".join(f"{line}\n" for line in remaining))
    return {"replayed": replayed, "still_failing": len(remaining)}


def _records_of(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The local runner's file holds the stream records as read (binary values base64-encoded)."""
    records = entry.get("records")
    if not isinstance(records, list):
        raise SystemExit("an effects dead-letter line has no 'records' list")
    return records


def replay_effects_queue(queue_url: str, dry_run: bool) -> dict[str, Any]:
    sqs = wiring.aws("sqs")
    streams = wiring.aws("dynamodbstreams")
    replayed = failed = 0
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = answer.get("Messages", [])
        if not messages or dry_run:
            return {"replayed": replayed, "still_failing": failed, "seen": len(messages)}
        for message in messages:
            info = json.loads(message["Body"])["DDBStreamBatchInfo"]
            records = _stream_range(streams, info)
            try:
                perform_streamed(wiring.dispatcher(), records)
            except StorageUnavailable:
                failed += 1
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            replayed += 1


def _stream_range(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    iterator = streams.get_shard_iterator(
        StreamArn=info["streamArn"],
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    end = int(info["endSequenceNumber"])
    records: list[dict[str, Any]] = []
    while iterator:
        answer = streams.get_records(ShardIterator=iterator, Limit=100)
        batch = answer.get("Records", [])
        records.extend(r for r in batch if int(r["dynamodb"]["SequenceNumber"]) <= end)
        if not batch or int(batch[-1]["dynamodb"]["SequenceNumber"]) >= end:
            return records
        iterator = answer.get("NextShardIterator")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("events", "effects"))
    parser.add_argument("--limit", type=int, default=10_000, help="events: at most this many messages")
    parser.add_argument("--queue-url", help="effects: the dispatcher's on-failure queue (a deployed stage)")
    parser.add_argument(
        "--file", type=Path, default=LOCAL_EFFECTS_FILE, help="effects: the local stack's file"
    )
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "events":
        result = replay_events(args.limit, args.dry_run)
    elif args.queue_url:
        result = replay_effects_queue(args.queue_url, args.dry_run)
    else:
        result = replay_effects_file(args.file, args.dry_run)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

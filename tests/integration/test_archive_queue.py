"""The event archive on AWS goes through a queue (chalicelib/adapters/archive_queue.py): the worker sends what
it applied as one message, the archiver writes the objects of many messages at once. On moto's SQS and S3:
the objects the archiver writes hold exactly the events a direct write would, keyed the same; a message too
big for SQS is split; an unreadable message fails alone; a queue that refuses the send fails the write."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters import archive_queue
from chalicelib.adapters.archive import EventArchive, S3Blobs
from chalicelib.adapters.archive_queue import QueuedArchive, pack_archived, unpack_archived
from chalicelib.domain.events import Event, EventKind
from chalicelib.entrypoints.worker import write_archive_batch
from chalicelib.errors import StorageUnavailable
from chalicelib.lab.layout import ArchivedEvent, decode_object

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _events(count: int, day_shift: int = 0) -> list[ArchivedEvent]:
    return [
        ArchivedEvent(
            f"L{n % 40:03d}",
            Event(
                f"seg:e{n}",
                EventKind.PAGE,
                AT + timedelta(days=n % 3 + day_shift, minutes=n),
                "segment",
                anonymous_id=f"anon-{n % 40}",
                properties={"path": f"/docs/{n}"},
            ),  # fmt: skip
        )
        for n in range(count)
    ]


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        sqs, s3 = boto3.client("sqs", region_name="us-east-1"), boto3.client("s3", region_name="us-east-1")
        for bucket in ("queued", "direct"):
            s3.create_bucket(Bucket=bucket)
        url = sqs.create_queue(QueueName="archive")["QueueUrl"]
        yield {"sqs": sqs, "s3": s3, "url": url}


def _received(sqs: Any, url: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        records += [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return records


def _objects(s3: Any, bucket: str) -> dict[str, list[tuple[str, str]]]:
    found = {}
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        _, events = decode_object(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        found[item["Key"]] = [(e.lead_id, e.event.message_id) for e in events]
    return found


def test_three_worker_batches_queued_then_archived_together_equal_one_direct_write(
    aws: dict[str, Any],
) -> None:
    batches = [_events(30), _events(25, day_shift=1), _events(5)]
    queued = QueuedArchive(aws["sqs"], aws["url"])
    assert [queued.write(batch) for batch in batches] == [1, 1, 1]  # one message a worker batch
    records = _received(aws["sqs"], aws["url"])

    answer = write_archive_batch(records, EventArchive(S3Blobs(aws["s3"], "queued"), retention_days=400))
    direct = EventArchive(S3Blobs(aws["s3"], "direct"), retention_days=400)
    direct.write([item for batch in batches for item in batch])

    assert answer["batchItemFailures"] == [] and answer["events"] == 60
    assert _objects(aws["s3"], "queued") == _objects(aws["s3"], "direct")
    assert answer["objects"] == len(_objects(aws["s3"], "direct"))


def test_a_batch_too_big_for_one_message_is_split_and_nothing_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(archive_queue, "MAX_MESSAGE_BYTES", 2_000)
    events = _events(200)
    bodies = pack_archived(events)
    assert len(bodies) > 1 and all(len(body) <= 2_000 for body in bodies)
    back = [item for body in bodies for item in unpack_archived(body)]
    assert sorted(e.event.message_id for e in back) == sorted(e.event.message_id for e in events)


def test_an_unreadable_message_fails_alone_and_the_rest_are_written(aws: dict[str, Any]) -> None:
    QueuedArchive(aws["sqs"], aws["url"]).write(_events(10))
    records = _received(aws["sqs"], aws["url"]) + [{"messageId": "junk", "body": "not base64 gzip!"}]
    answer = write_archive_batch(records, EventArchive(S3Blobs(aws["s3"], "queued"), retention_days=400))
    assert answer["batchItemFailures"] == [{"itemIdentifier": "junk"}]
    assert sum(len(held) for held in _objects(aws["s3"], "queued").values()) == 10


def test_a_send_the_queue_refuses_fails_the_write(aws: dict[str, Any]) -> None:
    gone = aws["url"].rsplit("/", 1)[0] + "/no-such-queue"
    with pytest.raises(StorageUnavailable):
        QueuedArchive(aws["sqs"], gone).write(_events(3))

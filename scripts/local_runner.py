"""What Lambda does for the local stack: invoke the app's queue and schedule handlers with the events AWS
would deliver.

`QueueRunner` plays the SQS event source mapping (long-poll, invoke with a batch, delete what did not fail,
leave failures for redelivery and the DLQ); it records every applied body in the events journal before
deleting it (scripts/local_journal.py), and `drain()` empties the queue into the handler when the stack
stops. `Ticker` plays the EventBridge schedule. The effects stream poller is in scripts/local_streams.py.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_journal import EventJournal

ACCOUNT_ID = "123456789012"  # moto's default account: ARNs the runner builds must match the ones moto made
REGION = "us-east-1"

log = logging.getLogger("local_stack")

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The parts of the Lambda context object handlers and Powertools read."""

    function_name: str
    timeout_s: float = 60.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


def sqs_lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping delivers for a batch received from the queue."""
    return {"Records": [_sqs_record(message, queue_arn) for message in messages]}


def _sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def scheduled_event(rule_name: str, now: datetime) -> dict[str, Any]:
    """The event EventBridge delivers to a scheduled Lambda."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


def succeeded(messages: list[dict[str, Any]], answer: Any) -> list[dict[str, Any]]:
    """The messages the handler did not report in batchItemFailures."""
    failures = answer.get("batchItemFailures", []) if isinstance(answer, Mapping) else []
    failed = {item.get("itemIdentifier") for item in failures}
    return [message for message in messages if message["MessageId"] not in failed]


@dataclass(frozen=True, slots=True)
class Backlog:
    waiting: int  # visible: nobody has received them yet
    in_flight: int  # received and not deleted: being applied, or failed and waiting for redelivery


class QueueRunner:
    """Does what Lambda's SQS event source mapping does: long-poll, invoke with a batch, delete successes.

    Failed messages are left alone, so they come back after the visibility timeout and reach the DLQ
    after the queue's maxReceiveCount, just as in AWS. With a journal, a message's body is recorded as
    applied (durably) before the message is deleted, so a crash at any point loses nothing.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        journal: EventJournal | None = None,
        name: str = "apply_events",
    ) -> None:
        self._name = name  # the handler's, in its Lambda context and the log
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._journal = journal
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # the outermost edge: one bad poll must not end the worker
                if stopping.is_set():
                    return  # stopping: whatever this poll held stays in the queue and the journal
                log.exception("queue runner: polling %s failed; retrying", self._queue_url)
                stopping.wait(1.0)

    def poll_once(self, wait_s: int = 1) -> int:
        received = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = received.get("Messages", [])
        if not messages:
            return 0
        context = LambdaContext(function_name=f"leadloop-local-{self._name}")
        try:
            answer = self._handler(sqs_lambda_event(messages, self._queue_arn), context)
        except Exception:  # Lambda retries the whole batch when the handler raises; so do we
            log.exception("%s raised on a batch of %d; all will be retried", self._name, len(messages))
            return 0
        done = succeeded(messages, answer)
        if self._journal is not None:
            self._journal.mark_applied(message["Body"] for message in done)
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if len(done) < len(messages):
            log.warning(
                "%s: %d of %d messages failed; they will be retried",
                self._name,
                len(messages) - len(done),
                len(messages),
            )
        return len(done)

    def backlog(self) -> Backlog:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return Backlog(
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def drain(self, timeout_s: float, hurry: threading.Event) -> Backlog:
        """Apply what the queue holds, until it is empty, `timeout_s` passed or `hurry` is set; returns what
        is left. Call it once nothing can add to the queue and no other poller runs. Messages that failed
        wait out their visibility timeout; they are not waited for: the journal replays them on the next
        start."""
        deadline = time.monotonic() + timeout_s
        left = self.backlog()
        while left.waiting and not hurry.is_set() and time.monotonic() < deadline:
            self.poll_once(wait_s=0)
            left = self.backlog()
        return left


class Ticker:
    """Calls the scheduled handler every `interval_s`, like the EventBridge rule does every minute in AWS."""

    def __init__(self, handler: Handler, interval_s: float) -> None:
        self._handler = handler
        self._interval_s = interval_s

    def run(self, stopping: threading.Event) -> None:
        while not stopping.wait(self._interval_s):
            try:
                self._handler(
                    scheduled_event("leadloop-local-send_due_touches", datetime.now(UTC)),
                    LambdaContext(function_name="leadloop-local-send_due_touches"),
                )
            except Exception:  # the outermost edge: the next tick tries again
                log.exception("send_due_touches raised; the next tick retries")

"""The local stack's effects stream poller (scripts/local_streams.py) against a table with a NEW_IMAGE
stream, on moto and on DynamoDB Local (whose shards and sequence numbers are the real ones): every write
reaches the handler in the Lambda DynamoDB Streams event shape, a failing batch is retried unchanged until
it succeeds or is set aside with its error, and a restarted poller resumes where the last one stopped.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import REPO_ROOT
from tests.integration.conftest import LOCAL_CREDENTIALS, REGION

if str(REPO_ROOT / "scripts") not in sys.path:
    sys.path.append(str(REPO_ROOT / "scripts"))  # the local stack's modules import each other by name
from local_streams import DEAD_LETTER_FILE, StreamPoller  # noqa: E402


class Table:
    def __init__(self, dynamodb: Any, streams: Any) -> None:
        self.dynamodb = dynamodb
        self.streams = streams
        self.name = f"t{uuid.uuid4().hex[:10]}-prospects"
        dynamodb.create_table(
            TableName=self.name,
            KeySchema=[{"AttributeName": "lead_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "lead_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )

    def save(self, lead_id: str, effects: str) -> None:
        """A prospect write carrying its outbox (binary, as the real one is compressed)."""
        item = {"lead_id": {"S": lead_id}, "outbox": {"B": effects.encode()}}
        self.dynamodb.put_item(TableName=self.name, Item=item)

    def stream_arn(self) -> str:
        return str(self.dynamodb.describe_table(TableName=self.name)["Table"]["LatestStreamArn"])

    def poller(self, handler: Any, data_dir: Path, max_attempts: int = 10) -> StreamPoller:
        return StreamPoller(
            self.dynamodb,
            self.streams,
            self.name,
            handler,
            data_dir,
            interval_s=0,
            max_attempts=max_attempts,
            first_backoff_s=0,
        )


@pytest.fixture
def moto_table() -> Iterator[Table]:
    with mock_aws():
        yield Table(boto3.client("dynamodb", REGION), boto3.client("dynamodbstreams", REGION))


@pytest.fixture
def dynamodb_local_table(dynamodb_local_endpoint: str) -> Table:
    def client(service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=dynamodb_local_endpoint,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    return Table(client("dynamodb"), client("dynamodbstreams"))


@pytest.fixture(params=["moto", pytest.param("dynamodb_local", marks=pytest.mark.dynamodb_local)])
def table(request: pytest.FixtureRequest) -> Table:
    return request.getfixturevalue(f"{request.param}_table")


class Dispatcher:
    """Stands in for `app.dispatch_effects`: records what it was given; raises while told to."""

    def __init__(self, failures: int = 0, poison: str | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self._failures = failures
        self._poison = poison

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        assert context.get_remaining_time_in_millis() > 0
        self.calls.append(event["Records"])
        if self._failures:
            self._failures -= 1
            raise RuntimeError("the owner email's header was refused")
        if any(self._poison == _lead(record) for record in event["Records"]):
            raise RuntimeError(f"cannot notify about {self._poison}")

    def effects(self) -> list[str]:
        """Every outbox delivered, in order, one entry per delivery (a retried batch counts again)."""
        return [_outbox(record) for records in self.calls for record in records]


def _lead(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["NewImage"]["lead_id"]["S"])


def _outbox(record: dict[str, Any]) -> str:
    return base64.b64decode(record["dynamodb"]["NewImage"]["outbox"]["B"]).decode()


def _until_quiet(poller: StreamPoller) -> None:
    while poller.poll_once(threading.Event()):
        pass


def test_every_write_reaches_the_dispatcher_once_and_a_restart_resumes_after_the_last(
    table: Table, tmp_path: Path
) -> None:
    dispatcher = Dispatcher()
    for n in range(3):
        table.save(f"lead-{n}", f"notify-{n}")
    _until_quiet(table.poller(dispatcher, tmp_path))

    assert dispatcher.effects() == ["notify-0", "notify-1", "notify-2"]
    record = dispatcher.calls[0][0]
    assert record["eventName"] == "INSERT" and record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == table.stream_arn()
    assert record["dynamodb"]["Keys"] == {"lead_id": {"S": "lead-0"}}
    assert record["dynamodb"]["StreamViewType"] == "NEW_IMAGE" and record["dynamodb"]["SequenceNumber"]
    json.dumps(dispatcher.calls)  # what Lambda hands over is JSON: no bytes, no datetimes

    table.save("lead-0", "accept-0")  # written while the runner was down
    restarted = Dispatcher()
    _until_quiet(table.poller(restarted, tmp_path))
    assert restarted.effects() == ["accept-0"]
    assert [r["eventName"] for records in restarted.calls for r in records] == ["MODIFY"]


def test_a_failing_batch_is_retried_unchanged_until_it_succeeds(table: Table, tmp_path: Path) -> None:
    dispatcher = Dispatcher(failures=2)
    table.save("lead-1", "notify-1")
    poller = table.poller(dispatcher, tmp_path)
    _until_quiet(poller)
    table.save("lead-2", "notify-2")
    _until_quiet(poller)

    assert dispatcher.effects() == ["notify-1"] * 3 + ["notify-2"]
    assert dispatcher.calls[0] == dispatcher.calls[1] == dispatcher.calls[2]
    assert not (tmp_path / DEAD_LETTER_FILE).exists()


def test_a_batch_that_keeps_failing_is_set_aside_with_its_error_and_the_stream_moves_on(
    table: Table, tmp_path: Path
) -> None:
    dispatcher = Dispatcher(poison="lead-bad")
    table.save("lead-bad", "notify-bad")
    poller = table.poller(dispatcher, tmp_path, max_attempts=3)
    _until_quiet(poller)
    table.save("lead-good", "notify-good")
    _until_quiet(poller)

    assert dispatcher.effects() == ["notify-bad"] * 3 + ["notify-good"]
    [dead] = [json.loads(line) for line in (tmp_path / DEAD_LETTER_FILE).read_text().splitlines()]
    assert "cannot notify about lead-bad" in dead["error"]
    assert [_outbox(record) for record in dead["records"]] == ["notify-bad"]
    restarted = Dispatcher()
    _until_quiet(table.poller(restarted, tmp_path))
    assert restarted.calls == []  # set aside is done with: a restart does not send it again

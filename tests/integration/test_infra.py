"""The deployable infrastructure: the packaged template of a `ci` stage and the sales SLA workflow.

The template half reads what `scripts/package.sh ci` produces (offline: LEADLOOP_PACKAGE_DEPS=none) and
checks what an operator would otherwise learn from a failed or unsafe deploy: least-privilege roles, the
queue wiring, the tables matching the app's own models. The workflow half runs
infra/sla_workflow.asl.json on moto's Step Functions interpreter, which (moto 5.2.1) executes
`sqs:sendMessage.waitForTaskToken`, `TimeoutSecondsPath` (real seconds: the timeout tests wait ~1-2 s) and
SendTaskSuccess/SendTaskFailure. Two moto limits shape these tests: a second StartExecution in the same
account and region fails (moto deep-copies the backend, RLock included), so each test gets its own mock;
and a token whose wait already timed out is accepted by SendTaskSuccess, where AWS answers TaskTimedOut.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.stage_template import finalize, references
from tests.conftest import REPO_ROOT
from tests.packaged import as_list, grants, packaged_template, resource_text, resources, statements

REGION = "us-east-1"
STAGE = "ci"
WORKFLOW = REPO_ROOT / "infra" / "sla_workflow.asl.json"
BACKTEST_WORKFLOW = REPO_ROOT / "infra" / "backtest_workflow.asl.json"
FUNCTIONS = {
    "APIHandler": "ApiHandlerRole",
    "Ingest": "IngestRole",
    "ApplyEvents": "ApplyEventsRole",
    "SendDueTouches": "SendDueTouchesRole",
    "SendTouches": "SendTouchesRole",
    "DispatchEffects": "DispatchEffectsRole",
    "CountEffects": "CountEffectsRole",
    "BacktestShard": "BacktestShardRole",
    "BacktestMerge": "BacktestMergeRole",
    "CompactArchive": "CompactArchiveRole",
    "ArchiveEvents": "ArchiveEventsRole",
}
# The SES identities and configuration set every mailing role is limited to (policy-scheduler.json).
SES_CONFIGURATION_SET = (
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${SesConfigurationSet}"
)
PROSPECTS_STREAM = "${ProspectsTable.StreamArn}"
DAY_SECONDS = 24 * 3600
WAIT_LIMIT_SECONDS = 30.0


# ------------------------------------------------------------------------------------------ the template


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return packaged_template(tmp_path_factory.mktemp("build"), STAGE)


def _wildcard_problem(text: str) -> str | None:
    if not text.startswith(("arn:", "${")):
        return "is neither an ARN nor a reference"
    parts = text.split(":", 5)
    if text.startswith("arn:") and any("*" in part for part in parts[1:5]):
        return "leaves partition, service, region or account open"
    if "*" in text:
        before = text.split("*", 1)[0]
        # A wildcard may only narrow inside a named resource (an index, a log stream, an execution).
        if not re.search(r"\$\{(?!AWS::)[^}]+\}", before):
            return "has a wildcard before any named resource"
    return None


def test_no_role_grants_a_wildcard_where_the_resource_is_known(template: dict[str, Any]) -> None:
    problems = []
    for name, role in resources(template, "AWS::IAM::Role").items():
        for statement in statements(role):
            for action in as_list(statement["Action"]):
                if action == "*" or action.endswith(":*"):
                    problems.append(f"{name}: action {action}")
            for resource in as_list(statement["Resource"]):
                problem = _wildcard_problem(resource_text(resource))
                if problem:
                    problems.append(f"{name}: {resource_text(resource)} {problem}")
    assert problems == []


def test_the_event_archive_is_private_encrypted_and_expires_after_the_retention(
    template: dict[str, Any],
) -> None:
    bucket = template["Resources"]["EventArchiveBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    rules = {rule["Prefix"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {"events/", "backtests/"}
    assert all(rule["Status"] == "Enabled" for rule in rules.values())
    assert rules["events/"]["ExpirationInDays"] == {"Ref": "ArchiveRetentionDays"}
    assert 0 < rules["backtests/"]["ExpirationInDays"] <= 90  # jobs' reports and parts
    worker_env = template["Resources"]["ApplyEvents"]["Properties"]["Environment"]["Variables"]
    assert worker_env["LEADLOOP_ARCHIVE_BUCKET"] == {"Ref": "EventArchiveBucket"}
    assert worker_env["LEADLOOP_ARCHIVE_RETENTION_DAYS"] == {"Ref": "ArchiveRetentionDays"}


def test_every_function_has_its_own_role(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::Serverless::Function")
    assert {name: fn["Properties"]["Role"] for name, fn in functions.items()} == {
        name: {"Fn::GetAtt": [role, "Arn"]} for name, role in FUNCTIONS.items()
    }
    assert "DefaultRole" not in template["Resources"]


SECRETS_PARAMETER_ARN = (
    "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/leadloop/${Stage}/secrets"
)
ARCHIVED = "${EventArchiveBucket.Arn}/events/day=2026-11-30/shard=0a/batch.jsonl.gz"
BACKTEST_OBJECT = "${EventArchiveBucket.Arn}/backtests/bt-0123456789abcdef/parts/0a-0.json.gz"
BACKTEST_MACHINE = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:leadloop-${Stage}-backtest"
)
PERMISSIONS = [
    # role, action, resource, allowed
    ("ApiHandlerRole", "dynamodb:GetItem", "${KeysTable.Arn}", True),
    ("ApiHandlerRole", "dynamodb:Query", "${ProspectsTable.Arn}/index/by_state", True),
    ("ApiHandlerRole", "dynamodb:GetItem", "${ProspectsTable.Arn}", True),
    # Sales actions, one-click unsubscribe and tracked clicks run the worker's unit of work in the API
    # function (so an illegal transition is a 409 at once): it writes profiles. A CSV import (POST
    # /leads/import) creates leads, so it claims their emails: PutItem on identities, for keys `email:*` only.
    ("ApiHandlerRole", "dynamodb:PutItem", "${ProspectsTable.Arn}", True),
    # Erasing a person (DELETE /leads/{id}, admin) deletes the profile, its identities and old effect marks.
    ("ApiHandlerRole", "dynamodb:DeleteItem", "${ProspectsTable.Arn}", True),
    ("ApiHandlerRole", "dynamodb:DeleteItem", "${IdentitiesTable.Arn}", True),
    ("ApiHandlerRole", "dynamodb:Scan", "${NoncesTable.Arn}", True),
    ("ApiHandlerRole", "dynamodb:BatchWriteItem", "${NoncesTable.Arn}", True),
    # Nurture refuses an address on the suppression list of erased people (kept in the identities table).
    ("SendDueTouchesRole", "dynamodb:GetItem", "${IdentitiesTable.Arn}", True),
    ("SendDueTouchesRole", "dynamodb:PutItem", "${IdentitiesTable.Arn}", False),
    ("ApiHandlerRole", "dynamodb:PutItem", "${IdentitiesTable.Arn}", True),
    ("ApiHandlerRole", "dynamodb:PutItem", "${ContentTable.Arn}", True),
    # Tracking and webhooks run in the ingest function: the API function does not enqueue.
    ("ApiHandlerRole", "sqs:SendMessage", "${EventsQueue.Arn}", False),
    # Every function that saves a prospect performs its effects right after the write (the fast path): effect
    # marks (GetItem/PutItem) and counters moved once (a transaction: Put of a marker, Update of counters)
    # live in the nonces table, and the owner is emailed when a lead is routed.
    ("ApiHandlerRole", "dynamodb:GetItem", "${NoncesTable.Arn}", True),
    ("ApiHandlerRole", "dynamodb:PutItem", "${NoncesTable.Arn}", True),
    ("ApiHandlerRole", "dynamodb:UpdateItem", "${CountersTable.Arn}", True),
    ("ApiHandlerRole", "ses:SendRawEmail", SES_CONFIGURATION_SET, True),
    ("ApplyEventsRole", "dynamodb:GetItem", "${NoncesTable.Arn}", True),
    ("ApplyEventsRole", "dynamodb:PutItem", "${NoncesTable.Arn}", True),
    ("ApplyEventsRole", "ses:SendRawEmail", SES_CONFIGURATION_SET, True),
    ("ApplyEventsRole", "dynamodb:DeleteItem", "${NoncesTable.Arn}", False),
    ("SendDueTouchesRole", "dynamodb:GetItem", "${NoncesTable.Arn}", True),
    ("SendDueTouchesRole", "dynamodb:PutItem", "${NoncesTable.Arn}", True),
    ("SendDueTouchesRole", "dynamodb:UpdateItem", "${CountersTable.Arn}", True),
    ("ApiHandlerRole", "states:SendTaskSuccess", "${SlaStateMachine}", True),
    ("ApiHandlerRole", "states:StopExecution", "${SlaStateMachine}", False),
    # The ingest function parses untrusted bytes: it reads keys, remembers nonces and enqueues, no more.
    ("IngestRole", "dynamodb:GetItem", "${KeysTable.Arn}", True),
    ("IngestRole", "dynamodb:PutItem", "${NoncesTable.Arn}", True),
    ("IngestRole", "sqs:SendMessage", "${EventsQueue.Arn}", True),
    ("IngestRole", "ssm:GetParameter", SECRETS_PARAMETER_ARN, True),
    ("IngestRole", "dynamodb:PutItem", "${ProspectsTable.Arn}", False),
    ("IngestRole", "dynamodb:UpdateItem", "${ProspectsTable.Arn}", False),
    ("IngestRole", "dynamodb:GetItem", "${ProspectsTable.Arn}", False),
    ("IngestRole", "dynamodb:PutItem", "${IdentitiesTable.Arn}", False),
    ("IngestRole", "dynamodb:PutItem", "${ActivityTable.Arn}", False),
    ("IngestRole", "dynamodb:UpdateItem", "${CountersTable.Arn}", False),
    ("IngestRole", "dynamodb:PutItem", "${KeysTable.Arn}", False),
    ("IngestRole", "dynamodb:PutItem", "${ContentTable.Arn}", False),
    ("IngestRole", "sqs:ReceiveMessage", "${EventsQueue.Arn}", False),
    ("IngestRole", "sqs:SendMessage", "${EventsDeadLetterQueue.Arn}", False),
    ("IngestRole", "states:StartExecution", "${SlaStateMachine}", False),
    ("ApplyEventsRole", "dynamodb:UpdateItem", "${ProspectsTable.Arn}", True),
    ("ApplyEventsRole", "dynamodb:PutItem", "${IdentitiesTable.Arn}", True),
    ("ApplyEventsRole", "dynamodb:PutItem", "${ActivityTable.Arn}", True),
    ("ApplyEventsRole", "dynamodb:UpdateItem", "${CountersTable.Arn}", True),
    ("ApplyEventsRole", "dynamodb:PutItem", "${ContentTable.Arn}", False),
    ("ApplyEventsRole", "dynamodb:PutItem", "${KeysTable.Arn}", False),
    ("ApplyEventsRole", "sqs:ReceiveMessage", "${EventsQueue.Arn}", True),
    # Only the ingest function and the SLA workflow put events on the queue.
    ("ApplyEventsRole", "sqs:SendMessage", "${EventsQueue.Arn}", False),
    ("ApplyEventsRole", "sqs:SendMessage", "${EventsDeadLetterQueue.Arn}", True),
    ("ApplyEventsRole", "states:StartExecution", "${SlaStateMachine}", True),
    ("ApplyEventsRole", "states:SendTaskSuccess", "${SlaStateMachine}", True),
    ("ApplyEventsRole", "states:SendTaskFailure", "${SlaStateMachine}", True),
    ("SendDueTouchesRole", "dynamodb:Query", "${ProspectsTable.Arn}/index/due", True),
    ("SendDueTouchesRole", "dynamodb:Query", "${ProspectsTable.Arn}/index/by_state", False),
    ("SendDueTouchesRole", "dynamodb:DeleteItem", "${ProspectsTable.Arn}", False),
    ("SendDueTouchesRole", "dynamodb:PutItem", "${ContentTable.Arn}", False),
    ("SendDueTouchesRole", "ses:SendRawEmail", SES_CONFIGURATION_SET, True),
    ("SendDueTouchesRole", "states:StartExecution", "${SlaStateMachine}", False),
    ("SendDueTouchesRole", "sqs:SendMessage", "${EventsQueue.Arn}", False),
    # The sweep enqueues due leads; the send workers take them off, claim and send (issue 15).
    ("SendDueTouchesRole", "sqs:SendMessage", "${TouchesQueue.Arn}", True),
    ("SendTouchesRole", "sqs:ReceiveMessage", "${TouchesQueue.Arn}", True),
    ("SendTouchesRole", "sqs:DeleteMessage", "${TouchesQueue.Arn}", True),
    ("SendTouchesRole", "sqs:SendMessage", "${TouchesQueue.Arn}", False),
    ("SendTouchesRole", "sqs:ReceiveMessage", "${EventsQueue.Arn}", False),
    ("SendTouchesRole", "dynamodb:GetItem", "${ProspectsTable.Arn}", True),
    ("SendTouchesRole", "dynamodb:PutItem", "${ProspectsTable.Arn}", True),
    ("SendTouchesRole", "dynamodb:Query", "${ProspectsTable.Arn}/index/due", False),
    ("SendTouchesRole", "dynamodb:DeleteItem", "${ProspectsTable.Arn}", False),
    ("SendTouchesRole", "ses:SendRawEmail", SES_CONFIGURATION_SET, True),
    ("SendTouchesRole", "states:StartExecution", "${SlaStateMachine}", False),
    ("SlaStateMachineRole", "sqs:SendMessage", "${EventsQueue.Arn}", True),
    ("SlaStateMachineRole", "sqs:SendMessage", "${EventsDeadLetterQueue.Arn}", False),
    ("SlaStateMachineRole", "dynamodb:PutItem", "${ProspectsTable.Arn}", False),
    # The count consumer reads the same stream and moves each batch's counts with its shard's checkpoint,
    # nothing else: no activity, no mail, no workflow, no profile.
    ("CountEffectsRole", "dynamodb:GetRecords", PROSPECTS_STREAM, True),
    ("CountEffectsRole", "dynamodb:GetShardIterator", PROSPECTS_STREAM, True),
    ("CountEffectsRole", "dynamodb:GetItem", "${NoncesTable.Arn}", True),
    ("CountEffectsRole", "dynamodb:UpdateItem", "${NoncesTable.Arn}", True),
    ("CountEffectsRole", "dynamodb:UpdateItem", "${CountersTable.Arn}", True),
    ("CountEffectsRole", "sqs:SendMessage", "${EffectsDeadLetterQueue.Arn}", False),
    ("CountEffectsRole", "dynamodb:PutItem", "${ActivityTable.Arn}", False),
    ("CountEffectsRole", "dynamodb:PutItem", "${ProspectsTable.Arn}", False),
    ("CountEffectsRole", "dynamodb:UpdateItem", "${ProspectsTable.Arn}", False),
    ("CountEffectsRole", "ses:SendRawEmail", SES_CONFIGURATION_SET, False),
    ("CountEffectsRole", "states:StartExecution", "${SlaStateMachine}", False),
    # The effects dispatcher reads the prospects table's stream and performs each write's outbox: it marks
    # effects done, appends activity, moves counters once, emails the owner and runs the SLA workflow.
    ("DispatchEffectsRole", "dynamodb:GetRecords", PROSPECTS_STREAM, True),
    ("DispatchEffectsRole", "dynamodb:GetShardIterator", PROSPECTS_STREAM, True),
    ("DispatchEffectsRole", "dynamodb:DescribeStream", PROSPECTS_STREAM, True),
    (
        "DispatchEffectsRole",
        "dynamodb:ListStreams",
        "${ProspectsTable.Arn}/stream/2026-01-01T00:00:00.000",
        True,
    ),
    ("DispatchEffectsRole", "dynamodb:GetItem", "${NoncesTable.Arn}", True),
    ("DispatchEffectsRole", "dynamodb:PutItem", "${NoncesTable.Arn}", True),
    ("DispatchEffectsRole", "dynamodb:PutItem", "${ActivityTable.Arn}", True),
    ("DispatchEffectsRole", "dynamodb:BatchWriteItem", "${ActivityTable.Arn}", True),
    ("DispatchEffectsRole", "dynamodb:UpdateItem", "${CountersTable.Arn}", True),
    ("DispatchEffectsRole", "dynamodb:Query", "${ContentTable.Arn}", True),
    ("DispatchEffectsRole", "ses:SendRawEmail", SES_CONFIGURATION_SET, True),
    ("DispatchEffectsRole", "states:StartExecution", "${SlaStateMachine}", True),
    ("DispatchEffectsRole", "states:SendTaskSuccess", "${SlaStateMachine}", True),
    ("DispatchEffectsRole", "ssm:GetParameter", SECRETS_PARAMETER_ARN, True),
    # Lambda sends the record of a write it gave up on to the on-failure destination with this role.
    ("DispatchEffectsRole", "sqs:SendMessage", "${EffectsDeadLetterQueue.Arn}", True),
    # It performs decisions, it never makes one: no profile, identity, key or content write, no events.
    ("DispatchEffectsRole", "dynamodb:GetItem", "${ProspectsTable.Arn}", False),
    ("DispatchEffectsRole", "dynamodb:PutItem", "${ProspectsTable.Arn}", False),
    ("DispatchEffectsRole", "dynamodb:UpdateItem", "${ProspectsTable.Arn}", False),
    ("DispatchEffectsRole", "dynamodb:PutItem", "${IdentitiesTable.Arn}", False),
    ("DispatchEffectsRole", "dynamodb:GetItem", "${KeysTable.Arn}", False),
    ("DispatchEffectsRole", "dynamodb:PutItem", "${ContentTable.Arn}", False),
    ("DispatchEffectsRole", "dynamodb:DeleteItem", "${NoncesTable.Arn}", False),
    ("DispatchEffectsRole", "dynamodb:DeleteItem", "${ActivityTable.Arn}", False),
    ("DispatchEffectsRole", "dynamodb:DeleteItem", "${CountersTable.Arn}", False),
    ("DispatchEffectsRole", "sqs:SendMessage", "${EventsQueue.Arn}", False),
    ("DispatchEffectsRole", "sqs:SendMessage", "${EventsDeadLetterQueue.Arn}", False),
    ("DispatchEffectsRole", "states:StopExecution", "${SlaStateMachine}", False),
    # Nobody else reads the stream or writes to the effects dead-letter queue.
    ("ApplyEventsRole", "dynamodb:GetRecords", PROSPECTS_STREAM, False),
    ("ApiHandlerRole", "dynamodb:GetRecords", PROSPECTS_STREAM, False),
    ("ApplyEventsRole", "sqs:SendMessage", "${EffectsDeadLetterQueue.Arn}", False),
    ("IngestRole", "dynamodb:PutItem", "${ActivityTable.Arn}", False),
    # The rules lab's event archive: the worker queues what it applied and the archiver only adds objects;
    # the API reads them (backtest) and rewrites a person's shard objects on erase; nobody else touches it.
    ("ApplyEventsRole", "sqs:SendMessage", "${ArchiveQueue.Arn}", True),
    ("ApplyEventsRole", "s3:PutObject", ARCHIVED, False),
    ("ArchiveEventsRole", "sqs:ReceiveMessage", "${ArchiveQueue.Arn}", True),
    ("ArchiveEventsRole", "sqs:DeleteMessage", "${ArchiveQueue.Arn}", True),
    ("ArchiveEventsRole", "sqs:SendMessage", "${ArchiveQueue.Arn}", False),
    ("ArchiveEventsRole", "s3:PutObject", ARCHIVED, True),
    ("ArchiveEventsRole", "s3:GetObject", ARCHIVED, False),
    ("ArchiveEventsRole", "s3:DeleteObject", ARCHIVED, False),
    ("ArchiveEventsRole", "s3:PutObject", BACKTEST_OBJECT, False),
    ("ArchiveEventsRole", "dynamodb:GetItem", "${ProspectsTable.Arn}", False),
    ("ArchiveEventsRole", "dynamodb:BatchGetItem", "${NoncesTable.Arn}", True),  # leads erased lately
    ("ArchiveEventsRole", "dynamodb:PutItem", "${NoncesTable.Arn}", False),
    ("ArchiveEventsRole", "sqs:ReceiveMessage", "${EventsQueue.Arn}", False),
    ("ApiHandlerRole", "sqs:SendMessage", "${ArchiveQueue.Arn}", False),
    ("ApplyEventsRole", "s3:GetObject", ARCHIVED, False),
    ("ApplyEventsRole", "s3:DeleteObject", ARCHIVED, False),
    ("ApiHandlerRole", "s3:GetObject", ARCHIVED, True),
    ("ApiHandlerRole", "s3:DeleteObject", ARCHIVED, True),
    ("ApiHandlerRole", "s3:ListBucket", "${EventArchiveBucket.Arn}", True),
    ("ApiHandlerRole", "s3:PutBucketPolicy", "${EventArchiveBucket.Arn}", False),
    ("IngestRole", "s3:PutObject", ARCHIVED, False),
    ("SendDueTouchesRole", "s3:GetObject", ARCHIVED, False),
    ("DispatchEffectsRole", "s3:PutObject", ARCHIVED, False),
    # The backtest workflow (infra/backtest_workflow.asl.json): the API keeps jobs under backtests/ and starts
    # the state machine; a shard function reads archived events and writes its part; the merge reads parts
    # and outcomes (profiles) and writes the report; the state machine invokes those two functions only.
    ("ApiHandlerRole", "s3:PutObject", BACKTEST_OBJECT, True),
    ("ApiHandlerRole", "s3:GetObject", BACKTEST_OBJECT, True),
    ("ApiHandlerRole", "states:StartExecution", "${BacktestStateMachine}", True),
    ("ApiHandlerRole", "states:StopExecution", "${BacktestStateMachine}", False),
    ("BacktestShardRole", "s3:GetObject", ARCHIVED, True),
    ("BacktestShardRole", "s3:ListBucket", "${EventArchiveBucket.Arn}", True),
    ("BacktestShardRole", "s3:PutObject", ARCHIVED, False),
    ("BacktestShardRole", "s3:DeleteObject", ARCHIVED, False),
    ("BacktestShardRole", "s3:GetObject", BACKTEST_OBJECT, True),
    ("BacktestShardRole", "s3:PutObject", BACKTEST_OBJECT, True),
    ("BacktestShardRole", "dynamodb:GetItem", "${ProspectsTable.Arn}", False),
    ("BacktestShardRole", "dynamodb:PutItem", "${ProspectsTable.Arn}", False),
    ("BacktestShardRole", "sqs:SendMessage", "${EventsQueue.Arn}", False),
    ("BacktestShardRole", "states:StartExecution", "${BacktestStateMachine}", False),
    ("BacktestMergeRole", "s3:GetObject", BACKTEST_OBJECT, True),
    ("BacktestMergeRole", "s3:PutObject", BACKTEST_OBJECT, True),
    ("BacktestMergeRole", "s3:GetObject", ARCHIVED, False),
    ("BacktestMergeRole", "dynamodb:GetItem", "${ProspectsTable.Arn}", True),
    ("BacktestMergeRole", "dynamodb:PutItem", "${ProspectsTable.Arn}", False),
    ("BacktestMergeRole", "dynamodb:UpdateItem", "${ProspectsTable.Arn}", False),
    ("BacktestMergeRole", "ses:SendRawEmail", SES_CONFIGURATION_SET, False),
    ("BacktestStateMachineRole", "lambda:InvokeFunction", "${BacktestShard.Arn}", True),
    ("BacktestStateMachineRole", "lambda:InvokeFunction", "${BacktestMerge.Arn}", True),
    ("BacktestStateMachineRole", "lambda:InvokeFunction", "${APIHandler.Arn}", False),
    ("BacktestStateMachineRole", "states:StartExecution", BACKTEST_MACHINE, True),
    ("BacktestStateMachineRole", "states:StartExecution", "${SlaStateMachine}", False),
    ("BacktestStateMachineRole", "s3:GetObject", ARCHIVED, False),
    ("SlaStateMachineRole", "lambda:InvokeFunction", "${BacktestShard.Arn}", False),
    ("IngestRole", "s3:GetObject", BACKTEST_OBJECT, False),
    ("ApplyEventsRole", "s3:PutObject", BACKTEST_OBJECT, False),
    # The archive's daily compaction (app.compact_archive) merges a day's objects of a shard under events/
    # and deletes what it merged; it touches nothing else.
    ("CompactArchiveRole", "s3:GetObject", ARCHIVED, True),
    ("CompactArchiveRole", "s3:PutObject", ARCHIVED, True),
    ("CompactArchiveRole", "s3:DeleteObject", ARCHIVED, True),
    ("CompactArchiveRole", "s3:ListBucket", "${EventArchiveBucket.Arn}", True),
    ("CompactArchiveRole", "s3:GetObject", BACKTEST_OBJECT, False),
    ("CompactArchiveRole", "s3:PutObject", BACKTEST_OBJECT, False),
    ("CompactArchiveRole", "s3:PutBucketPolicy", "${EventArchiveBucket.Arn}", False),
    ("CompactArchiveRole", "dynamodb:GetItem", "${ProspectsTable.Arn}", False),
    ("CompactArchiveRole", "dynamodb:BatchGetItem", "${NoncesTable.Arn}", True),  # erase marks
    ("CompactArchiveRole", "dynamodb:PutItem", "${NoncesTable.Arn}", False),
    ("CompactArchiveRole", "sqs:SendMessage", "${EventsQueue.Arn}", False),
    ("CompactArchiveRole", "ses:SendRawEmail", SES_CONFIGURATION_SET, False),
]


@pytest.mark.parametrize(("role", "action", "resource", "allowed"), PERMISSIONS)
def test_each_role_can_do_its_job_and_no_more(
    template: dict[str, Any], role: str, action: str, resource: str, allowed: bool
) -> None:
    assert grants(template["Resources"][role], action, resource) is allowed


def _integrations(template: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(path, method) -> the functions its API Gateway proxy integration invokes."""
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    return {
        (path, method): references(operation["x-amazon-apigateway-integration"]["uri"])
        for path, operations in paths.items()
        for method, operation in operations.items()
        if operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    }


def test_only_tracking_and_webhooks_reach_the_ingest_function(template: dict[str, Any]) -> None:
    from app import INGEST_ROUTES

    integrations = _integrations(template)
    assert {path for (path, _), functions in integrations.items() if functions == {"Ingest"}} == INGEST_ROUTES
    assert {path for (path, _), functions in integrations.items() if functions != {"Ingest"}} == {
        path for (path, _) in integrations if path not in INGEST_ROUTES
    }
    assert all(functions in ({"Ingest"}, {"APIHandler"}) for functions in integrations.values())
    # API Gateway may invoke the ingest function for POSTs under /v1/ and /webhooks/ only, from either API.
    # (The tracking URL's two grants, to anyone through the URL only: tests/integration/test_tracking_url.py.)
    by_api_gateway = [
        body["Properties"]
        for body in resources(template, "AWS::Lambda::Permission").values()
        if body["Properties"]["Principal"] != "*"
    ]
    permissions = {
        (
            frozenset(references(grant["SourceArn"])),
            resource_text(grant["SourceArn"]).rsplit("}", 1)[1],
        )
        for grant in by_api_gateway
        if grant["FunctionName"] == {"Ref": "Ingest"}
    }
    assert permissions == {
        (frozenset({api}), path)
        for api in ("RestAPI", "IngestHttpApi")
        for path in ("/*/POST/v1/*", "/*/POST/webhooks/*")
    }
    assert all(
        grant["Action"] == "lambda:InvokeFunction" and grant["Principal"] == "apigateway.amazonaws.com"
        for grant in by_api_gateway
    )


def test_the_ingest_http_api_serves_exactly_the_ingest_routes_with_the_rest_apis_event_shape(
    template: dict[str, Any],
) -> None:
    from app import INGEST_ROUTES

    (api_id,) = resources(template, "AWS::ApiGatewayV2::Api")
    assert template["Resources"][api_id]["Properties"]["ProtocolType"] == "HTTP"
    routes = {
        body["Properties"]["RouteKey"]: body["Properties"]["Target"]
        for body in resources(template, "AWS::ApiGatewayV2::Route").values()
    }
    assert set(routes) == {f"POST {route}" for route in INGEST_ROUTES}
    (integration_id, integration) = next(iter(resources(template, "AWS::ApiGatewayV2::Integration").items()))
    assert len(resources(template, "AWS::ApiGatewayV2::Integration")) == 1
    assert all(target == {"Fn::Sub": f"integrations/${{{integration_id}}}"} for target in routes.values())
    properties = integration["Properties"]
    assert properties["IntegrationType"] == "AWS_PROXY"
    assert references(properties["IntegrationUri"]) == {"Ingest"}  # never the API function
    # 1.0: the REST API's proxy event, which app.ingest (Chalice's routing) reads.
    assert properties["PayloadFormatVersion"] == "1.0"
    # An integration that outlives the function's own timeout answers the function's error, not API GW's.
    timeout_ms = template["Resources"]["Ingest"]["Properties"]["Timeout"] * 1000
    assert timeout_ms < properties["TimeoutInMillis"] <= 30000
    # Webhooks signed over their URL verify against the URL providers call: this API's (or its domain).
    env = template["Resources"]["Ingest"]["Properties"]["Environment"]["Variables"]
    assert references(env["LEADLOOP_PUBLIC_URL"]) == {"IngestPublicUrl", "IngestHttpApi"}
    assert references(template["Outputs"]["IngestUrl"]["Value"]) == {"IngestPublicUrl", "IngestHttpApi"}


def test_the_ingest_http_api_answers_browser_preflights_as_the_app_promises(
    template: dict[str, Any],
) -> None:
    from app import TRACKING_CORS

    # What the REST API's preflight for /v1/{call} answers today (Chalice's OPTIONS from TRACKING_CORS).
    promised = TRACKING_CORS.get_access_control_headers()
    (api,) = resources(template, "AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == [promised["Access-Control-Allow-Origin"]]
    expected = {header.lower() for header in promised["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "content-encoding", "x-retry-count"} <= expected
    assert {header.lower() for header in cors["AllowHeaders"]} == expected
    assert set(cors["AllowMethods"]) == {"POST", "OPTIONS"}
    assert cors["MaxAge"] == int(promised["Access-Control-Max-Age"])
    assert "AllowCredentials" not in cors  # a wildcard origin with credentials is refused by browsers


def test_the_ingest_http_api_is_throttled_and_logs_no_secrets_or_personal_data(
    template: dict[str, Any],
) -> None:
    (stage,) = resources(template, "AWS::ApiGatewayV2::Stage").values()
    properties = stage["Properties"]
    assert properties["StageName"] == "$default" and properties["AutoDeploy"] is True
    settings = properties["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "IngestThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "IngestThrottleBurstLimit"}
    logs = properties["AccessLogSettings"]
    assert references(logs["DestinationArn"]) == {"IngestAccessLogGroup"}
    line = json.loads(logs["Format"])  # one JSON object a request
    assert {"$context.requestId", "$context.routeKey", "$context.status"} <= set(line.values())
    variables = set(re.findall(r"\$context\.[A-Za-z.]+", logs["Format"]))
    forbidden = ("header", "authorization", "body", "querystring", "identity", "sourceip", "useragent")
    assert [v for v in variables if any(word in v.lower() for word in forbidden)] == []
    group = template["Resources"]["IngestAccessLogGroup"]["Properties"]
    assert 0 < group["RetentionInDays"] <= 30


def test_only_functions_that_perform_effects_or_touches_send_email(template: dict[str, Any]) -> None:
    # The scheduler sends nurture touches; whoever performs a routing's effects emails the owner. The ingest
    # function, which parses untrusted bytes, cannot send mail.
    senders = {
        name
        for name, role in resources(template, "AWS::IAM::Role").items()
        if any(a.startswith("ses:") for s in statements(role) for a in as_list(s["Action"]))
    }
    assert senders == {
        "SendDueTouchesRole",
        "SendTouchesRole",
        "ApplyEventsRole",
        "ApiHandlerRole",
        "DispatchEffectsRole",
    }


def _sam_transform(template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    copy = json.loads(json.dumps(template))
    for body in resources(copy, "AWS::Serverless::Function").values():
        body["Properties"]["CodeUri"] = "s3://bucket/deployment.zip"  # `aws cloudformation package` does this
    return transform(copy, {"Stage": STAGE, "SesFromAddress": "sales@example.com"}, NoManagedPolicies())


def test_worker_mapping_reports_partial_batch_failures(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = _mapping_of(_sam_transform(template, monkeypatch), "ApplyEvents")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    assert references(mapping["EventSourceArn"]) == {"EventsQueue"}


def test_the_archiver_takes_a_thousand_worker_batches_in_five_minutes_and_fails_an_unreadable_one_alone(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = _mapping_of(_sam_transform(template, monkeypatch), "ArchiveEvents")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Fewer, larger S3 objects (bench/cost.py reads the same constants): Lambda's limits are 10,000 and 300 s.
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (1000, 300)
    assert references(mapping["EventSourceArn"]) == {"ArchiveQueue"}
    queue = template["Resources"]["ArchiveQueue"]["Properties"]
    timeout = template["Resources"]["ArchiveEvents"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout + 300  # Lambda's guidance with a batching window
    assert references(queue["RedrivePolicy"]["deadLetterTargetArn"]) == {"ArchiveDeadLetterQueue"}


def _mapping_of(deployed: dict[str, Any], function: str) -> dict[str, Any]:
    (mapping,) = [
        body["Properties"]
        for body in resources(deployed, "AWS::Lambda::EventSourceMapping").values()
        if body["Properties"]["FunctionName"] == {"Ref": function}
    ]
    return mapping


def test_every_prospect_write_reaches_the_dispatcher_until_its_effects_are_done(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.adapters.dynamo_tables import STREAMED

    table = template["Resources"]["ProspectsTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": STREAMED["prospects"]}
    mapping = _mapping_of(_sam_transform(template, monkeypatch), "DispatchEffects")
    # The table's own stream, not the placeholder app.py names for Chalice; from its oldest record.
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["ProspectsTable", "StreamArn"]}
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    # A failing batch is halved until the failing write is alone, so other writes go on.
    assert mapping["BisectBatchOnFunctionError"] is True
    # Retried however often it takes for as long as an outage may last, then set aside while the stream
    # still holds the record (24 h), so the on-failure record can be replayed: never silently dropped.
    assert mapping["MaximumRetryAttempts"] == -1
    assert 3600 <= mapping["MaximumRecordAgeInSeconds"] <= DAY_SECONDS / 2
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["EffectsDeadLetterQueue", "Arn"]}}
    }
    dead_letters = template["Resources"]["EffectsDeadLetterQueue"]["Properties"]
    assert dead_letters["QueueName"] == {"Fn::Sub": "leadloop-${Stage}-effects-dead-letter"}
    assert dead_letters["MessageRetentionPeriod"] == 14 * DAY_SECONDS
    assert dead_letters["SqsManagedSseEnabled"] is True


def test_api_stage_is_throttled(template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    deployed = _sam_transform(template, monkeypatch)
    (stage,) = resources(deployed, "AWS::ApiGateway::Stage").values()
    (setting,) = stage["Properties"]["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert setting["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}


# What API Gateway answers itself, before any function runs: the documented error body, as the app's own.
GATEWAY_ANSWERS = [
    # A path (or a method of a path) no route serves: 404, not "403 Missing Authentication Token".
    ("MISSING_AUTHENTICATION_TOKEN", "404", "not_found"),
    ("THROTTLED", "429", "throttled"),
    ("DEFAULT_4XX", None, "refused"),
    ("DEFAULT_5XX", None, "unavailable"),
]


@pytest.mark.parametrize(("kind", "status", "code"), GATEWAY_ANSWERS)
def test_api_gateway_answers_the_documented_error_body(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch, kind: str, status: str | None, code: str
) -> None:
    deployed = _sam_transform(template, monkeypatch)
    (api,) = resources(deployed, "AWS::ApiGateway::RestApi").values()
    answer = api["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"][kind]
    assert answer.get("statusCode") == status
    # API Gateway fills $context.error.messageString with its message, quoted.
    body = answer["responseTemplates"]["application/json"].replace(
        "$context.error.messageString", json.dumps("a message from API Gateway")
    )
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert answer["responseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"


def test_queue_outlasts_worker_retries_and_dead_letters_after_five(template: dict[str, Any]) -> None:
    queue = template["Resources"]["EventsQueue"]["Properties"]
    worker_timeout = template["Resources"]["ApplyEvents"]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    for name in ("EventsQueue", "EventsDeadLetterQueue"):
        assert template["Resources"][name]["Properties"]["SqsManagedSseEnabled"] is True


def test_stage_is_pinned_and_every_function_is_configured_for_it(template: dict[str, Any]) -> None:
    assert template["Parameters"]["Stage"]["AllowedValues"] == [STAGE]
    wanted = {
        "LEADLOOP_STAGE",
        "LEADLOOP_TABLE_PREFIX",
        "LEADLOOP_QUEUE_URL",
        "LEADLOOP_SLA_STATE_MACHINE_ARN",
        "LEADLOOP_EMAIL_TRANSPORT",
        "LEADLOOP_SES_FROM",
        "LEADLOOP_SES_CONFIGURATION_SET",
        "LEADLOOP_PUBLIC_URL",
        "LEADLOOP_SECRETS_PARAMETER",
    }
    for name in FUNCTIONS:
        variables = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert wanted <= set(variables), f"{name} misses {sorted(wanted - set(variables))}"
        assert variables["LEADLOOP_STAGE"] == {"Ref": "Stage"}
        assert variables["LEADLOOP_TABLE_PREFIX"] == {"Fn::Sub": "leadloop-${Stage}-"}
        assert variables["LEADLOOP_EMAIL_TRANSPORT"] == "ses"
        # Secrets live in the SSM parameter; the environment only names it.
        assert [key for key in variables if "SECRET" in key] == ["LEADLOOP_SECRETS_PARAMETER"]
        # Notifications are also written to the outbox folder; on Lambda only /tmp is writable (the default,
        # beside the code in /var/task, failed every owner notification).
        assert variables["LEADLOOP_OUTBOX_DIR"].startswith("/tmp/"), (
            f"{name} writes its outbox where it can't"
        )


def test_chalice_config_leaves_local_environment_alone() -> None:
    # `chalice local` copies a stage's environment_variables over the caller's environment.
    config = json.loads((REPO_ROOT / ".chalice" / "config.json").read_text())
    assert "environment_variables" not in config
    assert all("environment_variables" not in stage for stage in config["stages"].values())


def _app_tables() -> dict[str, dict[str, Any]]:
    """The tables as the app's own PynamoDB models create them (moto), keyed by suffix."""
    from chalicelib.adapters.dynamo import Tables, create_tables

    with mock_aws():
        create_tables(Tables(prefix=f"leadloop-{STAGE}-", region=REGION))
        client = boto3.client("dynamodb", region_name=REGION)
        described = {}
        for name in client.list_tables()["TableNames"]:
            table = client.describe_table(TableName=name)["Table"]
            ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            described[name.removeprefix(f"leadloop-{STAGE}-")] = {**table, "ttl": ttl.get("AttributeName")}
    return described


def _shape(
    keys: list[dict[str, Any]],
    attributes: list[dict[str, Any]],
    indexes: list[dict[str, Any]],
    ttl: str | None,
    stream: str | None = None,
) -> dict[str, Any]:
    return {
        "keys": [(k["AttributeName"], k["KeyType"]) for k in keys],
        "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in attributes),
        "indexes": sorted(
            (
                i["IndexName"],
                tuple((k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]),
                i["Projection"]["ProjectionType"],
                tuple(sorted(i["Projection"].get("NonKeyAttributes", []))),
            )
            for i in indexes
        ),
        "ttl": ttl,
        "stream": stream,
    }


def test_tables_match_the_apps_models(template: dict[str, Any]) -> None:
    deployed = {}
    for body in resources(template, "AWS::DynamoDB::Table").values():
        props = body["Properties"]
        suffix = props["TableName"]["Fn::Sub"].removeprefix("leadloop-${Stage}-")
        ttl = props.get("TimeToLiveSpecification", {}).get("AttributeName")
        deployed[suffix] = _shape(
            props["KeySchema"],
            props["AttributeDefinitions"],
            props.get("GlobalSecondaryIndexes", []),
            ttl,
            props.get("StreamSpecification", {}).get("StreamViewType"),
        )
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert body["DeletionPolicy"] == "Retain", "a stack deletion must not take the data with it"
    app = {
        suffix: _shape(
            t["KeySchema"],
            t["AttributeDefinitions"],
            t.get("GlobalSecondaryIndexes", []),
            t["ttl"],
            t.get("StreamSpecification", {}).get("StreamViewType"),
        )
        for suffix, t in _app_tables().items()
    }
    assert deployed == app


def test_sla_state_machine_runs_the_reviewed_definition(template: dict[str, Any]) -> None:
    machine = template["Resources"]["SlaStateMachine"]["Properties"]
    assert machine["Definition"] == json.loads(WORKFLOW.read_text())
    assert machine["DefinitionSubstitutions"] == {"EventsQueueUrl": {"Ref": "EventsQueue"}}
    assert machine["RoleArn"] == {"Fn::GetAtt": ["SlaStateMachineRole", "Arn"]}


def test_alarms_watch_dead_letters_and_worker_errors(template: dict[str, Any]) -> None:
    alarms = {
        body["Properties"]["MetricName"]
        + ":"
        + ",".join(sorted(references(body["Properties"]["Dimensions"]))): body["Properties"]
        for body in resources(template, "AWS::CloudWatch::Alarm").values()
    }
    dead_letters = alarms["ApproximateNumberOfMessagesVisible:EventsDeadLetterQueue"]
    worker = alarms["Errors:ApplyEvents"]
    effects_set_aside = alarms["ApproximateNumberOfMessagesVisible:EffectsDeadLetterQueue"]
    dispatcher = alarms["Errors:DispatchEffects"]
    archive_set_aside = alarms["ApproximateNumberOfMessagesVisible:ArchiveDeadLetterQueue"]
    for alarm in (dead_letters, worker, effects_set_aside, dispatcher, archive_set_aside):
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    # Effects waiting on a failing write are noticed long before the dispatcher gives up on it.
    waiting = alarms["IteratorAge:DispatchEffects"]
    assert waiting["ComparisonOperator"] == "GreaterThanThreshold"
    assert waiting["Threshold"] <= 3600 * 1000  # milliseconds
    assert waiting["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_ses_events_reach_the_ses_webhook(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    destination = resources["SesEventDestination"]["Properties"]["EventDestination"]
    assert destination["SnsDestination"] == {"TopicARN": {"Ref": "SesEventsTopic"}}
    assert {"bounce", "complaint", "delivery", "click", "open"} <= set(destination["MatchingEventTypes"])
    subscription = resources["SesEventsSubscription"]["Properties"]
    assert subscription["Protocol"] == "https"
    assert subscription["TopicArn"] == {"Ref": "SesEventsTopic"}
    # On the ingest HTTP API, which invokes the ingest function for /webhooks/{provider}.
    assert subscription["Endpoint"] == {"Fn::Sub": "${IngestHttpApi.ApiEndpoint}/webhooks/ses"}


def test_backtest_state_machine_runs_the_reviewed_definition(template: dict[str, Any]) -> None:
    machine = template["Resources"]["BacktestStateMachine"]["Properties"]
    definition = json.loads(BACKTEST_WORKFLOW.read_text())
    assert machine["Definition"] == definition
    assert machine["DefinitionSubstitutions"] == {
        "BacktestShardArn": {"Fn::GetAtt": ["BacktestShard", "Arn"]},
        "BacktestMergeArn": {"Fn::GetAtt": ["BacktestMerge", "Arn"]},
    }
    assert machine["RoleArn"] == {"Fn::GetAtt": ["BacktestStateMachineRole", "Arn"]}
    assert machine["StateMachineName"] == {"Fn::Sub": "leadloop-${Stage}-backtest"}
    replay = definition["States"]["ReplayParts"]
    assert replay["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    # A failed Map or merge is recorded on the job (the merge function, given the error), never left queued.
    catches = replay["Catch"] + definition["States"]["Merge"]["Catch"]
    assert [c["Next"] for c in catches] == ["RecordFailure"] * 2
    api = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api["LEADLOOP_BACKTEST_STATE_MACHINE_ARN"] == {"Ref": "BacktestStateMachine"}


def test_every_function_keeps_logs_for_a_bounded_time(template: dict[str, Any]) -> None:
    names = {template["Resources"][fn]["Properties"]["FunctionName"]["Fn::Sub"] for fn in FUNCTIONS}
    groups = {
        body["Properties"]["LogGroupName"]["Fn::Sub"].removeprefix("/aws/lambda/"): body["Properties"]
        for body in resources(template, "AWS::Logs::LogGroup").values()
        if body["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/aws/lambda/")
    }
    assert set(groups) == names
    assert all(0 < group["RetentionInDays"] <= 30 for group in groups.values())


def test_every_function_runs_on_python_3_12_which_lambda_still_creates_and_updates(
    template: dict[str, Any],
) -> None:
    # Chalice writes the packaging Python's runtime (3.11); Lambda has refused python3.11 since 2026-08-31.
    runtimes = {
        name: fn["Properties"]["Runtime"]
        for name, fn in resources(template, "AWS::Serverless::Function").items()
    }
    assert runtimes == dict.fromkeys(FUNCTIONS, "python3.12")


def test_finalize_refuses_a_template_without_the_state_machine() -> None:
    with pytest.raises(KeyError, match="SlaStateMachine"):
        finalize({"Resources": {}}, STAGE)


# ------------------------------------------------------------------------------------------ the workflow


@dataclass
class SlaRun:
    """One execution of the SLA workflow on moto, with the events queue it talks to."""

    sqs: Any
    sfn: Any
    queue_url: str
    execution_arn: str

    def next_message(self) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while time.monotonic() < deadline:
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1)
            for message in answer.get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                return dict(json.loads(message["Body"]))
            time.sleep(0.05)
        raise AssertionError("the workflow sent nothing to the events queue")

    def remaining_messages(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]

    def finished(self) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while time.monotonic() < deadline:
            described = self.sfn.describe_execution(executionArn=self.execution_arn)
            if described["status"] != "RUNNING":
                return dict(described)
            time.sleep(0.05)
        raise AssertionError("the workflow is still running")


@pytest.fixture
def start_sla() -> Iterator[Any]:
    # One mock per execution: moto 5.2.1 cannot start a second execution in the same backend.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sqs = boto3.client("sqs", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        queue_url = sqs.create_queue(QueueName=f"leadloop-{STAGE}-events")["QueueUrl"]
        # What CloudFormation's DefinitionSubstitutions does on deploy.
        definition = WORKFLOW.read_text().replace("${EventsQueueUrl}", queue_url)
        machine = sfn.create_state_machine(
            name=f"leadloop-{STAGE}-sla",
            definition=definition,
            roleArn="arn:aws:iam::123456789012:role/leadloop-ci-sla",
        )["stateMachineArn"]

        def start(payload: dict[str, Any]) -> SlaRun:
            # Always named: the worker names executions too (one per routing of a lead).
            execution = sfn.start_execution(
                stateMachineArn=machine, name="sla-L1-1", input=json.dumps(payload)
            )
            return SlaRun(sqs, sfn, queue_url, execution["executionArn"])

        yield start


def test_sales_acting_in_time_resolves_the_sla(start_sla: Any) -> None:
    run = start_sla({"lead_id": "L1", "sla_seconds": 60, "escalate_after_seconds": 60})
    started = run.next_message()
    assert started["type"] == "sla_started" and started["lead_id"] == "L1" and started["task_token"]

    run.sfn.send_task_success(taskToken=started["task_token"], output=json.dumps({"outcome": "accepted"}))

    finished = run.finished()
    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"])["resolution"] == {"outcome": "accepted"}
    assert run.remaining_messages() == []
    with pytest.raises(ClientError, match="InvalidToken"):
        run.sfn.send_task_success(taskToken=started["task_token"], output="{}")


def test_unworked_lead_is_escalated_then_expired_through_the_queue(start_sla: Any) -> None:
    run = start_sla({"lead_id": "L1", "sla_seconds": 1, "escalate_after_seconds": 1})

    started, escalated, expired = run.next_message(), run.next_message(), run.next_message()

    assert (started["type"], escalated["type"]) == ("sla_started", "sla_escalated")
    assert escalated["lead_id"] == "L1" and escalated["task_token"] != started["task_token"]
    assert expired == {"type": "sla_expired", "lead_id": "L1"}
    finished = run.finished()
    assert finished["status"] == "SUCCEEDED"
    output = json.loads(finished["output"])
    assert output["sla_timeout"]["Error"] == output["escalation_timeout"]["Error"] == "States.Timeout"


def test_sales_acting_after_escalation_resolves_with_the_new_token(start_sla: Any) -> None:
    run = start_sla({"lead_id": "L1", "sla_seconds": 1, "escalate_after_seconds": 60})
    run.next_message()
    escalated = run.next_message()
    assert escalated["type"] == "sla_escalated"

    run.sfn.send_task_success(taskToken=escalated["task_token"], output=json.dumps({"outcome": "recycled"}))

    finished = run.finished()
    assert finished["status"] == "SUCCEEDED"
    assert json.loads(finished["output"])["resolution"] == {"outcome": "recycled"}
    assert run.remaining_messages() == [], "a resolved lead must never receive sla_expired"


def test_task_failure_fails_the_execution_with_its_error(start_sla: Any) -> None:
    run = start_sla({"lead_id": "L1", "sla_seconds": 60, "escalate_after_seconds": 60})
    started = run.next_message()

    run.sfn.send_task_failure(taskToken=started["task_token"], error="LeadDeleted", cause="erased on request")

    finished = run.finished()
    assert (finished["status"], finished.get("error")) == ("FAILED", "LeadDeleted")


def test_input_without_an_sla_fails_loudly(start_sla: Any) -> None:
    run = start_sla({"lead_id": "L1"})

    finished = run.finished()

    assert finished["status"] == "FAILED"
    assert finished["error"] == "States.Runtime" and "sla_seconds" in finished["cause"]
    assert run.remaining_messages() == []

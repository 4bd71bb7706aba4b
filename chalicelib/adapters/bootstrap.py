"""Local stack and test set-up: create the tables, the events and touches queues with their dead-letter
queues, the SLA state machine (on moto), and seed the dev keys. Deployed stages get all of this from
infra/ instead.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from chalicelib.adapters.dynamo import KeyStore, Tables, create_tables
from chalicelib.config import Settings
from chalicelib.usecases.auth import hash_key

SLA_DEFINITION = Path(__file__).resolve().parents[2] / "infra" / "sla_workflow.asl.json"


def _client(service: str, settings: Settings) -> Any:
    return boto3.client(service, region_name=settings.region, endpoint_url=settings.aws_endpoint)


def ensure_local_resources(settings: Settings) -> dict[str, str]:
    """Idempotently create what the local stack needs; returns the queue URLs and state machine ARN."""
    create_tables(
        Tables(prefix=settings.table_prefix, host=settings.dynamodb_endpoint, region=settings.region)
    )
    sqs = _client("sqs", settings)
    dlq_url = sqs.create_queue(QueueName=f"{settings.table_prefix}events-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"{settings.table_prefix}events",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    resources = {"queue_url": queue_url, "dead_letter_queue_url": dlq_url}
    # The nurture sweep's touches queue (its dead letters only collect; the due index is the record).
    touches_dlq_url = sqs.create_queue(QueueName=f"{settings.table_prefix}touches-dlq")["QueueUrl"]
    touches_dlq_arn = sqs.get_queue_attributes(QueueUrl=touches_dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    resources["touches_queue_url"] = sqs.create_queue(
        QueueName=f"{settings.table_prefix}touches",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": touches_dlq_arn, "maxReceiveCount": "10"}),
        },
    )["QueueUrl"]
    if SLA_DEFINITION.exists():
        resources["sla_state_machine_arn"] = _ensure_state_machine(settings, queue_url)
    return resources


def _ensure_state_machine(settings: Settings, queue_url: str) -> str:
    sfn = _client("stepfunctions", settings)
    name = f"{settings.table_prefix}sla"
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine["name"] == name:
            return str(machine["stateMachineArn"])
    definition = SLA_DEFINITION.read_text().replace("${EventsQueueUrl}", queue_url)
    role = f"arn:aws:iam::123456789012:role/{name}"
    return str(sfn.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"])


def seed_dev_keys(settings: Settings) -> dict[str, str]:
    """Store the dev keys' hashes (local stack only); returns role -> key for the banner."""
    store = KeyStore(
        Tables(prefix=settings.table_prefix, host=settings.dynamodb_endpoint, region=settings.region)
    )
    now = datetime.now(UTC)
    keys = settings.dev_keys()
    for role, key in keys.items():
        store.put(hash_key(key), role, f"dev-{role}", now)
    return keys

"""Dollars per million ingested events at AWS list prices, from the storage benchmark's measured counts.

Two traffic shapes: server-side Segment clients batching 100 events per request (one SQS message each), and
browsers sending one event per request. For each: API Gateway (REST, which Chalice deploys, beside an HTTP
API), the ingest and worker Lambdas (requests, and GB-seconds at the CPU time measured here plus an assumed
round trip per AWS call, since Lambda bills the wait too), SQS requests (send, receive, delete) and DynamoDB
on-demand read/write units (measured per event, plus the write key's lookup per request).

The durable effects add the dispatcher: every prospect write is a record on the table's stream, and Lambda
invokes the dispatcher per stream batch (reading a stream for a Lambda trigger is free). The writers perform
the effects first (the fast path, metered with the worker's units), so the dispatcher finds each write's
mark and stops: one strongly consistent read per write, and its decode CPU, measured here. When the fast path
failed, the dispatcher writes what the writer would have, so the stream adds no write units.
Every price and assumption is in PRICES, with the date it was read.

As deployed, tracking calls reach the ingest function at its tracking URL (infra/resources.yaml,
IngestTrackingUrl: a Lambda function URL, which charges nothing beyond the function's own requests and
duration): `total_as_deployed` is that total. The ingest HTTP API (webhooks, and tracking through a custom
domain) and the REST API's ingest routes (snippets installed before either) are reported beside it. An
HTTP API meters a request in 512 KB steps; every request here is far below one.

Logs are priced too (CloudWatch Logs ingestion): every Lambda invocation writes the platform's START, END
and REPORT lines (the functions write nothing else on the happy path), and the HTTP API one access-log
line a request, its format read from infra/resources.yaml. Their sizes are rendered from the documented
formats with typical values, plus CloudWatch's 26 bytes of metering per log event: ASSUMED, not measured.

What is deployed is read, not copied: each function's memory from .chalice/config.json, the archiver's batch
and window from chalicelib/adapters/archive_queue.py (app.py and infra/ use the same). Lambda gives a
function CPU in proportion to its memory (one vCPU at 1,769 MB), so CPU measured here on one core takes
1,769/MB times as long there; waiting on AWS takes as long at any memory. Each AWS call also costs client
CPU (serialize, sign, parse), measured here with the network left out (`client_call_cpu_ms`). ASSUMED, not
measured: a Lambda vCPU is as fast as this machine's core, the round trips in PRICES, and the traffic rate
at which the archiver's runs fill (PRICES["events_per_second"]).
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.adapters.archive_queue import (
    ARCHIVER_BATCH,
    ARCHIVER_WINDOW_S,
    pack_archived,
    unpack_archived,
)
from chalicelib.adapters.dynamo_prospects import pack_doc
from chalicelib.adapters.dynamo_stream import writes_with_effects
from chalicelib.adapters.queue import pack
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.effects.outbox import CountOnScoreboard, RecordActivity, decode, encode
from chalicelib.ingest import segment, segment_request
from chalicelib.lab.layout import ArchivedEvent, group_objects
from chalicelib.lab.layout import encode as encode_object

CONFIG = Path(__file__).resolve().parents[1] / ".chalice" / "config.json"
FUNCTION_MEMORY_MB: dict[str, int] = {
    name: int(function["lambda_memory_size"])
    for name, function in json.loads(CONFIG.read_text())["lambda_functions"].items()
}

COUNT_CONSUMER_BATCH = 100  # app.count_effects's batch_size

PRICES: dict[str, Any] = {
    "as_of": "2026-11-23 (us-east-1 list prices; DynamoDB on-demand after the 2024-11-01 cut)",
    "api_gateway_rest_per_million_requests": 3.50,  # first 333 M a month
    "api_gateway_http_per_million_requests": 1.00,  # first 300 M a month ($0.90 after), per 512 KB
    "api_gateway_http_metering_bytes": 512 * 1024,
    "lambda_per_million_requests": 0.20,
    "lambda_per_gb_second": 0.0000166667,  # x86; arm64 is 0.0000133334
    "sqs_standard_per_million_requests": 0.40,  # each 64 KB of payload is one request
    "dynamodb_on_demand_per_million_write_units": 0.625,
    "dynamodb_on_demand_per_million_read_units": 0.125,
    "lambda_function_url_per_million_requests": 0.0,  # nothing beyond the function's requests and duration
    "cloudwatch_logs_per_gb_ingested": 0.50,  # standard log class, first 10 TB a month
    # Assumptions, not prices:
    "lambda_mb_per_vcpu": 1769,  # AWS: CPU in proportion to memory, one vCPU at 1,769 MB
    "lambda_memory_mb": FUNCTION_MEMORY_MB,  # .chalice/config.json, as deployed
    "lambda_memory_gb": FUNCTION_MEMORY_MB["apply_events"] / 1024,  # the worker's (bench/projection.py)
    "dynamodb_round_trip_ms": 5.0,  # same-region request, billed as Lambda duration while waiting
    "sqs_round_trip_ms": 10.0,
    "worker_messages_per_invocation": 10,  # the event source's batch size (app.py)
    "dynamodb_streams_reads_by_lambda": 0.0,  # GetRecords by a Lambda trigger are not billed
    # The trigger polls each stream shard about 4 times a second and hands over what arrived, up to 100
    # records (app.py); a worker invocation's writes arrive over its run, on one shard (a small table has
    # few partitions; more shards mean smaller batches). At least one record per dispatch.
    "stream_polls_per_second": 4,
    "stream_shards": 1,
    "dispatcher_batch_size": 100,
    "dispatcher_mark_read_units": 1.0,  # one strongly consistent GetItem of a small mark per write
    # The rules lab's event archive (adapters/archive_queue.py): the worker sends one message per batch to
    # the archive queue; the archiver takes up to ARCHIVER_BATCH of them, or what ARCHIVER_WINDOW_S brings
    # at `events_per_second` (assumed: issue 15's design point), and puts one object per day and shard of
    # its batch, 8 at a time. Before each write it looks its leads up among the erased (BatchGetItem, 0.5
    # read unit a key): assumed one lead per event, the most it can be.
    "s3_put_per_thousand": 0.005,
    "s3_round_trip_ms": 30.0,
    "archiver_messages_per_invocation": ARCHIVER_BATCH,
    "archiver_window_seconds": ARCHIVER_WINDOW_S,
    "events_per_second": 1000,
    "archiver_erased_lookups_per_event": 1.0,
    "archive_shards": 16,
    "archive_days_per_batch": 1,  # a batch's events are minutes apart: one day (two around midnight)
}
TARGET_DOLLARS_PER_MILLION = 2.0
BROWSER_TARGET_DOLLARS_PER_MILLION = 3.0  # issue 15, one event per request, as deployed
WRITE_KEY_LOOKUP_READ_UNITS = 0.5  # one eventually consistent GetItem on the keys table per request
SQS_PAYLOAD_CHUNK = 64 * 1024
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda stops gathering an SQS batch at a 6 MB invocation payload
ARCHIVED_BYTES_PER_EVENT = 31  # gzipped JSON lines (bench/lab.py measures 30.9 on the standard stream)
LOG_EVENT_METERING_BYTES = 26  # CloudWatch Logs meters each log event's message plus 26 bytes
_REQUEST_ID = "8f507cfc-1a2b-4697-b07a-ac58fc914c95"
# What Lambda writes for every invocation (docs.aws.amazon.com/lambda/latest/dg/python-logging.html).
LAMBDA_PLATFORM_LINES = (
    f"START RequestId: {_REQUEST_ID} Version: $LATEST\n",
    f"END RequestId: {_REQUEST_ID}\n",
    f"REPORT RequestId: {_REQUEST_ID}\tDuration: 23.41 ms\tBilled Duration: 24 ms\tMemory Size: 256 MB"
    "\tMax Memory Used: 88 MB\t\n",
)
# Typical values of the HTTP API access log's variables, for rendering its format.
ACCESS_LOG_VALUES = {
    "requestId": "JKJaXmPLvHcESHA=",
    "requestTime": "30/Nov/2026:19:00:00 +0000",
    "routeKey": "POST /v1/{call}",
    "path": "/v1/page",
    "status": "200",
    "responseLength": "16",
    "responseLatency": "31",
    "integrationStatus": "200",
    "integrationLatency": "29",
    "error.message": "-",
    "integrationErrorMessage": "-",
}


def _segment_message(n: int) -> dict[str, Any]:
    path = ("/pricing", "/docs/api", "/blog/nurture", "/")[n % 4]
    return {
        "type": "page",
        "messageId": f"bench-{n}",
        "anonymousId": f"anon-{n % 37}",
        "name": path,
        "timestamp": "2026-01-05T09:00:00Z",
        "properties": {"path": path, "url": f"https://www.example.com{path}", "title": path},
        "context": {"userAgent": "Mozilla/5.0 (bench)", "page": {"referrer": "https://search.example"}},
    }


def ingest_cpu_ms(events_per_request: int, repeats: int = 300) -> tuple[float, int]:
    """CPU to decode, validate, normalise and pack one request (best of `repeats`), and the message bytes."""
    body = {"batch": [_segment_message(n) for n in range(events_per_request)]}
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    now = datetime(2026, 1, 5, 9, 0, 1, tzinfo=UTC)
    best = math.inf
    bodies: list[str] = []
    for _ in range(repeats):
        started = time.process_time()
        parsed = segment_request.decode_body(raw, headers)
        events = segment.parse_call("batch", parsed, source="bench", received_at=now)
        bodies = pack(events)
        best = min(best, time.process_time() - started)
    return best * 1e3, sum(len(b.encode()) for b in bodies)


class _CannedBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


@cache  # measured once per run: every function's calls use it
def client_call_cpu_ms(repeats: int = 10, calls: int = 50) -> float:
    """botocore's CPU for one AWS call (build, serialize, SigV4-sign, parse the answer; best of `repeats`),
    the mean of a DynamoDB GetItem and an SQS SendMessage: the ingest function's two calls. The send is
    answered in-process (botocore's before-send hook), so neither network nor TLS CPU is in it."""
    import boto3  # noqa: PLC0415 - only this measurement needs a client
    from botocore.awsrequest import AWSResponse  # noqa: PLC0415

    def canned(answer: dict[str, Any]) -> Any:
        body = json.dumps(answer).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "bench"}
        return lambda request, **_: AWSResponse(request.url, 200, headers, _CannedBody(body))

    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    dynamodb, sqs = session.client("dynamodb"), session.client("sqs")
    key = {"key_id": {"S": "k"}, "role": {"S": "tracking"}, "account": {"S": "acme"}}
    dynamodb.meta.events.register("before-send.dynamodb.GetItem", canned({"Item": key}))
    sqs.meta.events.register("before-send.sqs.SendMessage", canned({"MessageId": "bench"}))
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/leadloop-prod-events"
    body = pack(
        [segment.parse_call("page", _segment_message(0), source="bench", received_at=datetime.now(UTC))[0]]
    )
    each = (
        lambda: dynamodb.get_item(TableName="leadloop-prod-keys", Key={"key_id": {"S": "bench"}}),
        lambda: sqs.send_message(QueueUrl=queue, MessageBody=body[0]),
    )
    means = []
    for call in each:
        call()
        best = math.inf
        for _ in range(repeats):
            started = time.process_time()
            for _ in range(calls):
                call()
            best = min(best, (time.process_time() - started) / calls)
        means.append(best * 1e3)
    return sum(means) / len(means)


def _streamed_write(n: int) -> dict[str, Any]:
    """One prospect write as Lambda hands it to the dispatcher: a profile with some history, and a routing's
    outbox (activity and scoreboard counts)."""
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    p = Prospect(lead_id=f"lead-{n}", created_at=at - timedelta(days=30), email=f"p{n}@bigco.example")
    p.anonymous_ids = [f"anon-{n}-{k}" for k in range(5)]
    p.traits = {"name": "Grace Hopper", "company": "BigCo", "title": "VP Engineering", "employees": 1200}
    outbox = encode(
        [
            RecordActivity(at, "state_changed", "leadloop", {"from": "engaged", "to": "sales_ready"}),
            RecordActivity(at, "assigned", "leadloop", {"owner": "ada@example.com", "team": "enterprise"}),
            CountOnScoreboard(at, {"routed": 1.0, "assign:team:enterprise": 1.0}),
        ]
    )
    assert outbox is not None
    image = {
        "lead_id": {"S": p.lead_id},
        "version": {"N": "7"},
        "doc": {"B": base64.b64encode(pack_doc(prospect_to_doc(p))).decode()},
        "outbox": {"B": base64.b64encode(outbox).decode()},
    }
    return {"eventName": "MODIFY", "dynamodb": {"NewImage": image, "SequenceNumber": str(n)}}


def dispatcher_cpu_ms(repeats: int = 300) -> float:
    """CPU the dispatcher spends on one stream record before its first call (best of `repeats`): decode the
    record, the profile and the outbox."""
    record = _streamed_write(1)
    best = math.inf
    for _ in range(repeats):
        started = time.process_time()
        for write in writes_with_effects([record]):
            prospect_from_doc(write.doc)
            decode(write.outbox)
        best = min(best, time.process_time() - started)
    return best * 1e3


@cache  # measured once per run: both traffic shapes read it
def archiver_cpu_ms_per_event(events: int = 2000, repeats: int = 5) -> float:
    """The archiver's CPU per event (best of `repeats`): unpack the worker's messages, group the events by
    day and shard, encode each object."""
    now = datetime(2026, 1, 5, 9, 0, 1, tzinfo=UTC)
    calls = {"batch": [_segment_message(n) for n in range(events)]}
    parsed = segment.parse_call("batch", calls, source="bench", received_at=now)
    items = [ArchivedEvent(f"L{n % 300}", event) for n, event in enumerate(parsed)]
    bodies = [body for start in range(0, events, 10) for body in pack_archived(items[start : start + 10])]
    best = math.inf
    for _ in range(repeats):
        started = time.process_time()
        held = [item for body in bodies for item in unpack_archived(body)]
        for objects in group_objects(held).values():
            encode_object(objects)
        best = min(best, time.process_time() - started)
    return best * 1e3 / events


def expected_objects(events: float, shards: int) -> float:
    """Day-and-shard objects a batch of `events` fills, each event's shard uniform (a hash of its lead)."""
    return PRICES["archive_days_per_batch"] * shards * (1 - (1 - 1 / shards) ** events)


def archiver_messages_per_run(events_per_message: float, message_bytes: float) -> float:
    """Messages an archiver run holds: its batch size, what its window brings at the assumed rate, or what
    fits Lambda's 6 MB invocation payload (message bodies only: SQS's envelope is not counted), the least."""
    arriving = PRICES["events_per_second"] / events_per_message * PRICES["archiver_window_seconds"]
    fitting = LAMBDA_PAYLOAD_BYTES / message_bytes
    return max(min(PRICES["archiver_messages_per_invocation"], arriving, fitting), 1.0)


def archive_parts(events_per_worker_invocation: float, worker_invocations: float) -> dict[str, float]:
    """Dollars per million events the archive adds, and what it would cost written by the worker itself."""
    million, shards = 1e6, PRICES["archive_shards"]
    message_bytes = events_per_worker_invocation * ARCHIVED_BYTES_PER_EVENT * 4 / 3  # base64
    sends = worker_invocations * math.ceil(message_bytes / SQS_PAYLOAD_CHUNK)
    messages = archiver_messages_per_run(events_per_worker_invocation, message_bytes)
    runs = worker_invocations / messages
    per_run = million / runs
    objects = expected_objects(per_run, shards)
    puts = runs * objects
    erased_keys = per_run * PRICES["archiver_erased_lookups_per_event"]
    erased_calls = math.ceil(erased_keys / 100)  # BatchGetItem takes 100 keys (archive_queue.BATCH_GET)
    run_ms = lambda_ms(
        "archive_events",
        per_run * archiver_cpu_ms_per_event() + (objects + erased_calls) * client_call_cpu_ms(),
        math.ceil(objects / 8) * PRICES["s3_round_trip_ms"] + erased_calls * PRICES["dynamodb_round_trip_ms"],
    )
    receives = worker_invocations / 10 * 2  # the poller's ReceiveMessage and DeleteMessageBatch, 10 a call
    direct_puts = worker_invocations * expected_objects(events_per_worker_invocation, shards)
    return {
        "sqs": (sends + receives) / million * PRICES["sqs_standard_per_million_requests"],
        "s3_puts": puts / 1e3 * PRICES["s3_put_per_thousand"],
        "lambda": _lambda_dollars(run_ms, runs, "archive_events"),
        "erased_reads": runs
        * erased_keys
        * 0.5
        / million
        * PRICES["dynamodb_on_demand_per_million_read_units"],
        "runs": runs,
        "messages_per_run": messages,
        "events_per_run": per_run,
        "events_per_object": per_run / objects,
        "written_by_the_worker_s3_puts_per_event": direct_puts / million,
        "written_by_the_worker_dollars": direct_puts / 1e3 * PRICES["s3_put_per_thousand"],
    }


def platform_log_bytes_per_invocation() -> int:
    return sum(len(line.encode()) + LOG_EVENT_METERING_BYTES for line in LAMBDA_PLATFORM_LINES)


@cache
def access_log_bytes_per_request() -> int:
    """One line of the ingest HTTP API's access log, its format read from infra/resources.yaml."""
    from infra.stage_template import RESOURCES_TEMPLATE, load_template

    stage = load_template(RESOURCES_TEMPLATE)["Resources"]["IngestHttpStage"]
    line = str(stage["Properties"]["AccessLogSettings"]["Format"])
    rendered = re.sub(r"\$context\.([A-Za-z.]+)", lambda m: ACCESS_LOG_VALUES[m.group(1)], line)
    return len(rendered.encode()) + LOG_EVENT_METERING_BYTES


def _log_dollars(total_bytes: float) -> float:
    return total_bytes / 1e9 * PRICES["cloudwatch_logs_per_gb_ingested"]


def lambda_ms(function: str, cpu_ms: float, wait_ms: float) -> float:
    """One invocation's duration on Lambda: CPU measured on one core here, slowed by the function's share of
    a vCPU (its memory, .chalice/config.json), plus the time it waits on AWS (the same at any memory)."""
    share = min(FUNCTION_MEMORY_MB[function] / PRICES["lambda_mb_per_vcpu"], 1.0)
    return cpu_ms / share + wait_ms


def _lambda_dollars(ms: float, invocations: float, function: str) -> float:
    billed_ms = math.ceil(ms)  # Lambda bills each invocation in whole milliseconds
    gb_seconds = billed_ms / 1e3 * FUNCTION_MEMORY_MB[function] / 1024 * invocations
    return (
        gb_seconds * PRICES["lambda_per_gb_second"]
        + invocations / 1e6 * PRICES["lambda_per_million_requests"]
    )


def scenario(events_per_request: int, storage: dict[str, Any]) -> dict[str, Any]:
    """Dollars per million events for one traffic shape, by component, at each front: the tracking URL (as
    deployed), the HTTP API and the REST API."""
    million = 1e6
    requests = million / events_per_request
    cpu_ms, message_bytes = ingest_cpu_ms(events_per_request)
    request_bytes = len(json.dumps({"batch": [_segment_message(n) for n in range(events_per_request)]}))
    http_metered = math.ceil(request_bytes / PRICES["api_gateway_http_metering_bytes"])
    call_ms = client_call_cpu_ms()
    # The write key's GetItem and the SQS send: their client CPU, then the wait.
    ingest_ms = lambda_ms(
        "ingest", cpu_ms + 2 * call_ms, PRICES["dynamodb_round_trip_ms"] + PRICES["sqs_round_trip_ms"]
    )
    sqs_sends = requests * math.ceil(message_bytes / SQS_PAYLOAD_CHUNK)

    # Worker: one SQS message per ingest request, ten messages per invocation.
    invocations = requests / PRICES["worker_messages_per_invocation"]
    events_per_invocation = million / invocations
    dynamo_requests_per_event = storage["requests_per_event"]
    worker_calls = events_per_invocation * dynamo_requests_per_event + 1  # and the batch's archive message
    worker_ms = lambda_ms(
        "apply_events",
        events_per_invocation * storage["worker_cpu_ms_per_event"] + worker_calls * call_ms,
        events_per_invocation * dynamo_requests_per_event * PRICES["dynamodb_round_trip_ms"]
        + PRICES["sqs_round_trip_ms"],
    )
    archive = archive_parts(events_per_invocation, invocations)
    sqs_worker = invocations * 2  # the event source mapping's ReceiveMessage and DeleteMessageBatch

    # Dispatcher: one stream record per prospect write; a write with effects of its own (not only counts,
    # which the count consumer moves) finds its mark (the fast path did it): one read.
    streamed = storage["prospect_writes_per_event"] * million
    polls = max(worker_ms / 1e3 * PRICES["stream_polls_per_second"] * PRICES["stream_shards"], 1.0)
    per_invocation = min(max(streamed / invocations / polls, 1.0), PRICES["dispatcher_batch_size"])
    dispatches = streamed / per_invocation
    record_ms = dispatcher_cpu_ms()
    dispatcher_ms = lambda_ms(
        "dispatch_effects",
        per_invocation * (record_ms + call_ms),
        per_invocation * PRICES["dynamodb_round_trip_ms"],
    )
    counter_ms = lambda_ms(
        "count_effects", per_invocation * record_ms + 2 * call_ms, 2 * PRICES["dynamodb_round_trip_ms"]
    )
    # Under load the count consumer's batches are full (app.count_effects: batch_size 100), one at a time
    # per shard: its time per record then is what bounds the stream it keeps up with (bench/projection.py).
    full = COUNT_CONSUMER_BATCH
    counter_ms_per_record_full = (
        lambda_ms("count_effects", full * record_ms + 2 * call_ms, 2 * PRICES["dynamodb_round_trip_ms"])
        / full
    )

    parts = {
        "ingest_lambda": _lambda_dollars(ingest_ms, requests, "ingest"),
        "worker_lambda": _lambda_dollars(worker_ms, invocations, "apply_events"),
        "sqs": (sqs_sends + sqs_worker) / million * PRICES["sqs_standard_per_million_requests"],
        "dynamodb_writes": storage["write_units_per_event"]
        * PRICES["dynamodb_on_demand_per_million_write_units"],
        "dynamodb_reads": (storage["read_units_per_event"] + WRITE_KEY_LOOKUP_READ_UNITS / events_per_request)
        * PRICES["dynamodb_on_demand_per_million_read_units"],
        "dispatcher_lambda": _lambda_dollars(dispatcher_ms, dispatches, "dispatch_effects"),
        # The stream's second reader (app.count_effects): the same batches, each one checkpoint read and one
        # transaction (their units are in the storage figures); its CPU per record taken as the
        # dispatcher's, which also unpacks the profile the counter never reads.
        "counter_lambda": _lambda_dollars(counter_ms, dispatches, "count_effects"),
        "dispatcher_reads": storage.get("dispatched_writes_per_event", streamed / million)
        * PRICES["dispatcher_mark_read_units"]
        * PRICES["dynamodb_on_demand_per_million_read_units"],
        "dynamodb_stream_reads": PRICES["dynamodb_streams_reads_by_lambda"],
        "archive_sqs": archive["sqs"],
        "archive_s3_puts": archive["s3_puts"],
        "archive_lambda": archive["lambda"],
        "archive_erased_reads": archive["erased_reads"],
    }
    invocations_logged = requests + invocations + 2 * dispatches + archive["runs"]
    parts["lambda_logs"] = _log_dollars(invocations_logged * platform_log_bytes_per_invocation())
    rest = requests / million * PRICES["api_gateway_rest_per_million_requests"]
    http = requests * http_metered / million * PRICES["api_gateway_http_per_million_requests"]
    http_logs = _log_dollars(requests * access_log_bytes_per_request())
    url = requests / million * PRICES["lambda_function_url_per_million_requests"]
    shared = sum(parts.values())
    return {
        "events_per_request": events_per_request,
        "ingest_cpu_ms_per_request": round(cpu_ms, 3),
        "aws_call_client_cpu_ms": round(call_ms, 3),
        "ingest_memory_mb": FUNCTION_MEMORY_MB["ingest"],
        "ingest_billed_ms_per_request": math.ceil(ingest_ms),
        "worker_billed_ms_per_invocation": math.ceil(worker_ms),
        "dispatcher_records_per_invocation": round(per_invocation, 1),
        "dispatcher_invocations_per_million_events": round(dispatches),
        "dispatcher_billed_ms_per_invocation": math.ceil(dispatcher_ms),
        "count_consumer_ms_per_record_full_batch": round(counter_ms_per_record_full, 3),
        "archive_messages_per_run": round(archive["messages_per_run"], 1),
        "archive_events_per_run": round(archive["events_per_run"]),
        "archive_events_per_object": round(archive["events_per_object"], 1),
        # Before the archive queue: the worker put one object per day and shard of each of its batches.
        "archive_written_by_the_worker": {
            "s3_puts_per_event": round(archive["written_by_the_worker_s3_puts_per_event"], 3),
            "dollars_per_million_events": round(archive["written_by_the_worker_dollars"], 4),
        },
        "dollars_per_million_events": {
            "api_gateway_rest": round(rest, 4),
            "api_gateway_http": round(http, 4),
            "api_gateway_http_access_logs": round(http_logs, 4),
            "function_url": round(url, 4),
            **{name: round(value, 4) for name, value in parts.items()},
            "total_with_rest_api": round(shared + rest, 4),
            "total_with_http_api": round(shared + http + http_logs, 4),
            "total_with_function_url": round(shared + url, 4),
            "total_as_deployed": round(shared + url, 4),  # the tracking URL
        },
        "front_as_deployed": "function_url",
    }


def measure(storage: dict[str, Any]) -> dict[str, Any]:
    """`storage` is bench.storage's batched_per_prospect result (10-event batches: conservative for
    server-side traffic, whose invocations carry up to 1,000 events and group more per prospect)."""
    batched = scenario(100, storage)
    browser = scenario(1, storage)
    return {
        "prices": PRICES,
        "server_side_batched_100": batched,
        "browser_1_per_request": browser,
        "target_dollars_per_million": TARGET_DOLLARS_PER_MILLION,
        "meets_target": batched["dollars_per_million_events"]["total_as_deployed"]
        <= TARGET_DOLLARS_PER_MILLION,
        "browser_target_dollars_per_million": BROWSER_TARGET_DOLLARS_PER_MILLION,
        "browser_meets_target": browser["dollars_per_million_events"]["total_as_deployed"]
        <= BROWSER_TARGET_DOLLARS_PER_MILLION,
    }

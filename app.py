"""Leadloop's HTTP routes and event handlers: parse, call one service, shape the answer."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from chalice import Chalice, CORSConfig, Cron, Rate, Response

from chalicelib import wiring
from chalicelib.adapters.archive_queue import ARCHIVER_BATCH, ARCHIVER_WINDOW_S
from chalicelib.adapters.tokens import REDIRECT, UNSUBSCRIBE, verify
from chalicelib.commands import SALES_ACTIONS, parse_command
from chalicelib.config import SEND_CONCURRENCY
from chalicelib.console.board_routes import routes as console_board_routes
from chalicelib.console.marketing_routes import routes as console_marketing_routes
from chalicelib.console.routes import routes as console_routes
from chalicelib.console.rules_routes import routes as console_rules_routes
from chalicelib.domain.lifecycle import State
from chalicelib.effects.dispatch import perform_streamed
from chalicelib.effects.stream_counts import count_stream_batch
from chalicelib.entrypoints.http import (
    ANY_BODY,
    answers,
    documented_errors,
    error_response,
    headers_of,
    html_response,
    json_body,
    json_response,
    lead_ref,
    query_number,
    wants_html,
)
from chalicelib.entrypoints.http_api_event import (
    as_function_url_answer,
    as_rest_proxy_event,
    from_function_url,
    function_url_as_rest_event,
)
from chalicelib.entrypoints.routes.accounts import routes as account_routes
from chalicelib.entrypoints.routes.bulk import routes as bulk_routes
from chalicelib.entrypoints.routes.lab import routes as lab_routes
from chalicelib.entrypoints.routes.marketing import routes as marketing_routes
from chalicelib.entrypoints.routes.privacy import routes as privacy_routes
from chalicelib.entrypoints.routes.sales_ops import routes as sales_ops_routes
from chalicelib.entrypoints.touch_worker import handle_touch_batch
from chalicelib.entrypoints.worker import handle_sqs_batch, write_archive_batch
from chalicelib.errors import MalformedInput, NotFound
from chalicelib.lab import compaction
from chalicelib.usecases.auth import READERS
from chalicelib.usecases.intake import public_request_url

app = Chalice(app_name="leadloop")
app.log.setLevel(logging.INFO)
app.register_blueprint(marketing_routes)
app.register_blueprint(sales_ops_routes)
app.register_middleware(documented_errors, "http")  # Chalice's own 405 in the documented error body
app.register_blueprint(bulk_routes)
app.register_blueprint(account_routes)
app.register_blueprint(console_routes)  # the console's HTML pages under /console
app.register_blueprint(console_board_routes)  # the scoreboard and activity feed pages
app.register_blueprint(console_marketing_routes)  # templates and nurture pages (marketing, admin)
app.register_blueprint(console_rules_routes)  # the rules editor and its backtest panel (marketing, admin)
app.register_blueprint(privacy_routes)
app.register_blueprint(lab_routes)  # the rules lab: backtests of a rules draft
QUEUE_NAME = os.environ.get("LEADLOOP_QUEUE_NAME", "leadloop-events")
TOUCHES_QUEUE_NAME = os.environ.get("LEADLOOP_TOUCHES_QUEUE_NAME", "leadloop-touches")  # infra/: the ARN
ARCHIVE_QUEUE_NAME = os.environ.get("LEADLOOP_ARCHIVE_QUEUE_NAME", "leadloop-archive")  # infra/: the ARN
# infra/ points the deployed trigger at the prospects table's stream; this default only names one for Chalice.
PROSPECTS_STREAM_ARN = os.environ.get(
    "LEADLOOP_PROSPECTS_STREAM_ARN",
    "arn:aws:dynamodb:us-east-1:000000000000:table/leadloop-prospects/stream/2026-01-01T00:00:00.000",
)
# What tracking clients send (shared/fixtures/tracking-clients): analytics.js and the Segment libraries send
# Authorization (Basic write key) and Content-Type, X-Retry-Count on every retry, Content-Encoding when they
# gzip. A browser preflights all but a simple Content-Type; a header missing here loses every such call.
TRACKING_CORS = CORSConfig(
    allow_origin="*",
    allow_headers=["Authorization", "Content-Type", "Content-Encoding", "X-Retry-Count"],
    max_age=86400,
)


def _request() -> Any:
    return app.current_request


@app.route("/health", methods=["GET"], content_types=ANY_BODY)
@answers
def health() -> Response:
    return json_response({"status": "ok", "stage": wiring.settings().stage})


# --- tracking (Segment HTTP Tracking API) ---


@app.route("/v1/{call}", methods=["POST"], cors=TRACKING_CORS, content_types=ANY_BODY)
@answers
def track(call: str) -> Response:
    wiring.intake_service().track(call, _request().raw_body or b"", headers_of(_request()))
    return json_response({"success": True})


# --- provider webhooks ---


def _webhook(provider: str) -> Response:
    request = _request()
    path = str((request.context or {}).get("path") or "")
    url = public_request_url(wiring.settings().public_url, path, dict(request.query_params or {}))
    result = wiring.intake_service().webhook(
        provider, request.raw_body or b"", headers_of(_request()), method=request.method, url=url
    )
    answer: dict[str, Any] = {"received": result.events}
    if provider == "ses":  # only SNS (behind the SES webhook) asks for its subscription to be confirmed
        answer["confirmed_subscription"] = result.confirmed_subscription
    return json_response(answer)


@app.route("/webhooks/{provider}", methods=["POST"], content_types=ANY_BODY)
@answers
def provider_webhook(provider: str) -> Response:
    return _webhook(provider)


@app.route("/webhooks/crm/hubspot", methods=["POST"], content_types=ANY_BODY)
@answers
def hubspot_webhook() -> Response:
    return _webhook("hubspot")


# --- sales ---


@app.route("/leads", methods=["GET"], content_types=ANY_BODY)
@answers
def list_leads() -> Response:
    wiring.authenticator().bearer(headers_of(_request()), READERS)
    params = _request().query_params or {}
    state = params.get("state") or None
    if state is not None and state not in State.__members__.values():
        raise MalformedInput(f"unknown state {state!r}; states: {', '.join(s.value for s in State)}")
    limit = int(query_number(params, "limit", low=1, high=500) or 50)
    rows, cursor = wiring.prospects().list(
        state=state,
        owner=params.get("owner") or None,
        min_score=query_number(params, "min_score", low=-1e6, high=1e6),
        sla_status=_sla_filter(params.get("sla")),
        limit=limit,
        cursor=params.get("cursor"),
    )
    leads = [
        {
            "id": r.lead_id,
            "email": r.email,
            "name": r.name,
            "company": r.company,
            "state": r.state,
            "owner": r.owner,
            "score": r.score,
            "sla": r.sla_status,
        }
        for r in rows
    ]
    return json_response({"leads": leads, "next_cursor": cursor})


SLA_STATUSES = ("waiting", "escalated")


def _sla_filter(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in SLA_STATUSES:
        raise MalformedInput(f"unknown sla filter {value!r}; use one of: {', '.join(SLA_STATUSES)}")
    return value


@app.route("/leads/{ref}", methods=["GET"], content_types=ANY_BODY)
@answers
def lead_summary(ref: str) -> Response:
    wiring.authenticator().bearer(headers_of(_request()), READERS)
    return json_response(wiring.lead_service().summary(lead_ref(ref)))


@app.route("/leads/{ref}/{action}", methods=["POST"], content_types=ANY_BODY)
@answers
def lead_action(ref: str, action: str) -> Response:
    principal = wiring.authenticator().bearer(headers_of(_request()), ("sales", "admin"))
    if action not in SALES_ACTIONS:
        raise NotFound(f"unknown action {action!r}; actions: {', '.join(SALES_ACTIONS)}")
    command = parse_command(action, json_body(_request().raw_body, required=False))
    # The audit trail names the authenticated key, always: a body can add a note, never an actor.
    return json_response(
        wiring.lead_service().command(lead_ref(ref), action, command.properties(), principal.name)
    )


# --- links in emails ---


@app.route("/unsubscribe/{token}", methods=["GET", "POST"], content_types=ANY_BODY)
@answers
def unsubscribe(token: str) -> Response:
    payload = verify(UNSUBSCRIBE, token, wiring.settings().signing_secret)
    request = _request()
    if request.method == "GET":
        # Link scanners and previews GET every link (RFC 8058 section 4): a GET asks, only a POST decides.
        return html_response(
            "Unsubscribe?",
            "Press the button to stop receiving these emails.",
            form_action=token,
            button="Unsubscribe",
        )
    wiring.lead_service().unsubscribe(str(payload.get("l")))  # the one-click POST, or the page's button
    if wants_html(request.headers.get("accept")):
        return html_response("You are unsubscribed", "You will not receive further emails from us.")
    return json_response({"unsubscribed": True})


@app.route("/r/{token}", methods=["GET"], content_types=ANY_BODY)
@answers
def redirect(token: str) -> Response:
    payload = verify(REDIRECT, token, wiring.settings().signing_secret)
    wiring.lead_service().record_click(payload)
    return Response(body="", status_code=302, headers={"Location": str(payload["u"])})


# --- the ingest function ---

# API Gateway sends these routes to the `ingest` function, not the API function, and browsers reach its
# tracking route at the tracking URL too (infra/resources.yaml). Its role may read keys, remember webhook
# nonces, read the secrets parameter and enqueue, nothing else: a flaw in parsing untrusted tracking or
# webhook bytes cannot write a profile.
INGEST_ROUTES = frozenset({"/v1/{call}", "/webhooks/{provider}", "/webhooks/crm/hubspot"})


@app.lambda_function(name="ingest")
def ingest(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The same routing as the API function, for the ingest routes only; any other route is a 404. The
    tracking URL (a function URL) serves tracking only and is answered in its own format."""
    if from_function_url(event):
        front = "the tracking URL, which serves POST /v1/{call} only (webhooks: the stack's IngestUrl)"
        return as_function_url_answer(_ingest(function_url_as_rest_event(event), context, front))
    return _ingest(as_rest_proxy_event(event), context, "the ingest function")


def _ingest(event: dict[str, Any], context: Any, front: str) -> dict[str, Any]:
    route = (event.get("requestContext") or {}).get("resourcePath")  # what Chalice routes on
    if route not in INGEST_ROUTES:
        served = str(route or (event.get("requestContext") or {}).get("path"))[:200]  # echoed: bounded
        return error_response(NotFound(f"{served!r} is not served by {front}")).to_dict()
    return dict(app(event, context))


# --- the rules lab's backtest workflow on AWS (infra/backtest_workflow.asl.json) ---


@app.lambda_function(name="backtest_shard")
def backtest_shard(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One Distributed Map child: one archive shard's slice of leads replayed, its rows written to S3."""
    return wiring.backtest_service().run_part(str(event["job"]), str(event["shard"]), int(event["slice"]))


@app.lambda_function(name="backtest_merge")
def backtest_merge(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The workflow's last step: the parts merged into the job's report, or the Map's failure recorded."""
    return wiring.backtest_service().merge(str(event["job"]), event.get("error"))


@app.schedule(Cron(30, 3, "*", "*", "?", "*"))  # daily, well after midnight UTC: yesterday is complete
def compact_archive(event: Any, context: Any) -> dict[str, object]:
    """The archive's past days merged into one object per day and shard (chalicelib/lab/compaction.py)."""
    blobs = wiring.archive_blobs()
    if blobs is None:
        return {"skipped": "no event archive on this stage"}
    erased = wiring.erased_leads().among_now
    return compaction.compact_archive(blobs, datetime.now(UTC).date(), erased=erased).as_dict()


# --- event handlers ---


@app.on_sqs_message(queue=QUEUE_NAME, batch_size=10)
def apply_events(event: Any) -> dict[str, Any]:
    return handle_sqs_batch(
        event.to_dict(), wiring.lead_service(), wiring.dead_letters(), wiring.archive_writer()
    )


# Up to ARCHIVER_BATCH of the worker's archive messages (each a worker batch's applied events), gathered for
# at most ARCHIVER_WINDOW_S: thousands of events share each day-and-shard object (chalicelib/adapters/
# archive_queue.py says why these sizes, and what they cost in archive latency).
@app.on_sqs_message(
    queue=ARCHIVE_QUEUE_NAME, batch_size=ARCHIVER_BATCH, maximum_batching_window_in_seconds=ARCHIVER_WINDOW_S
)
def archive_events(event: Any) -> dict[str, Any]:
    archive = wiring.event_archive()
    if archive is None:
        raise RuntimeError("archive messages but no event archive configured (LEADLOOP_ARCHIVE_BUCKET)")
    return write_archive_batch(event.to_dict().get("Records", []), archive, wiring.erased_leads().among)


@app.on_dynamodb_record(stream_arn=PROSPECTS_STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def dispatch_effects(event: Any) -> dict[str, int]:
    """Every prospect write's outbox, performed until done (raising makes Lambda retry the batch)."""
    return {"writes": perform_streamed(wiring.dispatcher(), event.to_dict().get("Records", []))}


# The same stream, a second reader: counts moved once per stream batch (chalicelib/effects/stream_counts.py).
# infra/resources.yaml gives its event source a tumbling window (the event then names its shard) and no
# parallelisation (a shard's batches in order); the checkpoint makes a retried batch count once.
@app.on_dynamodb_record(stream_arn=PROSPECTS_STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def count_effects(event: Any) -> dict[str, Any]:
    counted = count_stream_batch(wiring.counters(), event.to_dict())
    if counted["writes"]:
        app.log.info("stream counts: %s", json.dumps(counted))
    return {"state": {}}  # a tumbling window's answer: its state is not used


@app.schedule(Rate(1, unit=Rate.MINUTES))
def send_due_touches(event: Any) -> dict[str, int]:
    """The nurture sweep: due leads onto the touches queue (without one, sent here, one after another)."""
    fanout = wiring.touch_fanout()
    counts = fanout.sweep() if fanout is not None else wiring.nurture_service().send_due()
    if counts["due"]:
        app.log.info("nurture sweep: %s", json.dumps(counts))
    return counts


# One touches message (up to 10 due leads) per invocation, paced to its share of the SES rate.
@app.on_sqs_message(queue=TOUCHES_QUEUE_NAME, batch_size=1, maximum_concurrency=SEND_CONCURRENCY)
def send_touches(event: Any) -> dict[str, Any]:
    return handle_touch_batch(event.to_dict(), wiring.nurture_service())

"""Routes both teams share around the handoff: the audit feed, the scoreboard, reassigning a lead's owner,
and the costs the scoreboard weighs revenue against."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.commands import parse_command
from chalicelib.entrypoints.http import (
    ANY_BODY,
    answers,
    body_bytes,
    headers_of,
    json_body,
    json_response,
    lead_ref,
    query_number,
)
from chalicelib.errors import MalformedInput
from chalicelib.usecases.auth import READERS
from chalicelib.usecases.scoreboard import parse_day

routes = Blueprint(__name__)

SALES_WRITERS = ("sales", "admin")
COST_WRITERS = ("marketing", "sales", "admin")


def _params() -> dict[str, str]:
    return dict(routes.current_request.query_params or {})


def _body() -> dict[str, Any]:
    return json_body(body_bytes(routes.current_request))


def _moment(value: str | None, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedInput(f"query parameter {name!r} must be an ISO 8601 time, got {value!r}") from None
    if not 2000 <= moment.year <= 2999:
        raise MalformedInput(f"query parameter {name!r} must be a time between the years 2000 and 2999")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@routes.route("/activity", methods=["GET"], content_types=ANY_BODY)
@answers
def activity() -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), READERS)
    params = _params()
    return json_response(
        wiring.lead_service().activity_feed(
            lead=params.get("lead") or None,
            actor=params.get("actor") or None,
            since=_moment(params.get("since"), "since"),
            until=_moment(params.get("until"), "until"),
            limit=int(query_number(params, "limit", low=1, high=1000) or 100),
        )
    )


@routes.route("/metrics", methods=["GET"], content_types=ANY_BODY)
@answers
def metrics() -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), READERS)
    params = _params()
    start, end = parse_day(params.get("from"), "from"), parse_day(params.get("to"), "to")
    return json_response(wiring.scoreboard().report(start, end))


@routes.route("/leads/{ref}/reassign", methods=["POST"], content_types=ANY_BODY)
@answers
def reassign(ref: str) -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), SALES_WRITERS)
    command = parse_command("reassign", _body())
    # The audit trail names the authenticated key, always: a body can add a note, never an actor.
    return json_response(
        wiring.lead_service().command(lead_ref(ref), "reassign", command.properties(), principal.name)
    )


@routes.route("/costs/{source}/{month}", methods=["PUT"], content_types=ANY_BODY)
@answers
def put_cost(source: str, month: str) -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), COST_WRITERS)
    body = _body()
    return json_response(wiring.scoreboard().set_cost(source, month, body, principal.name))

"""Routes for bulk data: import leads from a CSV file (marketing, admin), export the pool as CSV (readers).

Both paths sit beside `/leads/{ref}`; a static path wins over a path parameter both in Chalice's matcher
(static routes sort first) and in API Gateway (an exact resource is preferred to `{ref}`), so a lead whose
userId is literally `import` or `export.csv` is reached by its lead id or email instead.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.domain.lifecycle import State
from chalicelib.entrypoints.http import ANY_BODY, answers, headers_of, json_response, query_number
from chalicelib.errors import MalformedInput
from chalicelib.ingest.headers import header
from chalicelib.usecases.auth import READERS
from chalicelib.usecases.bulk import MAX_IMPORT_BYTES, BulkImport
from chalicelib.usecases.pool_export import export_csv

routes = Blueprint(__name__)

IMPORTERS = ("marketing", "admin")
SLA_STATUSES = ("waiting", "escalated")


def _time_left() -> Any:
    """Seconds this invocation has left (the function's timeout, locally as on AWS), or None to ignore."""
    context = routes.lambda_context
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return None if remaining is None else (lambda: remaining() / 1000)


@routes.route("/leads/import", methods=["POST"], content_types=["text/csv", *ANY_BODY])
@answers
def import_leads() -> Response:
    request = routes.current_request
    wiring.authenticator().bearer(headers_of(request), IMPORTERS)
    if (header(headers_of(request), "content-type") or "").lower().startswith("multipart/"):
        raise MalformedInput(
            "send the CSV file itself as the body (curl --data-binary @leads.csv), not a form"
        )
    from_line = int(query_number(request.query_params, "from_line", low=1, high=MAX_IMPORT_BYTES + 1) or 1)
    raw = request.raw_body or b""
    bulk = BulkImport(
        leads=wiring.lead_service(),
        identities=wiring.identities(),
        prospects=wiring.prospect_repository(),
        rules=wiring.rules(),
        clock=wiring.utc_now,
        time_left=_time_left(),
    )
    report = bulk.run(raw.encode() if isinstance(raw, str) else raw, from_line=from_line)
    return json_response(report.to_json())


@routes.route("/leads/export.csv", methods=["GET"], content_types=ANY_BODY)
@answers
def export_leads() -> Response:
    request = routes.current_request
    wiring.authenticator().bearer(headers_of(request), READERS)
    params: dict[str, str] = dict(request.query_params or {})
    state = params.get("state") or None
    if state is not None and state not in State.__members__.values():
        raise MalformedInput(f"unknown state {state!r}; states: {', '.join(s.value for s in State)}")
    sla = params.get("sla") or None
    if sla is not None and sla not in SLA_STATUSES:
        raise MalformedInput(f"unknown sla filter {sla!r}; use one of: {', '.join(SLA_STATUSES)}")
    filters = {
        "state": state,
        "owner": params.get("owner") or None,
        "min_score": query_number(params, "min_score", low=-1e6, high=1e6),
        "sla_status": sla,
    }
    export = export_csv(wiring.prospects(), filters, cursor=params.get("cursor") or None)
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="leads.csv"',
        "X-Leadloop-Rows": str(export.rows),
    }
    if export.next_cursor:
        headers["X-Leadloop-Next-Cursor"] = export.next_cursor
    return Response(body=export.text, status_code=200, headers=headers)

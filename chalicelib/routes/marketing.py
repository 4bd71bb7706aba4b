"""Marketing routes: templates (list, read, save with validation and versions, preview) and rules."""

from __future__ import annotations

from datetime import UTC, datetime

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.domain.sample import sample_prospect
from chalicelib.errors import MalformedInput
from chalicelib.http import answers, json_body, json_response

routes = Blueprint(__name__)


def _headers() -> dict[str, str]:
    return dict(routes.current_request.headers or {})


@routes.route("/templates", methods=["GET"])
@answers
def list_templates() -> Response:
    wiring.authenticator().bearer(_headers(), ("marketing", "admin", "sales"))
    templates = wiring.catalogue().all()
    return json_response(
        {
            "templates": [
                {
                    "name": t.meta.name,
                    "version": t.meta.version,
                    "subject": t.meta.subject,
                    "topics": t.meta.topics,
                    "stages": t.meta.stages,
                    "personas": t.meta.personas,
                    "priority": t.meta.priority,
                    "cooldown_days": t.meta.cooldown_days,
                    "recycle_reasons": t.meta.recycle_reasons,
                }
                for t in templates.values()
            ]
        }
    )


@routes.route("/templates/{name}/preview", methods=["POST"])
@answers
def preview_template(name: str) -> Response:
    wiring.authenticator().bearer(_headers(), ("marketing", "admin"))
    body = json_body(routes.current_request.raw_body)
    if "lead_id" in body:
        prospect = wiring.lead_service().prospect(str(body["lead_id"]))
    elif isinstance(body.get("sample"), dict):
        prospect = sample_prospect(body["sample"], datetime.now(UTC))
    else:
        raise MalformedInput("give either 'lead_id' or a 'sample' object")
    return json_response(wiring.nurture_service().preview(name, prospect))

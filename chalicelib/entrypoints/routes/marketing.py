"""Marketing routes: templates (list, read, save with validation and versions, pause/resume, delete,
preview) and rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.domain.sample import sample_prospect
from chalicelib.entrypoints.http import (
    ANY_BODY,
    MAX_API_BODY_BYTES,
    answers,
    body_bytes,
    headers_of,
    json_body,
    json_response,
    query_number,
)
from chalicelib.errors import MalformedInput
from chalicelib.usecases.auth import READERS
from chalicelib.usecases.marketing import body_text, expected_version, is_json_request

routes = Blueprint(__name__)

EDITORS = ("marketing", "admin")


def _raw() -> bytes:
    return body_bytes(routes.current_request)


def _version_param() -> int | None:
    number = query_number(routes.current_request.query_params, "version", low=0, high=1e9)
    return None if number is None else int(number)


def template_name(raw: str) -> str:
    """A template name from its path segment, percent-decoded once (as clients send it), so every answer
    names it as it was written."""
    try:
        return unquote(raw or "", errors="strict")
    except UnicodeDecodeError:
        raise MalformedInput("the template name is not percent-encoded UTF-8 text") from None


def _etag(answer: dict[str, Any]) -> dict[str, str]:
    return {"ETag": f'"{answer["version"]}"'}


@routes.route("/templates", methods=["GET"], content_types=ANY_BODY)
@answers
def list_templates() -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), READERS)
    params = routes.current_request.query_params
    status = params.get("status") if params else None
    return json_response({"templates": wiring.marketing_service().templates(status)})


@routes.route("/templates/{name}", methods=["GET"], content_types=ANY_BODY)
@answers
def read_template(name: str) -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), READERS)
    answer = wiring.marketing_service().template(template_name(name), _version_param())
    return json_response(answer, headers=_etag(answer))


@routes.route("/templates/{name}", methods=["PUT"], content_types=ANY_BODY)
@answers
def save_template(name: str) -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), EDITORS)
    raw = _raw()
    if is_json_request(headers_of(routes.current_request)):
        source = json_body(raw).get("source")
        if not isinstance(source, str) or not source.strip():
            raise MalformedInput("a JSON body needs 'source': the whole template text")
    else:
        source = body_text(raw, limit=MAX_API_BODY_BYTES)
    answer = wiring.marketing_service().save_template(
        template_name(name),
        source,
        principal.name,
        expected_version=expected_version(headers_of(routes.current_request)),
    )
    return json_response(answer, headers=_etag(answer))


@routes.route("/templates/{name}", methods=["PATCH"], content_types=ANY_BODY)
@answers
def change_template_status(name: str) -> Response:
    """{"status": "paused"} stops nurture choosing the template; {"status": "active"} resumes it."""
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), EDITORS)
    status = json_body(_raw()).get("status")
    if not isinstance(status, str):
        raise MalformedInput('the body needs "status": "paused" or "active"')
    service = wiring.marketing_service()
    return json_response(service.set_template_status(template_name(name), status, principal.name))


@routes.route("/templates/{name}", methods=["DELETE"], content_types=ANY_BODY)
@answers
def delete_template(name: str) -> Response:
    """Retires the template: never chosen again; its versions stay readable for audit."""
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), EDITORS)
    service = wiring.marketing_service()
    return json_response(service.set_template_status(template_name(name), "deleted", principal.name))


@routes.route("/templates/{name}/versions", methods=["GET"], content_types=ANY_BODY)
@answers
def template_versions(name: str) -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), READERS)
    return json_response(wiring.marketing_service().template_versions(template_name(name)))


@routes.route("/templates/{name}/preview", methods=["POST"], content_types=ANY_BODY)
@answers
def preview_template(name: str) -> Response:
    """The email the saved template (or, given `source`, an unsaved draft of it) makes for one prospect."""
    wiring.authenticator().bearer(headers_of(routes.current_request), EDITORS)
    name = template_name(name)
    body = json_body(_raw())
    if "lead_id" in body:
        prospect = wiring.lead_service().prospect(str(body["lead_id"]))
    elif isinstance(body.get("sample"), dict):
        prospect = sample_prospect(body["sample"], datetime.now(UTC))
    else:
        raise MalformedInput("give either 'lead_id' or a 'sample' object")
    draft = body.get("source")
    if draft is None:  # a paused template can be previewed too, before it is resumed
        return json_response(wiring.marketing_service().preview_saved(name, prospect))
    if not isinstance(draft, str):
        raise MalformedInput("'source' must be the whole template text")
    return json_response(wiring.marketing_service().preview_draft(name, draft, prospect))


@routes.route("/rules", methods=["GET"], content_types=ANY_BODY)
@answers
def read_rules() -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), READERS)
    answer = wiring.marketing_service().rules(_version_param())
    return json_response(answer, headers=_etag(answer))


@routes.route("/rules", methods=["PUT"], content_types=ANY_BODY)
@answers
def save_rules() -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), EDITORS)
    text = body_text(_raw(), limit=MAX_API_BODY_BYTES)
    headers = headers_of(routes.current_request)
    answer = wiring.marketing_service().save_rules(
        text, principal.name, as_json=is_json_request(headers), expected_version=expected_version(headers)
    )
    return json_response(answer, headers=_etag(answer))


@routes.route("/rules/versions", methods=["GET"], content_types=ANY_BODY)
@answers
def rules_versions() -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), READERS)
    return json_response(wiring.marketing_service().rules_versions())

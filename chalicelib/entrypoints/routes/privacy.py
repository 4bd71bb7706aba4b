"""Routes for a person's data rights (admin only): erase a lead everywhere, export everything held about it.

`DELETE /leads/{ref}` shares its path with `GET /leads/{ref}` (another method); `GET /leads/{ref}/export`
sits beside `POST /leads/{ref}/{action}`: the static segment wins in Chalice's matcher and in API Gateway.
"""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.entrypoints.http import ANY_BODY, answers, headers_of, json_response, lead_ref

routes = Blueprint(__name__)

ADMINS = ("admin",)


@routes.route("/leads/{ref}", methods=["DELETE"], content_types=ANY_BODY)
@answers
def erase_lead(ref: str) -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), ADMINS)
    return json_response(wiring.privacy_service().erase(lead_ref(ref), principal.name))


@routes.route("/leads/{ref}/export", methods=["GET"], content_types=ANY_BODY)
@answers
def export_lead(ref: str) -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), ADMINS)
    # no-store: the answer is a person's whole record; no cache on the way may keep it.
    answer = wiring.privacy_service().export(lead_ref(ref), principal.name)
    return json_response(answer, headers={"Cache-Control": "no-store"})

"""Rules lab routes: start a backtest of a rules draft and read its status and report, shadow mode (README
"Rules lab"), and the competitor domains the rules learned from sales."""

from __future__ import annotations

from urllib.parse import unquote

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.entrypoints.http import ANY_BODY, answers, body_bytes, headers_of, json_body, json_response
from chalicelib.usecases.auth import READERS

routes = Blueprint(__name__)

LAB_USERS = ("marketing", "admin")


@routes.route("/rules/backtest", methods=["POST"], content_types=ANY_BODY)
@answers
def start_backtest() -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), LAB_USERS)
    answer = wiring.backtest_service().start(json_body(body_bytes(routes.current_request)))
    return json_response(answer, status=202)


@routes.route("/rules/backtest/{job_id}", methods=["GET"], content_types=ANY_BODY)
@answers
def read_backtest(job_id: str) -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), LAB_USERS)
    return json_response(wiring.backtest_service().status(job_id))


# --- shadow mode: a draft scored beside the live rules on live traffic (chalicelib/usecases/shadow.py) ---


@routes.route("/rules/shadow", methods=["PUT"], content_types=ANY_BODY)
@answers
def start_shadow() -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), LAB_USERS)
    body = json_body(body_bytes(routes.current_request))
    return json_response(wiring.shadow_service().start(body, principal.name))


@routes.route("/rules/shadow", methods=["GET"], content_types=ANY_BODY)
@answers
def read_shadow() -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), LAB_USERS)
    return json_response(wiring.shadow_service().status())


@routes.route("/rules/shadow/promote", methods=["POST"], content_types=ANY_BODY)
@answers
def promote_shadow() -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), LAB_USERS)
    return json_response(wiring.shadow_service().promote(principal.name))


@routes.route("/rules/shadow", methods=["DELETE"], content_types=ANY_BODY)
@answers
def discard_shadow() -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), LAB_USERS)
    return json_response(wiring.shadow_service().discard(principal.name))


# --- competitor domains the rules learned from sales (chalicelib/usecases/competitors.py) ---


@routes.route("/rules/competitors", methods=["GET"], content_types=ANY_BODY)
@answers
def learned_competitors() -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), READERS)
    return json_response(wiring.competitor_service().list())


@routes.route("/rules/competitors/{domain}", methods=["DELETE"], content_types=ANY_BODY)
@answers
def forget_competitor(domain: str) -> Response:
    principal = wiring.authenticator().bearer(headers_of(routes.current_request), LAB_USERS)
    return json_response(wiring.competitor_service().forget(unquote(domain), principal.name))

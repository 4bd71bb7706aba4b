"""Account routes: one account (a group call's groupId) as sales and marketing read it."""

from __future__ import annotations

from urllib.parse import unquote

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.domain.prospect import MAX_ID_CHARS
from chalicelib.entrypoints.http import ANY_BODY, answers, headers_of, json_response
from chalicelib.errors import MalformedInput
from chalicelib.usecases.auth import READERS

routes = Blueprint(__name__)


def _account_id(raw: str) -> str:
    """A groupId from a URL path segment: percent-decoded once (ids are the client's own, often with spaces
    or '@'), printable, at most MAX_ID_CHARS (no longer id is ever stored)."""
    try:
        account_id = unquote(raw or "", errors="strict").strip()
    except UnicodeDecodeError:
        raise MalformedInput("the account id is not percent-encoded UTF-8 text") from None
    if not account_id:
        raise MalformedInput("the account id is empty; use the groupId your group calls send")
    if len(account_id) > MAX_ID_CHARS or not account_id.isprintable():
        raise MalformedInput(f"the account id must be printable text of at most {MAX_ID_CHARS} characters")
    return account_id


@routes.route("/accounts/{account_id}", methods=["GET"], content_types=ANY_BODY)
@answers
def account(account_id: str) -> Response:
    wiring.authenticator().bearer(headers_of(routes.current_request), READERS)
    return json_response(wiring.account_service().show(_account_id(account_id)))

"""The console's routes under /console: sign-in and sign-out, the sales inbox, the lead page and its actions,
and the static files. Each route is a few lines: read the session, call the same use case the JSON API
calls, render a page. Refusals are pages too (a sign-in page for a missing or revoked key, a sentence for a
409), never a JSON body or a 500.

Only ids travel in URLs: the API key goes in a POSTed form, a search in a POSTed form (a name or an email in a
query string would land in access logs), and the session in an HttpOnly cookie.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.commands import parse_command
from chalicelib.console import pages, sessions, views
from chalicelib.console.sessions import Session
from chalicelib.domain.lifecycle import RECYCLE_REASONS
from chalicelib.entrypoints.http import ANY_BODY, MAX_API_BODY_BYTES, lead_ref
from chalicelib.errors import (
    Conflict,
    Forbidden,
    InvalidContent,
    LeadloopError,
    MalformedInput,
    NotFound,
    TooLarge,
    Unauthenticated,
)
from chalicelib.usecases.auth import READERS, Principal

log = logging.getLogger("leadloop.console")
routes = Blueprint(__name__)

SALES_WRITERS = ("sales", "admin")
# A form carries at most what the JSON API accepts, URL-encoded (which can triple it: every byte as %XX).
MAX_FORM_BYTES = 3 * MAX_API_BODY_BYTES
SIGN_IN = "/console/sign-in"


# --- request plumbing ---


def _headers() -> Mapping[str, str]:
    return routes.current_request.headers or {}


def _secure() -> bool:
    # API Gateway tells the function the scheme it was reached by; chalice local (http) sends nothing.
    return (_headers().get("x-forwarded-proto") or "").lower() == "https"


def _session() -> Session | None:
    return sessions.from_cookies(_headers().get("cookie"), wiring.settings().signing_secret, wiring.utc_now())


def _cookie(session: Session | None) -> dict[str, str]:
    if session is None:
        return {"Set-Cookie": sessions.cookie_header(None, max_age=0, secure=_secure())}
    value = sessions.encode(session, wiring.settings().signing_secret)
    max_age = max(0, session.expires - int(wiring.utc_now().timestamp()))
    return {"Set-Cookie": sessions.cookie_header(value, max_age=max_age, secure=_secure())}


def _form() -> dict[str, str]:
    raw = routes.current_request.raw_body or b""
    if len(raw) > MAX_FORM_BYTES:
        raise TooLarge("that form is too large")
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return dict(parse_qsl(text, keep_blank_values=True))


def _params() -> dict[str, str]:
    return dict(routes.current_request.query_params or {})


def _who(session: Session | None, allowed: tuple[str, ...]) -> Principal:
    return sessions.principal(wiring.keys(), session, allowed)


def _base(principal: Principal, session: Session) -> dict[str, Any]:
    return {"principal": principal, "nav": pages.nav_for(principal.role), "csrf": session.csrf}


def console_page(view: Callable[..., Response]) -> Callable[..., Response]:
    """A console route: a missing, expired or revoked session goes to sign-in (clearing the cookie); any other
    refusal is a page with the status and a sentence; anything unexpected is logged and a plain 500 page."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except Unauthenticated:
            return pages.redirect(SIGN_IN, _cookie(None))
        except LeadloopError as error:
            return _problem(error.status, error.message)
        except Exception:  # the outermost edge: logged with the route, never the form (it may hold a key)
            log.exception("unhandled error in console route %s", view.__name__)
            return _problem(500, "Something went wrong on our side; it was logged. Try again in a moment.")

    return wrapped


def _problem(status: int, message: str) -> Response:
    session = _session()
    principal = None
    if session is not None and session.key_hash is not None:
        try:
            principal = _who(session, READERS)
        except LeadloopError:
            principal = None
    context: dict[str, Any] = {
        "principal": principal,
        "nav": pages.nav_for(principal.role) if principal else [],
        "csrf": session.csrf if session else "",
        "status": status,
        "message": message,
    }
    return pages.render("problem.html.j2", context, status=status)


# --- sign-in and sign-out ---


@routes.route("/console", methods=["GET"], content_types=ANY_BODY)
@console_page
def console_home() -> Response:
    return pages.redirect("/console/leads")


@routes.route(SIGN_IN, methods=["GET"], content_types=ANY_BODY)
@console_page
def sign_in_page() -> Response:
    session = _session()
    if session is not None and session.key_hash is not None:
        try:
            _who(session, READERS)
            return pages.redirect("/console/leads")
        except LeadloopError:
            session = None  # revoked or no longer a console role: sign in again
    return _sign_in_form(None, 200)


def _sign_in_form(error: str | None, status: int) -> Response:
    session = sessions.anonymous(wiring.utc_now())
    context: dict[str, Any] = {"principal": None, "nav": [], "csrf": session.csrf, "error": error}
    return pages.render("sign_in.html.j2", context, status=status, headers=_cookie(session))


@routes.route(SIGN_IN, methods=["POST"], content_types=ANY_BODY)
@console_page
def sign_in() -> Response:
    form = _form()
    sessions.check_csrf(_session(), form.get("csrf"))
    try:
        key_hash, _ = sessions.sign_in(wiring.keys(), form.get("key", ""))
    except (Unauthenticated, Forbidden) as error:
        return _sign_in_form(error.message, error.status)
    return pages.redirect("/console/leads", _cookie(sessions.signed_in(key_hash, wiring.utc_now())))


@routes.route("/console/sign-out", methods=["POST"], content_types=ANY_BODY)
@console_page
def sign_out() -> Response:
    sessions.check_csrf(_session(), _form().get("csrf"))
    return pages.redirect(SIGN_IN, _cookie(None))


# --- the sales inbox ---


@routes.route("/console/leads", methods=["GET", "POST"], content_types=ANY_BODY)
@console_page
def inbox() -> Response:
    session = _session()
    principal = _who(session, READERS)
    assert session is not None
    params = _params()
    if routes.current_request.method == "POST":  # a search: its words stay out of the URL
        params = _form()
        sessions.check_csrf(session, params.get("csrf"))
    filters = views.InboxFilters.parse(params)
    now = wiring.utc_now()
    page = views.inbox(wiring.prospect_repository(), filters, params.get("cursor") or None, now)
    query = {k: v for k, v in params.items() if k in ("state", "owner", "sla", "min_score") and v}
    context = {
        **_base(principal, session),
        "filters": filters,
        "page": page,
        "now": now,
        "states": views.INBOX_STATES,
        "sla_filters": views.SLA_FILTERS,
        "next_href": None
        if page.next_cursor is None or filters.text
        else "/console/leads?" + urlencode({**query, "cursor": page.next_cursor}),
    }
    return pages.render("inbox.html.j2", context)


# --- the lead page ---


@routes.route("/console/leads/{ref}", methods=["GET"], content_types=ANY_BODY)
@console_page
def lead_page(ref: str) -> Response:
    session = _session()
    principal = _who(session, READERS)
    assert session is not None
    done = _params().get("done")
    return _lead(principal, session, lead_ref(ref), done=done if done in views.ACTION_DONE else None)


def _lead(
    principal: Principal,
    session: Session,
    ref: str,
    *,
    done: str | None = None,
    refusal: str | None = None,
    status: int = 200,
) -> Response:
    summary = wiring.lead_service().summary(ref)
    prospect = wiring.lead_service().prospect(summary["id"])
    now = wiring.utc_now()
    may_act = principal.role in SALES_WRITERS
    context = {
        **_base(principal, session),
        "lead": summary,
        "href": "/console/leads/" + quote(summary["id"], safe=""),
        "timeline": views.timeline(summary),
        "now": now,
        "next_touch": views.next_touch(prospect, wiring.nurture_service().choose, now),
        "decay": views.decay_chart(prospect, wiring.rules()(), now),
        "actions": views.actions_for(summary["state"]) if may_act else (),
        "may_act": may_act,
        "recycle_reasons": [(reason, views.RECYCLE_LABELS[reason]) for reason in RECYCLE_REASONS],
        "done": views.ACTION_DONE.get(done or ""),
        "refusal": refusal,
    }
    return pages.render("lead.html.j2", context, status=status)


@routes.route("/console/leads/{ref}/{action}", methods=["POST"], content_types=ANY_BODY)
@console_page
def lead_action(ref: str, action: str) -> Response:
    session = _session()
    form = _form()
    sessions.check_csrf(session, form.get("csrf"))
    principal = _who(session, SALES_WRITERS)
    assert session is not None
    if action not in views.ACTION_DONE:
        raise NotFound(f"there is no action {action!r}")
    lead = lead_ref(ref)
    try:
        body = views.command_fields(action, form, wiring.utc_now().date())
        command = parse_command(action, body)
        summary = wiring.lead_service().command(lead, action, command.properties(), principal.name)
    except (Conflict, MalformedInput, InvalidContent) as error:  # on the lead page, in sales' words
        return _lead(principal, session, lead, refusal=error.message, status=error.status)
    return pages.redirect("/console/leads/" + quote(summary["id"], safe="") + f"?done={action}")


# --- static files ---


@routes.route("/console/static/{name}", methods=["GET"], content_types=ANY_BODY)
def static(name: str) -> Response:
    answer = pages.static_file(name)
    if answer is None:
        return pages.render(
            "problem.html.j2",
            {"principal": None, "nav": [], "csrf": "", "status": 404, "message": "No such file."},
            status=404,
        )
    return answer

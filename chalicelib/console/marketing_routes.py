"""The console's marketing routes: the templates list, the template editor (live checks and preview, save with
its version, versions with a diff and restore, pause/resume/delete, a test send to yourself) and the nurture
view; the rules editor and its backtest panel are rules_routes.py's, which shares this module's helpers.
Marketing and admin keys only: a sales session is refused (403) on every one, and pages.NAV shows them no
entry.

Each route reads the session, calls the same use case the JSON API calls (usecases/marketing.py,
usecases/nurture_view.py) and renders a page; the plumbing (session, CSRF, forms, refusal pages) is
routes.py's. Only ids and version numbers travel in URLs; a lead's email is POSTed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.adapters.mail import OutgoingEmail
from chalicelib.console import marketing_views as mv
from chalicelib.console import pages
from chalicelib.console import routes as console
from chalicelib.console.sessions import Session, check_csrf
from chalicelib.domain.messaging import Choice, choose_next_message
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.sample import sample_prospect
from chalicelib.entrypoints.http import ANY_BODY, lead_ref
from chalicelib.entrypoints.routes.marketing import template_name
from chalicelib.errors import Conflict, InvalidContent, MalformedInput, NotFound
from chalicelib.usecases import nurture_view
from chalicelib.usecases.auth import Principal

routes = Blueprint(__name__)

EDITORS = ("marketing", "admin")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,60}$")


def _editor() -> tuple[Principal, Session]:
    session = console._session()
    principal = console._who(session, EDITORS)
    assert session is not None
    return principal, session


def _posted() -> tuple[Principal, Session, dict[str, str]]:
    """A marketing form: its CSRF token checked before anything else, then the role."""
    session = console._session()
    form = console._form()
    check_csrf(session, form.get("csrf"))
    principal = console._who(session, EDITORS)
    assert session is not None
    return principal, session, form


def _json(body: Mapping[str, Any], status: int = 200) -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        **pages.SECURITY_HEADERS,
    }
    return Response(body=json.dumps(body), status_code=status, headers=headers)


def _href(name: str) -> str:
    return "/console/templates/" + quote(name, safe="")


# --- the templates list ---


@routes.route("/console/templates", methods=["GET"], content_types=ANY_BODY)
@console.console_page
def templates_list() -> Response:
    principal, session = _editor()
    service = wiring.marketing_service()
    listing = service.templates() + service.templates("deleted")
    scoreboard = wiring.scoreboard()
    rows = mv.template_rows(listing, scoreboard.report()["messages"])
    return pages.render("templates_list.html.j2", {**console._base(principal, session), "rows": rows})


# --- the template editor ---


def _preview(name: str, source: str | None, lead: str) -> tuple[dict[str, Any] | None, str | None]:
    """The email the draft (or the template in force) makes for the lead with that email, or the sample;
    (None, why) when it cannot be made."""
    try:
        prospect = _prospect_for(lead)
        service = wiring.marketing_service()
        if source is None:
            return service.preview_saved(name, prospect), None
        return service.preview_draft(name, source, prospect), None
    except InvalidContent as error:
        return None, f"No preview until the problems are fixed: {error.message}"
    except (NotFound, MalformedInput) as error:
        return None, error.message


def _prospect_for(lead: str) -> Prospect:
    lead = lead.strip()
    if not lead:
        return sample_prospect({"first_name": "Sam", "company": "Example Co"}, wiring.utc_now())
    if "@" not in lead:
        raise MalformedInput("search a lead by its email address, or leave it empty for the sample")
    return wiring.lead_service().prospect(lead)


def _editor_page(
    principal: Principal,
    session: Session,
    name: str,
    *,
    source: str | None = None,
    base: int | None = None,
    problems: list[dict[str, Any]] | None = None,
    lead: str = "",
    preview: bool = False,
    params: Mapping[str, str] | None = None,
    done: str | None = None,
    refusal: str | None = None,
    status: int = 200,
) -> Response:
    service = wiring.marketing_service()
    current = service.template(name)
    history = service.template_versions(name)
    params = params or {}
    a, b = mv.version_param(params, "a"), mv.version_param(params, "b")
    shown_diff = None
    if a is not None and b is not None:
        old, new = service.template(name, a)["source"], service.template(name, b)["source"]
        shown_diff = mv.diff(old, new, f"version {a}", f"version {b}")
    text = current["source"] if source is None else source
    if problems is None:
        problems = mv.template_problems(wiring.renderer().validate(name, text, topics=_topics()))
    shown, preview_refused = (None, None)
    if preview:
        shown, preview_refused = _preview(name, None if source is None else text, lead)
    context = {
        **console._base(principal, session),
        "name": name,
        "href": _href(name),
        "template": current,
        "history": history,
        "source": text,
        "base": current["version"] if base is None else base,
        "problems": problems,
        "lines": text.split("\n"),
        "lead": lead,
        "preview": shown,
        "preview_refused": preview_refused,
        "diff": shown_diff,
        "a": a,
        "b": b,
        "status_actions": mv.STATUS_ACTIONS,
        "done": mv.TEMPLATE_DONE.get(done or ""),
        "refusal": refusal,
    }
    return pages.render("templates_edit.html.j2", context, status=status)


@routes.route("/console/templates/{name}", methods=["GET"], content_types=ANY_BODY)
@console.console_page
def template_editor(name: str) -> Response:
    principal, session = _editor()
    params = console._params()
    return _editor_page(principal, session, template_name(name), params=params, done=params.get("done"))


@routes.route("/console/templates/{name}", methods=["POST"], content_types=ANY_BODY)
@console.console_page
def template_save(name: str) -> Response:
    """Save (with the version the editor started from: a stale save is a sentence) or preview the draft."""
    principal, session, form = _posted()
    name = template_name(name)
    source, lead = form.get("source", ""), form.get("lead", "")
    base = mv.version_param(form, "version")
    if form.get("intent") == "preview":
        return _editor_page(principal, session, name, source=source, base=base, lead=lead, preview=True)
    try:
        saved = wiring.marketing_service().save_template(name, source, principal.name, expected_version=base)
    except InvalidContent as error:
        problems = mv.problems_of(error)
        refusal = f"Not saved: {len(problems)} problem(s), each shown at its line below."
        return _editor_page(
            principal, session, name, source=source, base=base, problems=problems, lead=lead,
            refusal=refusal, status=422,
        )  # fmt: skip
    except Conflict as error:
        return _editor_page(
            principal, session, name, source=source, base=base, lead=lead, refusal=error.message, status=409
        )
    return pages.redirect(_href(name) + ("?done=unchanged" if saved["unchanged"] else "?done=saved"))


@routes.route("/console/templates/{name}/check", methods=["POST"], content_types=ANY_BODY)
@console.console_page
def template_check(name: str) -> Response:
    """The editor's live check as you type: the save's own checks (every problem with its line) and, when
    the draft passes, its preview for the lead or the sample."""
    _, _, form = _posted()
    name = template_name(name)
    source = form.get("source", "")
    problems = mv.template_problems(wiring.renderer().validate(name, source, topics=_topics()))
    preview, why = (None, None)
    if not problems:
        preview, why = _preview(name, source, form.get("lead", ""))
    return _json({"problems": problems, "preview": preview, "preview_refused": why})


def _topics() -> frozenset[str]:
    return frozenset(topic.topic for topic in wiring.rules()().topics)


@routes.route("/console/templates/{name}/restore", methods=["POST"], content_types=ANY_BODY)
@console.console_page
def template_restore(name: str) -> Response:
    principal, session, form = _posted()
    name = template_name(name)
    wanted, base = mv.version_param(form, "restore"), mv.version_param(form, "version")
    if wanted is None:
        raise MalformedInput("choose the version to restore")
    service = wiring.marketing_service()
    source = service.template(name, wanted)["source"]
    try:
        service.save_template(name, source, principal.name, expected_version=base)
    except Conflict as error:
        return _editor_page(principal, session, name, refusal=error.message, status=409)
    return pages.redirect(_href(name) + "?done=restored")


@routes.route("/console/templates/{name}/status", methods=["POST"], content_types=ANY_BODY)
@console.console_page
def template_status(name: str) -> Response:
    principal, session, form = _posted()
    name = template_name(name)
    wanted = form.get("status", "")
    if wanted not in mv.STATUS_ACTIONS:
        raise MalformedInput(f"status must be one of {', '.join(mv.STATUS_ACTIONS)}")
    try:
        wiring.marketing_service().set_template_status(name, wanted, principal.name)
    except Conflict as error:
        return _editor_page(principal, session, name, refusal=error.message, status=409)
    return pages.redirect(_href(name) + f"?done={wanted}")


@routes.route("/console/templates/{name}/test", methods=["POST"], content_types=ANY_BODY)
@console.console_page
def template_test(name: str) -> Response:
    """The template in force, made for the sample prospect, sent to the address given (yours): through the
    mailer the sweep uses (the outbox locally), outside nurture, so it counts on no scoreboard."""
    principal, session, form = _posted()
    name = template_name(name)
    to = form.get("to", "").strip()
    if not EMAIL.match(to):
        return _editor_page(
            principal, session, name, refusal="Give your email address for the test.", status=400
        )
    now = wiring.utc_now()
    prospect = sample_prospect({"email": to, "first_name": "Sam", "company": "Example Co"}, now)
    made = wiring.marketing_service().preview_saved(name, prospect)
    email = OutgoingEmail(
        to=to,
        sender=made["from"],
        subject=f"[Test] {made['subject']}",
        html=made["html"],
        text=made["text"],
        headers=made["headers"],
        tags={"kind": "test", "template": name},
    )
    wiring.mailer().send(email, now)
    return pages.redirect(_href(name) + "?done=tested")


# --- the nurture view ---


@routes.route("/console/nurture", methods=["GET", "POST"], content_types=ANY_BODY)
@console.console_page
def nurture() -> Response:
    """For a lead (found by its email, POSTed): every template's verdict and the next one; for a template:
    the leads due soon who would get it."""
    refusal, status = None, 200
    if console.routes.current_request.method == "POST":
        principal, session, form = _posted()
        try:
            found = wiring.lead_service().prospect(_lead_email(form.get("email", "")))
            return pages.redirect("/console/nurture?lead=" + quote(found.lead_id, safe=""))
        except (NotFound, MalformedInput) as error:
            refusal, status = error.message, error.status
    else:
        principal, session = _editor()
    params = console._params() if refusal is None else {}
    now = wiring.utc_now()
    templates = wiring.templates()()
    rules = wiring.rules()()
    evidence = wiring.nurture_service().evidence()
    plan, due, more, plan_for = None, None, False, ""
    if params.get("lead"):
        p = wiring.lead_service().prospect(lead_ref(params["lead"]))
        plan = nurture_view.plan_for_lead(p, templates, rules, now, evidence)
        plan_for = " · ".join(part for part in (p.name, p.email) if part) or p.lead_id
    chosen = params.get("template") or ""
    if chosen:
        if chosen not in templates:
            raise NotFound(f"no template named {chosen!r}")
        active = [t.meta for t in templates.values() if t.status.value == "active"]

        def choose(p: Prospect, at: Any) -> Choice | None:
            found = choose_next_message(p, active, rules, at, evidence=evidence)
            return found if isinstance(found, Choice) else None

        due, more = nurture_view.due_for_template(chosen, wiring.prospect_repository(), choose, now)
    context = {
        **console._base(principal, session),
        "plan": plan,
        "plan_for": plan_for,  # who the plan is for, as a marketer knows them
        "template_names": sorted(templates),
        "chosen": chosen,
        "due": due,
        "more": more,
        "horizon_days": nurture_view.DUE_HORIZON.days,
        "refusal": refusal,
    }
    return pages.render("nurture.html.j2", context, status=status)


def _lead_email(value: str) -> str:
    value = value.strip()
    if not value or "@" not in value or len(value) > 254:
        raise MalformedInput("search a lead by its email address")
    return value

"""The console's rules pages: the rules editor (live checks, save with its version, versions with a diff),
the competitor domains the rules learned from sales (remove one), and the rules lab beside it, a backtest
of the draft in the editor with its report in a panel. Marketing and admin keys only, like the rest of
marketing_routes.py, whose session and form helpers these routes share.

Each route calls the same use case the JSON API calls (usecases/marketing.py, usecases/backtest.py) and
renders rules.html.j2; only a backtest job's id travels in a URL, the draft it tested kept by BACKTEST_DRAFTS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.console import marketing_views as mv
from chalicelib.console import pages
from chalicelib.console import routes as console
from chalicelib.console.marketing_routes import _editor, _json, _posted
from chalicelib.console.sessions import Session
from chalicelib.entrypoints.http import ANY_BODY
from chalicelib.errors import Conflict, InvalidContent, MalformedInput, NotFound
from chalicelib.usecases.auth import Principal
from chalicelib.usecases.backtest import ArchiveNotConfigured

routes = Blueprint(__name__)


# --- the rules editor ---


def _rules_page(
    principal: Principal,
    session: Session,
    *,
    source: str | None = None,
    base: int | None = None,
    params: Mapping[str, str] | None = None,
    done: bool = False,
    refusal: str | None = None,
    status: int = 200,
    window: tuple[str, str] | None = None,
    backtest: dict[str, Any] | None = None,
) -> Response:
    service = wiring.marketing_service()
    current = service.rules()
    params = params or {}
    a, b = mv.version_param(params, "a"), mv.version_param(params, "b")
    shown_diff = None
    if a is not None and b is not None:
        shown_diff = mv.diff(
            service.rules(a)["source"], service.rules(b)["source"], f"version {a}", f"version {b}"
        )
    text = current["source"] if source is None else source
    context = {
        **console._base(principal, session),
        "current": current,
        "versions": service.rules_versions()["versions"],
        "source": text,
        "base": current["version"] if base is None else base,
        "problems": mv.rules_problems(text),
        "lines": text.split("\n"),
        "diff": shown_diff,
        "a": a,
        "b": b,
        "done": done,
        "refusal": refusal,
        "window": window or mv.backtest_window(wiring.utc_now().date()),
        "backtest": backtest,
        "competitors": wiring.competitor_service().list(),
        "forgotten": params.get("forgotten"),
    }
    return pages.render("rules.html.j2", context, status=status)


@routes.route("/console/rules", methods=["GET"], content_types=ANY_BODY)
@console.console_page
def rules_editor() -> Response:
    principal, session = _editor()
    params = console._params()
    backtest, source = None, None
    if params.get("backtest"):
        job_id = mv.backtest_id(params["backtest"])
        source = BACKTEST_DRAFTS.get(job_id)  # None: forgotten, the editor shows the rules in force
        backtest = mv.backtest_panel(job_id, _backtest_job(job_id), draft_kept=source is not None)
    done = params.get("done") == "saved"
    return _rules_page(principal, session, source=source, params=params, done=done, backtest=backtest)


@routes.route("/console/rules", methods=["POST"], content_types=ANY_BODY)
@console.console_page
def rules_save() -> Response:
    principal, session, form = _posted()
    source, base = form.get("source", ""), mv.version_param(form, "version")
    try:
        wiring.marketing_service().save_rules(source, principal.name, expected_version=base)
    except InvalidContent:
        refusal = "Not saved: the rules have problems, each shown at its line below."
        return _rules_page(principal, session, source=source, base=base, refusal=refusal, status=422)
    except Conflict as error:
        return _rules_page(principal, session, source=source, base=base, refusal=error.message, status=409)
    return pages.redirect("/console/rules?done=saved")


@routes.route("/console/rules/check", methods=["POST"], content_types=ANY_BODY)
@console.console_page
def rules_check() -> Response:
    _, _, form = _posted()
    return _json({"problems": mv.rules_problems(form.get("source", ""))})


@routes.route("/console/rules/competitors/forget", methods=["POST"], content_types=ANY_BODY)
@console.console_page
def rules_forget_competitor() -> Response:
    """Remove a competitor domain learned from sales (DELETE /rules/competitors/{domain}'s use case)."""
    principal, session, form = _posted()
    try:
        removed = wiring.competitor_service().forget(form.get("domain", ""), principal.name)
    except (MalformedInput, NotFound) as error:
        return _rules_page(principal, session, refusal=f"Not removed: {error.message}", status=error.status)
    return pages.redirect("/console/rules?forgotten=" + quote(removed["removed"], safe=""))


# --- the rules lab: a backtest of the draft in the editor, its report beside it ---

BACKTEST_DRAFTS = mv.BacktestDrafts()


def _backtest_job(job_id: str) -> dict[str, Any] | None:
    try:
        return wiring.backtest_service().status(job_id)
    except NotFound:
        return None  # forgotten (or kept by another process): the panel says so


@routes.route("/console/rules/backtest", methods=["POST"], content_types=ANY_BODY)
@console.console_page
def rules_backtest() -> Response:
    """Start a backtest of the draft in the editor through the API's own use case, then show it (POST, then
    GET: a reload never starts another). A refused draft or window is shown on the editor, the draft kept."""
    principal, session, form = _posted()
    source, base = form.get("source", ""), mv.version_param(form, "version")
    window = (form.get("from", "").strip(), form.get("to", "").strip())
    try:
        started = wiring.backtest_service().start({"rules": source, "from": window[0], "to": window[1]})
    except InvalidContent as error:
        why = (
            "Not backtested: the draft has problems, each shown at its line below."
            if isinstance(error.details, list)
            else f"Not backtested: {error.message}"
        )
        return _rules_page(
            principal, session, source=source, base=base, refusal=why, status=422, window=window
        )
    except (MalformedInput, ArchiveNotConfigured) as error:
        return _rules_page(
            principal, session, source=source, base=base, refusal=f"Not backtested: {error.message}",
            status=error.status, window=window,
        )  # fmt: skip
    BACKTEST_DRAFTS.put(started["id"], source)
    return pages.redirect("/console/rules?backtest=" + quote(started["id"], safe=""))


@routes.route("/console/rules/backtest/{job_id}", methods=["GET"], content_types=ANY_BODY)
@console.console_page
def rules_backtest_status(job_id: str) -> Response:
    """What console.js polls: the job's status and progress, and once it ends the panel to show (the same
    template the page renders, so the report is drawn in one place)."""
    _editor()
    job_id = mv.backtest_id(job_id)
    job = _backtest_job(job_id)
    panel = mv.backtest_panel(job_id, job, draft_kept=BACKTEST_DRAFTS.get(job_id) is not None)
    body: dict[str, Any] = {"status": panel["status"], "progress": panel["percent"] / 100}
    if not panel["running"]:
        body["panel"] = pages.environment().get_template("_backtest.html.j2").render(backtest=panel)
    return _json(body)

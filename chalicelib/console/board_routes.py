"""The console's pages both teams share: the scoreboard (the report GET /metrics answers, for a date range,
drawn as charts with their tables) and the activity feed (GET /activity's entries, filtered and paged).
Sales, marketing and admin keys may read both; each route reads the session and refuses any other role.

Only dates, a kind, an actor's key name and lead ids travel in these URLs: never an email or a name.
"""

from __future__ import annotations

from urllib.parse import urlencode

from chalice import Blueprint, Response

from chalicelib import wiring
from chalicelib.console import board_views, pages
from chalicelib.console.routes import _base, _params, _session, _who, console_page
from chalicelib.entrypoints.http import ANY_BODY
from chalicelib.usecases.auth import READERS

routes = Blueprint(__name__)


@routes.route("/console/scoreboard", methods=["GET"], content_types=ANY_BODY)
@console_page
def scoreboard_page() -> Response:
    session = _session()
    principal = _who(session, READERS)
    assert session is not None
    params = _params()
    start, end = board_views.date_range(params, wiring.utc_now().date())
    report = wiring.scoreboard().report(start, end)
    context = {
        **_base(principal, session),
        "report": report,
        "headline": board_views.headline(report),
        "charts": board_views.scoreboard_charts(report),
        "presets": board_views.RANGE_PRESETS,
        "days": params.get("days") or "",
    }
    return pages.render("scoreboard.html.j2", context)


@routes.route("/console/activity", methods=["GET"], content_types=ANY_BODY)
@console_page
def activity_page() -> Response:
    session = _session()
    principal = _who(session, READERS)
    assert session is not None
    params = _params()
    filters = board_views.FeedFilters.parse(params)
    page = board_views.feed_page(wiring.lead_service().activity_feed, filters, params.get("cursor") or None)
    context = {
        **_base(principal, session),
        "filters": filters,
        "page": page,
        "kinds": board_views.FEED_KINDS,
        "next_href": None
        if page.next_cursor is None
        else "/console/activity?" + urlencode({**filters.query(), "cursor": page.next_cursor}),
    }
    return pages.render("activity.html.j2", context)

"""How a console page is answered: Jinja2 with autoescape always on (every value from a prospect is text,
never markup), the navigation a role may see, the security headers every console response carries, and the
static files (one stylesheet, one ES module) served by the same function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from chalice import Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

# No inline script or style anywhere: the console's JavaScript is one same-origin ES module. Forms post
# only to the console itself, and no page may be framed (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a lead page's URL never leaves for another site
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    roles: tuple[str, ...]


# The console's sections, each shown only to the roles that may use it. Marketing's pages (templates, rules,
# nurture view), the scoreboard and the activity feed join this list as they are built.
NAV: tuple[NavItem, ...] = (
    NavItem("Inbox", "/console/leads", ("sales", "marketing", "admin")),
    NavItem("Templates", "/console/templates", ("marketing", "admin")),
    NavItem("Rules", "/console/rules", ("marketing", "admin")),
    NavItem("Nurture", "/console/nurture", ("marketing", "admin")),
    NavItem("Scoreboard", "/console/scoreboard", ("sales", "marketing", "admin")),
    NavItem("Activity", "/console/activity", ("sales", "marketing", "admin")),
)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: prospect data is never markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["ago"] = ago
    env.filters["points"] = lambda value: f"{float(value):+g}"
    env.filters["score"] = lambda value: f"{float(value):g}"
    env.filters["words"] = lambda value: str(value or "").replace("_", " ")
    env.filters["moment"] = lambda value: datetime.fromisoformat(value) if value else None
    env.globals["ago"] = ago
    return env


def when(moment: datetime | str | None) -> str:
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(moment: datetime | None, now: datetime) -> str:
    """'in 3h 20m' or '2h 5m ago': the SLA countdown and last-seen, readable at a glance."""
    if moment is None:
        return "—"
    seconds = int((moment - now).total_seconds())
    minutes = abs(seconds) // 60
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if minutes == 0:
        return "just now"
    text = f"{days}d {hours}h" if days else f"{hours}h {mins}m" if hours else f"{mins}m"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def nav_for(role: str) -> list[NavItem]:
    return [item for item in NAV if role in item.roles]


def render(
    template: str, context: Mapping[str, Any], *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = environment().get_template(template).render(**context)
    return Response(
        body=body,
        status_code=status,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",  # pages hold prospect data: never kept by a shared cache
            **SECURITY_HEADERS,
            **(headers or {}),
        },
    )


def redirect(location: str, headers: Mapping[str, str] | None = None) -> Response:
    # 303: after a POST the browser GETs the next page, so a reload never re-sends an action.
    return Response(
        body="", status_code=303, headers={"Location": location, **SECURITY_HEADERS, **(headers or {})}
    )


def static_file(name: str) -> Response | None:
    """A file of console/static by its plain name (no folders), or None."""
    path = STATIC / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or "/" in name or name.startswith(".") or not path.is_file():
        return None
    return Response(
        body=path.read_text(),
        status_code=200,
        headers={"Content-Type": kind, "Cache-Control": "public, max-age=300", **SECURITY_HEADERS},
    )

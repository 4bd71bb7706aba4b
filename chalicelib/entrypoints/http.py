"""HTTP shaping for app.py: JSON answers, the documented error body, request parsing with clear 4xx.

Chalice middleware never sees exceptions raised in a route, so every route is wrapped by `answers`, which
maps Leadloop's errors to their status codes and turns anything unexpected into a logged 500.
"""

from __future__ import annotations

import functools
import html
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from chalice import Response

from chalicelib.errors import LeadloopError, MalformedInput, NotFound, TooLarge
from chalicelib.ingest import json_numbers

log = logging.getLogger("leadloop.http")

MAX_API_BODY_BYTES = 256 * 1024
# Bodies are parsed by Leadloop whatever they are labelled (curl's default is form-encoded, browsers send
# text/plain), so every route accepts any Content-Type ("*/*") rather than letting Chalice answer an
# undocumented 415; the named types document what is expected.
ANY_BODY = [
    "*/*",
    "application/json",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/markdown",
]
JSON = {"Content-Type": "application/json"}


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, default=str, separators=(",", ":")),
        status_code=status,
        headers={**JSON, **(headers or {})},
    )


def html_response(
    title: str, paragraph: str, *, form_action: str | None = None, button: str = ""
) -> Response:
    """A minimal page for people who follow a link: every value is escaped. With `form_action`, one form
    whose button POSTs `List-Unsubscribe=One-Click` there, the same body a mail client's one-click sends."""
    form = ""
    if form_action is not None:
        form = (
            f'<form method="post" action="{html.escape(form_action, quote=True)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{html.escape(button)}</button></form>'
        )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="robots" content="noindex"><meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(paragraph)}</p>{form}</body></html>"
    )
    # no-store: a cached confirmation must not stand in for the page after the reader has decided.
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
    }
    return Response(body=page, status_code=200, headers=headers)


def wants_html(accept: str | None) -> bool:
    """True for a browser (its form post accepts text/html); a mail client's one-click POST does not."""
    return "text/html" in (accept or "").lower()


def error_response(error: LeadloopError) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    headers = {"WWW-Authenticate": 'Bearer realm="leadloop"'} if error.status == 401 else None
    return json_response({"error": body}, error.status, headers)


def no_route(path: str) -> Response:
    """The documented 404 for a path no route serves. API Gateway answers it on AWS (infra/resources.yaml,
    its MISSING_AUTHENTICATION_TOKEN gateway response); the local stand-in of the gateway calls this."""
    shown = path.split("?", 1)[0][:200]
    return error_response(NotFound(f"no route serves {shown!r}; openapi.yaml lists the routes"))


# Chalice answers a few refusals itself, before any route runs, as {"Code", "Message"}: the documented
# error body instead, under the project's codes.
CHALICE_ERROR_CODES = {
    "MethodNotAllowedError": "method_not_allowed",
    "UnsupportedMediaType": "unsupported_media_type",
    "BadRequest": "malformed",
}


def documented_errors(request: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: Chalice's own error answers (a method the path does not serve: 405 with `Allow`)
    in the documented shape. Route answers pass through untouched (they never carry a dict body)."""
    response = get_response(request)
    body = response.body
    if not (isinstance(body, dict) and set(body) == {"Code", "Message"}):
        return response
    code = CHALICE_ERROR_CODES.get(str(body["Code"]), "bad_request")
    message = str(body["Message"])
    allow = (response.headers or {}).get("Allow")
    if response.status_code == 405 and request is not None:
        path = str((request.context or {}).get("resourcePath") or "this path")
        message = f"{request.method} is not served on {path}; use {allow}"
    headers = {"Allow": allow} if isinstance(allow, str) else None
    return json_response({"error": {"code": code, "message": message}}, response.status_code, headers)


def answers(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except LeadloopError as error:
            return error_response(error)
        except Exception:  # the outermost edge: log with context, answer without internals
            log.exception("unhandled error in %s", view.__name__)
            return json_response(
                {"error": {"code": "internal", "message": "internal error; it was logged"}}, 500
            )

    return wrapped


def json_body(raw: bytes | None, *, required: bool = True) -> dict[str, Any]:
    if not raw:
        if required:
            raise MalformedInput("the request needs a JSON object body")
        return {}
    if len(raw) > MAX_API_BODY_BYTES:
        raise TooLarge(f"the body is larger than {MAX_API_BODY_BYTES // 1024} KB")
    try:
        value = json_numbers.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedInput(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise MalformedInput("the body is nested too deeply") from None
    if not isinstance(value, dict):
        raise MalformedInput("the body must be a JSON object")
    return value


# The longest thing a ref names: an email address (RFC 5321 allows 320 characters with its local part);
# lead ids and userIds are far shorter. A longer ref is refused before it reaches a storage key.
MAX_LEAD_REF_CHARS = 320


def lead_ref(raw: str) -> str:
    """A lead id, email or userId from a URL path segment: percent-decoded (as clients send it), at most
    MAX_LEAD_REF_CHARS, printable text only. MalformedInput (400) names what is wrong."""
    try:
        ref = unquote(raw or "", errors="strict").strip()
    except UnicodeDecodeError:
        raise MalformedInput("the lead reference is not percent-encoded UTF-8 text") from None
    if not ref:
        raise MalformedInput("the lead reference is empty; use a lead id, email or userId")
    if len(ref) > MAX_LEAD_REF_CHARS:
        raise MalformedInput(f"the lead reference is longer than {MAX_LEAD_REF_CHARS} characters")
    if not ref.isprintable():
        raise MalformedInput("the lead reference contains control or invisible characters")
    return ref


def query_number(params: Mapping[str, str] | None, name: str, *, low: float, high: float) -> float | None:
    value = (params or {}).get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise MalformedInput(f"query parameter {name!r} must be a number, got {value!r}") from None
    if not low <= number <= high:
        raise MalformedInput(f"query parameter {name!r} must be between {low:g} and {high:g}")
    return number


def body_bytes(request: Any) -> bytes:
    """The request's raw body as bytes (Chalice hands text bodies over as str)."""
    raw = request.raw_body or b""
    return raw.encode() if isinstance(raw, str) else bytes(raw)


def headers_of(request: Any) -> Mapping[str, str]:
    """A request's headers as Chalice gives them: case-insensitive already, so never copied into a dict."""
    return request.headers or {}

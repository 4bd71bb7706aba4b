"""HTTP shaping for app.py: JSON answers, the documented error body, request parsing with clear 4xx.

Chalice middleware never sees exceptions raised in a route, so every route is wrapped by `answers`, which
maps Leadloop's errors to their status codes and turns anything unexpected into a logged 500.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalice import Response

from chalicelib.errors import LeadloopError, MalformedInput, TooLarge

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


def error_response(error: LeadloopError) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    headers = {"WWW-Authenticate": 'Bearer realm="leadloop"'} if error.status == 401 else None
    return json_response({"error": body}, error.status, headers)


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
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedInput(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise MalformedInput("the body is nested too deeply") from None
    if not isinstance(value, dict):
        raise MalformedInput("the body must be a JSON object")
    return value


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

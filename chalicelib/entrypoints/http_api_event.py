"""The ingest function's events from its two cheap fronts, in the shape Chalice routes on.

**The ingest HTTP API** (infra/resources.yaml, IngestHttpApi) serves the tracking and webhook routes with
payload format 1.0, which is the REST API's proxy event plus `version` and `requestContext.routeKey`. Chalice
routes on `requestContext.resourcePath` and reads `pathParameters`, `multiValueQueryStringParameters`,
`stageVariables` and `headers` by key; the HTTP API's route key (`"POST /v1/{call}"`) is the one field it
always sets for a matched route, so the route is taken from it, and keys an HTTP API may leave out are
filled with what the REST API sends when it has nothing. A REST API event passes through unchanged.

**The tracking URL** (IngestTrackingUrl, a Lambda function URL: no charge per request beyond the function's
own) serves browsers' tracking calls only. Its events are payload format 2.0 with no route at all
(`routeKey` is `$default`: every path on the URL reaches the function), so the path is matched here against
the one route it serves, `/v1/{call}`; any other path is left unrouted, and app.ingest answers 404. Webhooks
are not served there: providers that sign the URL they call (HubSpot) verify against the ingest HTTP API's.
Its answer goes back in format 2.0 too (`as_function_url_answer`): one `headers` map, no
`multiValueHeaders`.

Header names arrive lower-cased; Chalice's headers are case-insensitive, so nothing is done about it.
Bodies may be base64 (binary content types): Chalice decodes them by `isBase64Encoded`, as for the REST API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

HTTP_API_PAYLOAD_VERSION = "1.0"
FUNCTION_URL_PAYLOAD_VERSION = "2.0"
TRACKING_ROUTE = "/v1/{call}"
TRACKING_PREFIX = "/v1/"
# What the REST API sends for a key it has nothing for (Chalice indexes these without a default).
ABSENT_AS_NONE = (
    "pathParameters",
    "multiValueQueryStringParameters",
    "queryStringParameters",
    "stageVariables",
)


def as_rest_proxy_event(event: dict[str, Any]) -> dict[str, Any]:
    """`event` as a REST API proxy event: an HTTP API (format 1.0) event is routed by its route key, a
    function URL's (format 2.0) by its path."""
    if from_function_url(event):
        return function_url_as_rest_event(event)
    context = event.get("requestContext") or {}
    route_key = context.get("routeKey") or event.get("routeKey")
    if event.get("version") != HTTP_API_PAYLOAD_VERSION or not isinstance(route_key, str):
        return event
    method, _, route = route_key.partition(" ")
    if not route.startswith("/"):  # `$default` (no route matched): nothing for Chalice to route on
        return event
    adapted = dict(event)
    adapted["requestContext"] = {**context, "resourcePath": route, "httpMethod": method}
    adapted["resource"] = route
    adapted["httpMethod"] = method
    for key in ABSENT_AS_NONE:
        adapted.setdefault(key, None)
    adapted["headers"] = event.get("headers") or {}
    adapted["multiValueHeaders"] = event.get("multiValueHeaders") or {}
    return adapted


def from_function_url(event: dict[str, Any]) -> bool:
    """Whether `event` came from a function URL: format 2.0, with the request line under `http`."""
    context = event.get("requestContext")
    return (
        event.get("version") == FUNCTION_URL_PAYLOAD_VERSION
        and isinstance(context, dict)
        and isinstance(context.get("http"), dict)
    )


def function_url_as_rest_event(event: dict[str, Any]) -> dict[str, Any]:
    """A function URL's event (see `from_function_url`) as a REST API proxy event, routed by its path."""
    context: dict[str, Any] = event["requestContext"]
    http: dict[str, Any] = context["http"]
    method = str(http.get("method") or "")
    path = str(event.get("rawPath") or http.get("path") or "")
    call = path[len(TRACKING_PREFIX) :] if path.startswith(TRACKING_PREFIX) else ""
    routed = bool(call) and "/" not in call
    headers = dict(event.get("headers") or {})
    if event.get("cookies"):  # format 2.0 moves Cookie into its own list; nothing here reads it
        headers["cookie"] = "; ".join(str(cookie) for cookie in event["cookies"])
    query = parse_qs(str(event.get("rawQueryString") or ""), keep_blank_values=True)
    return {
        "resource": TRACKING_ROUTE if routed else None,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "requestContext": {
            **context,
            "resourcePath": TRACKING_ROUTE if routed else None,
            "httpMethod": method,
            "path": path,
            "identity": {"sourceIp": http.get("sourceIp"), "userAgent": http.get("userAgent")},
        },
        "pathParameters": {"call": call} if routed else None,
        "stageVariables": None,
        "body": event.get("body"),
        "isBase64Encoded": bool(event.get("isBase64Encoded")),
    }


def as_function_url_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """Chalice's REST-shaped answer in a function URL's format: repeated headers joined into one value
    (RFC 9110 5.3), `Set-Cookie` in `cookies`, which may not be joined."""
    headers = {str(name): str(value) for name, value in (answer.get("headers") or {}).items()}
    cookies: list[str] = []
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        if str(name).lower() == "set-cookie":
            cookies.extend(str(value) for value in values)
        else:
            headers[str(name)] = ", ".join(str(value) for value in values)
    shaped = {key: value for key, value in answer.items() if key not in ("headers", "multiValueHeaders")}
    shaped["headers"] = headers
    if cookies:
        shaped["cookies"] = cookies
    return shaped

"""The ingest function's events from the API Gateway HTTP API, in the shape Chalice routes on.

infra/resources.yaml serves the tracking and webhook routes from an HTTP API (cheaper per request than the
REST API) with payload format 1.0, which is the REST API's proxy event plus `version` and
`requestContext.routeKey`. Chalice routes on `requestContext.resourcePath` and reads `pathParameters`,
`multiValueQueryStringParameters`, `stageVariables` and `headers` by key; the HTTP API's route key
(`"POST /v1/{call}"`) is the one field it always sets for a matched route, so the route is taken from it,
and keys an HTTP API may leave out are filled with what the REST API sends when it has nothing. A REST
API event passes through unchanged. Header names arrive lower-cased; Chalice's headers are
case-insensitive, so nothing is done about it. Bodies may be base64 (binary content types): Chalice
decodes them by `isBase64Encoded`, as for the REST API.
"""

from __future__ import annotations

from typing import Any

HTTP_API_PAYLOAD_VERSION = "1.0"
# What the REST API sends for a key it has nothing for (Chalice indexes these without a default).
ABSENT_AS_NONE = (
    "pathParameters",
    "multiValueQueryStringParameters",
    "queryStringParameters",
    "stageVariables",
)


def as_rest_proxy_event(event: dict[str, Any]) -> dict[str, Any]:
    """`event` as a REST API proxy event: an HTTP API (format 1.0) event is routed by its route key."""
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

"""A function URL reads its answer in payload format 2.0: one `headers` map and `cookies`. Chalice answers in
the REST API's shape, with repeated headers in `multiValueHeaders`; nothing a client would see is lost."""

from __future__ import annotations

from chalicelib.entrypoints.http_api_event import as_function_url_answer, as_rest_proxy_event


def test_repeated_headers_are_joined_and_cookies_kept_apart() -> None:
    answer = {
        "statusCode": 200,
        "body": "{}",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Vary": ["Origin", "Accept"], "Set-Cookie": ["a=1", "b=2; Secure"]},
    }

    shaped = as_function_url_answer(answer)

    assert shaped == {
        "statusCode": 200,
        "body": "{}",
        "headers": {"Content-Type": "application/json", "Vary": "Origin, Accept"},
        "cookies": ["a=1", "b=2; Secure"],
    }


def test_a_function_url_event_keeps_its_query_and_cookies_for_the_route() -> None:
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/v1/page",
        "rawQueryString": "a=1&a=2&b=",
        "cookies": ["ajs_anonymous_id=x"],
        "headers": {"content-type": "text/plain"},
        "requestContext": {"http": {"method": "POST", "path": "/v1/page", "sourceIp": "203.0.113.7"}},
        "body": "{}",
        "isBase64Encoded": False,
    }

    adapted = as_rest_proxy_event(event)

    assert adapted["requestContext"]["resourcePath"] == "/v1/{call}"
    assert adapted["pathParameters"] == {"call": "page"}
    assert adapted["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert adapted["headers"]["cookie"] == "ajs_anonymous_id=x"
    assert adapted["requestContext"]["identity"]["sourceIp"] == "203.0.113.7"


def test_an_http_api_or_rest_event_is_not_taken_for_a_function_url_one() -> None:
    rest = {"httpMethod": "POST", "requestContext": {"resourcePath": "/v1/{call}", "httpMethod": "POST"}}

    assert as_rest_proxy_event(rest) is rest

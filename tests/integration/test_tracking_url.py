"""The tracking URL in the packaged template: a Lambda function URL on the ingest function that browsers'
tracking calls reach without API Gateway's charge per request (infra/resources.yaml, IngestTrackingUrl).

What an operator would otherwise learn from a failed or unsafe deploy: that anyone may call it through the URL
and nothing else (the grants), that browsers' preflights get what the REST API's promised, that a flood is
bounded, and that the URL is an output to put in analytics.js."""

from __future__ import annotations

from typing import Any

import pytest

from infra.stage_template import references
from tests.packaged import packaged_template, resources

STAGE = "ci"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return packaged_template(tmp_path_factory.mktemp("build"), STAGE)


def test_only_the_ingest_function_has_a_url_and_it_is_public(template: dict[str, Any]) -> None:
    urls = resources(template, "AWS::Lambda::Url")
    assert list(urls) == ["IngestTrackingUrl"]
    properties = urls["IngestTrackingUrl"]["Properties"]
    assert references(properties["TargetFunctionArn"]) == {"Ingest"}  # never the API function
    # Browsers cannot sign requests: the write key, checked by the function, is the authentication.
    assert properties["AuthType"] == "NONE"
    assert properties.get("InvokeMode", "BUFFERED") == "BUFFERED"
    assert references(template["Outputs"]["TrackingUrl"]["Value"]) == {"IngestTrackingUrl"}


def test_anyone_may_invoke_the_ingest_function_through_its_url_and_in_no_other_way(
    template: dict[str, Any],
) -> None:
    public = [
        body["Properties"]
        for body in resources(template, "AWS::Lambda::Permission").values()
        if body["Properties"]["Principal"] == "*"
    ]
    # Both grants a public function URL needs (since October 2025), each held to calls through the URL:
    # without InvokedViaFunctionUrl, anyone could call lambda:Invoke on the function with any event.
    assert sorted(grant["Action"] for grant in public) == [
        "lambda:InvokeFunction",
        "lambda:InvokeFunctionUrl",
    ]
    assert all(grant["FunctionName"] == {"Ref": "Ingest"} for grant in public)
    (url_grant,) = [grant for grant in public if grant["Action"] == "lambda:InvokeFunctionUrl"]
    assert url_grant["FunctionUrlAuthType"] == "NONE"
    (invoke_grant,) = [grant for grant in public if grant["Action"] == "lambda:InvokeFunction"]
    assert invoke_grant["InvokedViaFunctionUrl"] is True


def test_the_tracking_url_answers_browser_preflights_as_the_app_promises(template: dict[str, Any]) -> None:
    from app import TRACKING_CORS

    promised = TRACKING_CORS.get_access_control_headers()
    cors = template["Resources"]["IngestTrackingUrl"]["Properties"]["Cors"]
    assert cors["AllowOrigins"] == [promised["Access-Control-Allow-Origin"]]
    expected = {header.lower() for header in promised["Access-Control-Allow-Headers"].split(",")}
    assert {header.lower() for header in cors["AllowHeaders"]} == expected
    assert cors["AllowMethods"] == ["POST"]  # tracking calls are POSTs; Lambda answers OPTIONS itself
    assert cors["MaxAge"] == int(promised["Access-Control-Max-Age"])
    assert "AllowCredentials" not in cors  # a wildcard origin with credentials is refused by browsers


def test_a_flood_of_tracking_calls_is_bounded_by_the_ingest_functions_reserved_concurrency(
    template: dict[str, Any],
) -> None:
    parameter = template["Parameters"]["IngestReservedConcurrency"]
    assert parameter["Default"] > 0 and parameter["MinValue"] == 0
    reserved = template["Resources"]["Ingest"]["Properties"]["ReservedConcurrentExecutions"]
    # 0 reserves nothing (an account whose concurrency quota is too small): the property is left out.
    condition, when_set, when_zero = reserved["Fn::If"]
    assert when_set == {"Ref": "IngestReservedConcurrency"}
    assert when_zero == {"Ref": "AWS::NoValue"}
    assert template["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "IngestReservedConcurrency"}, 0]}]
    }

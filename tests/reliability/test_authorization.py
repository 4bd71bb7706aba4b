"""Authorization matrix: every route against no key and every role, asserted against one table.

A cell says what that caller must get: "ok" (past authentication and authorization: any answer but 401 or
403, and never a 5xx), 401 or 403. Bodies are empty objects and ids unknown, so an allowed call is refused
later (400/404/422) without changing anything. A route the app serves but the table does not list fails
the completeness test: adding a route means deciding who may call it, here.
"""

from __future__ import annotations

import json
from typing import Any

from tests.reliability.conftest import Loop

CALLERS: dict[str, dict[str, str]] = {
    "none": {},
    "write": {"Authorization": "Basic ZGV2LXdyaXRlLWtleTo="},  # dev-write-key:
    "sales": {"Authorization": "Bearer dev-sales-key"},
    "marketing": {"Authorization": "Bearer dev-marketing-key"},
    "admin": {"Authorization": "Bearer dev-admin-key"},
}
OK, NO, DENY = "ok", 401, 403
EVERYONE = {"none": OK, "write": OK, "sales": OK, "marketing": OK, "admin": OK}
WRITE_KEY = {"none": NO, "write": OK, "sales": NO, "marketing": NO, "admin": NO}
SIGNED = {"none": NO, "write": NO, "sales": NO, "marketing": NO, "admin": NO}  # provider signature only
READERS = {"none": NO, "write": NO, "sales": OK, "marketing": OK, "admin": OK}
SALES = {"none": NO, "write": NO, "sales": OK, "marketing": DENY, "admin": OK}
MARKETING = {"none": NO, "write": NO, "sales": DENY, "marketing": OK, "admin": OK}
BOTH_TEAMS = {"none": NO, "write": NO, "sales": OK, "marketing": OK, "admin": OK}
ADMIN = {"none": NO, "write": NO, "sales": DENY, "marketing": DENY, "admin": OK}

# (method, route as the app declares it) -> (concrete path, expected outcome per caller)
MATRIX: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("GET", "/health"): ("/health", EVERYONE),
    ("POST", "/v1/{call}"): ("/v1/track", WRITE_KEY),
    ("POST", "/webhooks/{provider}"): ("/webhooks/sendgrid", SIGNED),
    ("POST", "/webhooks/crm/hubspot"): ("/webhooks/crm/hubspot", SIGNED),
    ("GET", "/leads"): ("/leads", READERS),
    ("GET", "/leads/{ref}"): ("/leads/nobody@example.com", READERS),
    ("DELETE", "/leads/{ref}"): ("/leads/nobody@example.com", ADMIN),
    ("GET", "/leads/{ref}/export"): ("/leads/nobody@example.com/export", ADMIN),
    ("POST", "/leads/import"): ("/leads/import", MARKETING),
    ("GET", "/leads/export.csv"): ("/leads/export.csv", READERS),
    ("POST", "/leads/{ref}/{action}"): ("/leads/nobody@example.com/accept", SALES),
    ("POST", "/leads/{ref}/reassign"): ("/leads/nobody@example.com/reassign", SALES),
    ("GET", "/templates"): ("/templates", READERS),
    ("GET", "/templates/{name}"): ("/templates/welcome-product-tour", READERS),
    ("PUT", "/templates/{name}"): ("/templates/welcome-product-tour", MARKETING),
    ("PATCH", "/templates/{name}"): ("/templates/no-such-template", MARKETING),
    ("DELETE", "/templates/{name}"): ("/templates/no-such-template", MARKETING),
    ("GET", "/templates/{name}/versions"): ("/templates/welcome-product-tour/versions", READERS),
    ("POST", "/templates/{name}/preview"): ("/templates/welcome-product-tour/preview", MARKETING),
    ("GET", "/rules"): ("/rules", READERS),
    ("PUT", "/rules"): ("/rules", MARKETING),
    ("GET", "/rules/versions"): ("/rules/versions", READERS),
    ("POST", "/rules/backtest"): ("/rules/backtest", MARKETING),
    ("GET", "/rules/backtest/{job_id}"): ("/rules/backtest/bt-unknown", MARKETING),
    ("PUT", "/rules/shadow"): ("/rules/shadow", MARKETING),
    ("GET", "/rules/shadow"): ("/rules/shadow", MARKETING),
    ("DELETE", "/rules/shadow"): ("/rules/shadow", MARKETING),
    ("POST", "/rules/shadow/promote"): ("/rules/shadow/promote", MARKETING),
    ("GET", "/rules/competitors"): ("/rules/competitors", READERS),
    ("DELETE", "/rules/competitors/{domain}"): ("/rules/competitors/rival.example", MARKETING),
    ("GET", "/accounts/{account_id}"): ("/accounts/acct-unknown", READERS),
    ("GET", "/activity"): ("/activity", READERS),
    ("GET", "/metrics"): ("/metrics", READERS),
    ("PUT", "/costs/{source}/{month}"): ("/costs/website/2026-11", BOTH_TEAMS),
    ("GET", "/unsubscribe/{token}"): ("/unsubscribe/not-a-token", EVERYONE),
    ("POST", "/unsubscribe/{token}"): ("/unsubscribe/not-a-token", EVERYONE),
    ("GET", "/r/{token}"): ("/r/not-a-token", EVERYONE),
}


def test_every_route_the_app_serves_is_in_the_matrix() -> None:
    import app

    served = {(method, path) for path, methods in app.app.routes.items() for method in methods}
    # The console's pages authenticate by session cookie, not Bearer key: tests/browser holds their matrix.
    served = {(method, path) for method, path in served if not path.startswith("/console")}
    assert served - set(MATRIX) == set(), "routes without a row in the authorization matrix"
    assert set(MATRIX) - served == set(), "matrix rows for routes the app no longer serves"


def _outcome(status: int) -> Any:
    return status if status in (NO, DENY) else OK


def test_every_caller_gets_what_the_matrix_says(loop: Loop) -> None:
    """One client for the whole matrix (a fresh loop per cell would take a minute); every mismatching cell
    is reported at once."""
    wrong: list[str] = []
    for (method, _route), (path, outcomes) in MATRIX.items():
        for caller, credentials in CALLERS.items():
            headers = {"Content-Type": "application/json", **credentials}
            answer = getattr(loop.client.http, method.lower())(path, headers=headers, body=b"{}")
            expected, got = outcomes[caller], _outcome(answer.status_code)
            if answer.status_code >= 500 or got != expected:
                wrong.append(
                    f"{method} {path} as {caller}: expected {expected}, got {answer.status_code} "
                    f"{answer.body[:120]!r}"
                )
            elif got != OK:
                assert json.loads(answer.body)["error"]["code"] in ("unauthenticated", "forbidden")
    assert wrong == []

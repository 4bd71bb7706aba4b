"""Accounts through the public API on moto: a group call never renames the person, links them to an
account that GET /accounts/{id} shows with its people, and the lead summary names the account."""

from __future__ import annotations

from urllib.parse import quote

from tests.e2e.conftest import MARKETING, WRITE, Loop


def _visit(loop: Loop, who: str, name: str) -> None:
    anon = f"anon-{who}"
    assert (
        loop.track(
            "/v1/identify", {"anonymousId": anon, "traits": {"name": name, "email": f"{who}@contoso.example"}}
        ).status_code
        == 200
    )
    group = {"anonymousId": anon, "groupId": "acct 9", "traits": {"name": "Contoso Ltd", "employees": 800}}
    assert loop.track("/v1/group", group).status_code == 200
    assert (
        loop.track("/v1/page", {"anonymousId": anon, "properties": {"path": "/pricing"}}).status_code == 200
    )
    loop.drain()


def test_group_never_renames_the_person_and_the_account_lists_its_people(loop: Loop) -> None:
    _visit(loop, "jo", "Jo Smith")
    _visit(loop, "sam", "Sam Lee")

    lead = loop.sales("GET", "/leads/jo@contoso.example").json_body
    assert lead["identity"]["name"] == "Jo Smith"
    assert "Contoso Ltd" not in lead["identity"]["traits"].values()
    assert lead["accounts"] == [
        {
            "id": "acct 9",
            "name": "Contoso Ltd",
            "people": 2,
            "engaged_people": 2,
            "signal": "2 people at Contoso Ltd engaged in the last 14 days",
        }
    ]
    assert "company_size_target" in {
        line["rule"] for line in lead["scores"]["breakdown"]
    }  # account employees

    answer = loop.client.http.get(f"/accounts/{quote('acct 9')}", headers=MARKETING)
    assert answer.status_code == 200
    account = answer.json_body
    assert account["traits"] == {"name": "Contoso Ltd", "employees": 800}
    assert {p["name"] for p in account["people"]} == {"Jo Smith", "Sam Lee"}
    assert account["engaged_people"] == 2 and account["engagement"] > 0 and account["truncated"] is False


def test_an_unknown_account_is_a_404_and_callers_need_a_reader_key(loop: Loop) -> None:
    unknown = loop.sales("GET", "/accounts/acct-nobody")
    assert unknown.status_code == 404 and unknown.json_body["error"]["code"] == "not_found"
    assert loop.client.http.get("/accounts/acct-nobody").status_code == 401
    assert loop.client.http.get("/accounts/acct-nobody", headers=WRITE).status_code == 401
    assert loop.sales("GET", "/accounts/" + "a" * 300).status_code == 400

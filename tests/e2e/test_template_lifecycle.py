"""A marketer manages templates through the API: pause and resume one, delete (retire) one while its history
and the emails already sent stay readable, save without making empty versions, and get every problem of a
refused template in one answer, including topics the rules do not know."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import wiring
from tests.e2e.conftest import MARKETING, SALES, Loop
from tests.e2e.test_marketing import EDITOR_TEXT, next_template, nurtured_lead, put_template, send_now

ADMIN = {"Authorization": "Bearer dev-admin-key", "Content-Type": "application/json"}


def set_status(loop: Loop, name: str, status: str, headers: dict[str, str] = MARKETING) -> Any:
    body = json.dumps({"status": status}).encode()
    return loop.client.http.patch(f"/templates/{name}", headers=headers, body=body)


def listed(loop: Loop, query: str = "") -> dict[str, str]:
    answer = loop.client.http.get(f"/templates{query}", headers=MARKETING)
    assert answer.status_code == 200, answer.json_body
    return {t["name"]: t["status"] for t in answer.json_body["templates"]}


def own_template(loop: Loop, *, topics: str | None = None, extra_front_matter: str = "") -> str:
    """A small template of our own on a topic the rules know (the shipped ones may declare others)."""
    known = loop.client.http.get("/rules", headers=MARKETING).json_body["rules"]["topics"][0]["topic"]
    return (
        f"---\nsubject: \"News for {{{{ prospect.first_name | default('you') }}}}\"\n"
        f"topics: [{topics or known}]\n{extra_front_matter}---\n"
        '{% block html %}<p>Hello</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>{% endblock %}\n'
        "{% block text %}Hello\nUnsubscribe: {{ unsubscribe_url }}{% endblock %}\n"
    )


def choosable(lead_id: str) -> str | None:
    prospect = wiring.lead_service().prospect(lead_id)
    choice = wiring.nurture_service().choose(prospect, wiring.utc_now())
    return None if choice is None else choice.template.name


def test_a_paused_template_is_never_chosen_until_it_is_resumed(loop: Loop) -> None:
    lead_id = nurtured_lead(loop)
    name = next_template(lead_id)
    assert listed(loop)[name] == "active"

    paused = set_status(loop, name, "paused")
    assert paused.status_code == 200, paused.json_body
    assert paused.json_body["status"] == "paused"
    assert listed(loop)[name] == "paused"
    assert choosable(lead_id) != name
    assert loop.client.http.get(f"/templates/{name}", headers=MARKETING).json_body["status"] == "paused"

    # Previewing a paused template still works: the marketer checks it before resuming.
    shown = loop.client.http.post(
        f"/templates/{name}/preview", headers=MARKETING, body=json.dumps({"lead_id": lead_id}).encode()
    )
    assert shown.status_code == 200, shown.json_body

    assert set_status(loop, name, "active", ADMIN).json_body["status"] == "active"
    assert choosable(lead_id) == name


def test_a_deleted_template_is_never_sent_but_its_history_and_sent_emails_stay(loop: Loop) -> None:
    lead_id = nurtured_lead(loop)
    name = next_template(lead_id)
    assert send_now(loop, lead_id)["sent"] == 1

    deleted = loop.client.http.delete(f"/templates/{name}", headers=MARKETING)
    assert deleted.status_code == 200, deleted.json_body
    assert deleted.json_body["status"] == "deleted"
    assert name not in listed(loop)
    assert listed(loop, "?status=deleted") == {name: "deleted"}

    versions = loop.client.http.get(f"/templates/{name}/versions", headers=MARKETING)
    assert versions.status_code == 200 and [v["version"] for v in versions.json_body["versions"]] == [0]
    kept = loop.client.http.get(f"/templates/{name}?version=0", headers=MARKETING)
    assert kept.status_code == 200 and kept.json_body["status"] == "deleted"
    lead = loop.sales("GET", f"/leads/{lead_id}")
    assert lead.status_code == 200 and lead.json_body["messages"][0]["template"] == name

    loop.make_due(lead_id)
    wiring.templates().forget()
    assert choosable(lead_id) != name

    again = set_status(loop, name, "active")
    assert again.status_code == 409
    assert "deleted" in again.json_body["error"]["message"]
    assert loop.client.http.delete(f"/templates/{name}", headers=MARKETING).status_code == 409
    shipped = loop.client.http.get(f"/templates/{name}?version=0", headers=MARKETING).json_body["source"]
    assert put_template(loop, name, shipped.replace("Unsubscribe", "Opt out")).status_code == 409


def test_status_changes_are_for_editors_and_name_what_is_wrong(loop: Loop) -> None:
    assert set_status(loop, "welcome-product-tour", "paused", SALES).status_code == 403
    assert loop.client.http.delete("/templates/welcome-product-tour", headers=SALES).status_code == 403
    missing = set_status(loop, "no-such-template", "paused")
    assert missing.status_code == 404 and "no-such-template" in missing.json_body["error"]["message"]
    assert loop.client.http.delete("/templates/no-such-template", headers=MARKETING).status_code == 404
    wrong = set_status(loop, "welcome-product-tour", "sleeping")
    assert wrong.status_code == 400 and "paused" in wrong.json_body["error"]["message"]
    assert set_status(loop, "welcome-product-tour", "paused").status_code == 200
    twice = set_status(loop, "welcome-product-tour", "paused")
    assert twice.status_code == 200 and twice.json_body["unchanged"] is True


def test_saving_an_unchanged_template_makes_no_new_version(loop: Loop) -> None:
    name = "spring-news"
    source = own_template(loop)
    first = put_template(loop, name, source)
    assert first.status_code == 200, first.json_body
    assert (first.json_body["version"], first.json_body["unchanged"]) == (1, False)
    same = put_template(loop, name, source.replace("\n", "\r\n"))
    assert same.status_code == 200, same.json_body
    assert (same.json_body["version"], same.json_body["unchanged"]) == (1, True)
    changed = put_template(loop, name, source.replace("Hello", "Hi"))
    assert (changed.json_body["version"], changed.json_body["unchanged"]) == (2, False)
    versions = loop.client.http.get(f"/templates/{name}/versions", headers=MARKETING).json_body
    assert [v["version"] for v in versions["versions"]] == [2, 1]


def test_a_topic_the_rules_do_not_know_is_refused_naming_the_known_ones(loop: Loop) -> None:
    known = [
        t["topic"] for t in loop.client.http.get("/rules", headers=MARKETING).json_body["rules"]["topics"]
    ]
    refused = put_template(loop, "spring-news", own_template(loop, topics=f"pricng, {known[0]}"))
    assert refused.status_code == 422
    [problem] = refused.json_body["error"]["details"]
    assert (problem["line"], problem["field"]) == (3, "topics")
    assert "'pricng'" in problem["message"]
    assert all(topic in problem["message"] for topic in known)
    assert loop.client.http.get("/templates/spring-news", headers=MARKETING).status_code == 404


def test_a_refused_template_lists_every_problem_in_one_answer(loop: Loop) -> None:
    source = own_template(loop, topics="pricng", extra_front_matter="priority: urgent\ncolour: blue\n")
    broken = source.replace("{% block text %}", "{% block text %}{{ prospect.shoe_size }}{% if %}", 1)
    broken = broken.replace("<p>Hello</p>", "<p>{{ prospect.frist_name }}</p>")
    refused = put_template(loop, "spring-news", broken, EDITOR_TEXT)
    assert refused.status_code == 422
    problems = refused.json_body["error"]["details"]
    assert {p.get("field") for p in problems} >= {"topics", "priority", "colour"}, problems
    assert [p["line"] for p in problems if p.get("field")] == [3, 4, 5]
    assert any("frist_name" in p["message"] or "syntax" in p["message"] for p in problems), problems
    assert f"{len(problems)} problem(s)" in refused.json_body["error"]["message"]

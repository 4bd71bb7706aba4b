"""Marketers' workflow through the public API: edit a template or the rules, see exactly what a lead will get,
and trust that sends stay safe (no template injection, one-click unsubscribe, signed redirects)."""

from __future__ import annotations

import base64
import json
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import yaml

from chalicelib import wiring
from tests.e2e.conftest import MARKETING, Loop
from tests.e2e.test_lead_loop import journey

EDITOR_TEXT = {"Authorization": "Bearer dev-marketing-key", "Content-Type": "text/plain"}
SALES_TEXT = {"Authorization": "Bearer dev-sales-key", "Content-Type": "text/plain"}
MARKER = "Spring update"
NEW_TOPIC = "reporting"  # a topic the rules know (a link may declare no other) the lead has not shown
WEBINAR_URL = "https://acmeanalytics.example/webinar"


def nurtured_lead(loop: Loop) -> str:
    """A known, identified prospect who has not raised a hand: nurture will email them."""
    batch = journey()
    batch["batch"] = batch["batch"][:4]
    assert loop.track("/v1/batch", batch).status_code == 200
    loop.drain()
    return loop.sales("GET", "/leads").json_body["leads"][0]["id"]


def next_template(lead_id: str) -> str:
    prospect = wiring.lead_service().prospect(lead_id)
    choice = wiring.nurture_service().choose(prospect, wiring.utc_now())
    assert choice is not None
    return choice.template.name


def put_template(loop: Loop, name: str, source: str, headers: dict[str, str] | None = None) -> Any:
    return loop.client.http.put(f"/templates/{name}", headers=headers or EDITOR_TEXT, body=source.encode())


def edited(source: str) -> str:
    """The same template (same front matter, so still chosen) with new copy and a link to a new topic."""
    html_link = (
        f"<p><a href=\"{{{{ link('{WEBINAR_URL}', topics=['{NEW_TOPIC}']) }}}}\">Join the webinar</a></p>"
    )
    text_link = f"{{{{ link('{WEBINAR_URL}', topics=['{NEW_TOPIC}']) }}}}"
    source = re.sub(
        r"(?m)^subject:.*$",
        f"subject: \"{MARKER}, {{{{ prospect.first_name | default('hi') }}}}\"",
        source,
        count=1,
    )
    source = source.replace("{% block html %}", f"{{% block html %}}<p>{MARKER}</p>{html_link}", 1)
    return source.replace("{% block text %}", f"{{% block text %}}{MARKER}\n{text_link}\n", 1)


def edit_next_template(loop: Loop, lead_id: str) -> str:
    name = next_template(lead_id)
    shipped = loop.client.http.get(f"/templates/{name}", headers=MARKETING).json_body
    answer = put_template(loop, name, edited(shipped["source"]))
    assert answer.status_code == 200, answer.json_body
    assert answer.json_body["version"] == 1
    return name


def sent(loop: Loop) -> list[EmailMessage]:
    found = []
    for path in sorted(loop.outbox.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def parts(message: EmailMessage) -> tuple[str, str]:
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    # SMTP line endings are the transport's, not the message's.
    return html.get_content().replace("\r\n", "\n"), text.get_content().replace("\r\n", "\n")


def preview(loop: Loop, name: str, body: dict[str, Any]) -> Any:
    return loop.client.http.post(
        f"/templates/{name}/preview", headers=MARKETING, body=json.dumps(body).encode()
    )


def send_now(loop: Loop, lead_id: str) -> dict[str, int]:
    loop.make_due(lead_id)
    return loop.sweep()


# --- templates ---------------------------------------------------------------------------------------------


def test_an_edited_template_is_what_the_next_preview_and_send_use(loop: Loop) -> None:
    lead_id = nurtured_lead(loop)
    name = next_template(lead_id)
    draft = edited(loop.client.http.get(f"/templates/{name}", headers=MARKETING).json_body["source"])
    before_saving = preview(loop, name, {"lead_id": lead_id, "source": draft})
    assert before_saving.status_code == 200 and before_saving.json_body["draft"] is True
    assert preview(loop, name, {"lead_id": lead_id}).json_body["version"] == 0  # a draft is not saved
    broken_draft = preview(loop, name, {"lead_id": lead_id, "source": draft.replace("unsubscribe_url", "x")})
    assert broken_draft.status_code == 422

    assert edit_next_template(loop, lead_id) == name
    shown = preview(loop, name, {"lead_id": lead_id}).json_body
    assert shown["version"] == 1
    for part in ("subject", "html", "text"):
        assert shown[part] == before_saving.json_body[part]
    assert before_saving.json_body["headers"]["X-Leadloop-Template"] == f"{name}@draft"
    assert shown["subject"] == f"{MARKER}, Ada"
    assert MARKER in shown["html"] and MARKER in shown["text"]

    assert send_now(loop, lead_id)["sent"] == 1
    [email] = sent(loop)
    html, text = parts(email)
    assert email["Subject"] == f"{MARKER}, Ada"
    assert MARKER in html and MARKER in text
    assert email["X-Leadloop-Template"] == f"{name}@1"
    message = loop.sales("GET", f"/leads/{lead_id}").json_body["messages"][0]
    assert (message["template"], message["version"]) == (name, 1)


def untracked(text: str) -> str:
    return re.sub(r"/r/[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+", "/r/<token>", text)


def test_the_preview_for_a_lead_is_exactly_the_email_then_sent(loop: Loop) -> None:
    lead_id = nurtured_lead(loop)
    name = next_template(lead_id)
    shown = preview(loop, name, {"lead_id": lead_id})
    assert shown.status_code == 200, shown.json_body

    assert send_now(loop, lead_id)["sent"] == 1
    [email] = sent(loop)
    html, text = parts(email)
    # Identical but for each tracked link's token, which names the send (so a click counts for that email):
    # the preview is of a send that has no id yet.
    assert (email["Subject"], untracked(html), untracked(text), email["To"]) == (
        shown.json_body["subject"],
        untracked(shown.json_body["html"]),
        untracked(shown.json_body["text"]),
        shown.json_body["to"],
    )
    assert "/r/" in text
    for header, value in shown.json_body["headers"].items():
        assert email[header] == value


def test_a_template_with_mistakes_is_refused_with_each_line_and_the_old_one_stays(loop: Loop) -> None:
    name = "welcome-product-tour"
    source = loop.client.http.get(f"/templates/{name}", headers=MARKETING).json_body["source"]
    lines = source.split("\n")
    typo = next(i for i, line in enumerate(lines) if "prospect.first_name" in line and "<p>" in line)
    lines[typo] = lines[typo].replace("prospect.first_name", "prospect.frist_name")
    lines[typo + 2] += " {{ unknown_thing }}"

    refused = put_template(loop, name, "\n".join(lines))
    assert refused.status_code == 422
    problems = refused.json_body["error"]["details"]
    assert any(p["line"] == typo + 1 and "frist_name" in p["message"] for p in problems)
    assert any(p["line"] == typo + 3 and "unknown_thing" in p["message"] for p in problems)

    syntax = put_template(loop, name, source.replace("{% endblock %}", "{% endblok %}", 1))
    assert syntax.status_code == 422
    assert "syntax" in syntax.json_body["error"]["message"]

    no_unsubscribe = put_template(loop, name, source.replace("{{ unsubscribe_url }}", "#"))
    assert no_unsubscribe.status_code == 422
    assert "unsubscribe" in no_unsubscribe.json_body["error"]["message"]

    bad_front_matter = put_template(loop, name, source.replace("stages: [awareness]", "stages: [someday]"))
    assert bad_front_matter.status_code == 422
    assert bad_front_matter.json_body["error"]["details"][0]["line"] == 4

    versions = loop.client.http.get(f"/templates/{name}/versions", headers=MARKETING).json_body
    assert [v["version"] for v in versions["versions"]] == [0]
    assert loop.client.http.get(f"/templates/{name}", headers=MARKETING).json_body["source"] == source


SSTI = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ range.__globals__ }}",
    "{{ link.__globals__ }}",
    "{{ prospect.__class__.__init__.__globals__ }}",
    "{{ prospect.email.__class__.__base__.__subclasses__() }}",
    "{{ ''|attr('__class__') }}",
    "{{ '{0.__class__}'.format(prospect) }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ config }}{{ request }}",
    "{% include '/etc/passwd' %}",
]


def test_template_injection_is_refused_and_never_runs(loop: Loop) -> None:
    name = "welcome-product-tour"
    source = loop.client.http.get(f"/templates/{name}", headers=MARKETING).json_body["source"]
    for payload in SSTI:
        for block in ("{% block html %}", "{% block text %}"):
            answer = put_template(loop, name, source.replace(block, block + payload, 1))
            assert answer.status_code == 422, (payload, answer.json_body)
            shown = json.dumps(answer.json_body)
            assert "<class" not in shown and "uid=" not in shown and "root:" not in shown, payload
    versions = loop.client.http.get(f"/templates/{name}/versions", headers=MARKETING).json_body
    assert [v["version"] for v in versions["versions"]] == [0]

    # Data is never code: a prospect whose name looks like a template shows as that text.
    shown = preview(loop, name, {"sample": {"first_name": "{{ 7*7 }}<b>", "email": "x@example.com"}})
    assert shown.status_code == 200
    assert "{{ 7*7 }}&lt;b&gt;" in shown.json_body["html"] and "49" not in shown.json_body["html"]


def test_templates_are_read_saved_and_versioned_by_editors_only(loop: Loop) -> None:
    name = "pricing-roi"
    read = loop.client.http.get(f"/templates/{name}", headers=MARKETING)
    assert read.status_code == 200
    assert read.headers["ETag"] == '"0"'
    shipped = read.json_body
    assert shipped["version"] == 0 and shipped["origin"] == "shipped" and shipped["meta"]["topics"]

    changed = shipped["source"].replace("{% block text %}", "{% block text %}v1\n", 1)
    assert put_template(loop, name, changed, SALES_TEXT).status_code == 403
    assert loop.client.http.put(f"/templates/{name}", body=changed.encode()).status_code == 401

    as_json = loop.client.http.put(
        f"/templates/{name}",
        headers={**MARKETING, "If-Match": '"0"'},
        body=json.dumps({"source": changed}).encode(),
    )
    assert as_json.status_code == 200 and as_json.json_body["version"] == 1
    again = changed.replace("v1\n", "v2\n")
    assert put_template(loop, name, again, {**EDITOR_TEXT, "If-Match": '"1"'}).json_body["version"] == 2
    stale = put_template(loop, name, again, {**EDITOR_TEXT, "If-Match": '"1"'})
    assert stale.status_code == 409

    now = loop.client.http.get(f"/templates/{name}", headers=MARKETING).json_body
    assert (now["version"], now["origin"], now["author"]) == (2, "saved", "dev-marketing")
    assert "v2" in now["source"]
    old = loop.client.http.get(f"/templates/{name}?version=1", headers=MARKETING).json_body
    assert "v1" in old["source"] and old["in_force"] is False
    versions = loop.client.http.get(f"/templates/{name}/versions", headers=MARKETING).json_body
    assert [v["version"] for v in versions["versions"]] == [2, 1, 0]

    brand_new = shipped["source"]
    assert put_template(loop, "spring-launch", brand_new).status_code == 200
    listed = loop.client.http.get("/templates", headers=MARKETING).json_body["templates"]
    assert {"spring-launch", name} <= {t["name"] for t in listed}
    assert loop.client.http.get("/templates/nope", headers=MARKETING).status_code == 404
    assert put_template(loop, "Bad Name!", brand_new).status_code == 422


# --- compliance on every send -------------------------------------------------------------------------------


def test_after_one_click_unsubscribe_no_email_goes_out(loop: Loop) -> None:
    lead_id = nurtured_lead(loop)
    assert send_now(loop, lead_id)["sent"] == 1
    [email] = sent(loop)
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = email["List-Unsubscribe"].strip("<>")
    html, text = parts(email)
    assert url in text and url in html

    one_click = loop.client.http.post(
        url.split("example.test", 1)[1],
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"List-Unsubscribe=One-Click",
    )
    assert one_click.status_code == 200
    assert loop.client.http.get(url.split("example.test", 1)[1]).status_code == 200  # the link, clicked later

    page = {
        "type": "page",
        "messageId": "after-1",
        "userId": "user-anon-1",
        "properties": {"path": "/pricing"},
    }
    assert loop.track("/v1/page", page).status_code == 200
    loop.drain()
    assert send_now(loop, lead_id)["sent"] == 0
    assert len(sent(loop)) == 1
    assert loop.sales("GET", f"/leads/{lead_id}").json_body["contactable"] is False


def test_a_genuine_redirect_records_the_click_topics_and_a_tampered_one_is_refused(loop: Loop) -> None:
    lead_id = nurtured_lead(loop)
    edit_next_template(loop, lead_id)
    assert send_now(loop, lead_id)["sent"] == 1
    [email] = sent(loop)
    _, text = parts(email)
    tracked = next(
        line.strip() for line in text.splitlines() if "/r/" in line and line.strip().startswith("http")
    )
    token = tracked.rsplit("/r/", 1)[1]
    assert NEW_TOPIC not in topics(loop, lead_id)

    body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert payload["u"] == WEBINAR_URL
    evil = {**payload, "u": "https://evil.example/phish"}
    evil_body = base64.urlsafe_b64encode(json.dumps(evil).encode()).rstrip(b"=").decode()
    unsubscribe_token = email["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    for bad in (
        f"{evil_body}.{mac}",
        f"{body}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}",
        "nonsense",
        unsubscribe_token,
    ):
        refused = loop.client.http.get(f"/r/{bad}")
        assert refused.status_code == 404 and "Location" not in refused.headers
    assert NEW_TOPIC not in topics(loop, lead_id)

    followed = loop.client.http.get(f"/r/{token}")
    assert followed.status_code == 302
    assert followed.headers["Location"] == WEBINAR_URL
    assert NEW_TOPIC in topics(loop, lead_id)
    # The click is the email's own outcome, as on the scoreboard: the two agree.
    [message] = loop.sales("GET", f"/leads/{lead_id}").json_body["messages"]
    assert message["outcomes"] == {"clicked": 1}
    (row,) = [
        m for m in loop.sales("GET", "/metrics").json_body["messages"] if m["template"] == message["template"]
    ]
    assert row["clicked"] == 1


def topics(loop: Loop, lead_id: str) -> set[str]:
    return {i["topic"] for i in loop.sales("GET", f"/leads/{lead_id}").json_body["interests"]}


# --- rules --------------------------------------------------------------------------------------------------


def test_saved_rules_change_scoring_and_every_score_names_its_rules_version(loop: Loop) -> None:
    lead_id = nurtured_lead(loop)
    scores = loop.sales("GET", f"/leads/{lead_id}").json_body["scores"]
    assert scores["rules_version"] == 0
    assert points(scores, "title_executive") == 25

    current = loop.client.http.get("/rules", headers=MARKETING).json_body
    assert current["version"] == 0 and current["rules"]["thresholds"]["fit"] == 40
    document = yaml.safe_load(current["source"])
    document["fit"][0]["points"] = 33
    assert document["fit"][0]["id"] == "title_executive"
    as_yaml = {"Authorization": "Bearer dev-marketing-key", "Content-Type": "application/yaml"}
    changed = yaml.safe_dump(document).encode()
    assert loop.client.http.put("/rules", headers=SALES_TEXT, body=changed).status_code == 403
    saved = loop.client.http.put("/rules", headers=as_yaml, body=changed)
    assert saved.status_code == 200, saved.json_body
    assert saved.json_body["version"] == 1

    scores = loop.sales("GET", f"/leads/{lead_id}").json_body["scores"]
    assert scores["rules_version"] == 1
    assert points(scores, "title_executive") == 33

    as_json = loop.client.http.get("/rules", headers=MARKETING).json_body["rules"]
    as_json["fit"][0]["points"] = 12
    saved = loop.client.http.put("/rules", headers=MARKETING, body=json.dumps(as_json, indent="\t").encode())
    assert saved.status_code == 200, saved.json_body
    scores = loop.sales("GET", f"/leads/{lead_id}").json_body["scores"]
    assert (scores["rules_version"], points(scores, "title_executive")) == (2, 12)

    broken = yaml.safe_dump(document, sort_keys=False)
    broken = broken.replace("fit: 40", "fit: -5").replace("points: 33", "points: lots")
    refused = loop.client.http.put("/rules", headers=as_yaml, body=broken.encode())
    assert refused.status_code == 422
    problems = {p["field"]: p for p in refused.json_body["error"]["details"]}
    assert set(problems) == {"thresholds.fit", "fit.0.points"}
    assert broken.split("\n")[problems["thresholds.fit"]["line"] - 1].strip() == "fit: -5"
    assert "points: lots" in broken.split("\n")[problems["fit.0.points"]["line"] - 1]
    not_yaml = loop.client.http.put("/rules", headers=as_yaml, body=b"thresholds:\n  fit: [40\n")
    assert not_yaml.status_code == 422

    history = loop.client.http.get("/rules/versions", headers=MARKETING).json_body
    assert [v["version"] for v in history["versions"]] == [2, 1, 0]
    first = loop.client.http.get("/rules?version=1", headers=MARKETING).json_body
    assert first["rules"]["fit"][0]["points"] == 33 and first["in_force"] is False
    assert loop.sales("GET", "/rules").json_body["version"] == 2  # sales reads the rules it is judged by


def points(scores: dict[str, Any], rule: str) -> float:
    return next(line["points"] for line in scores["breakdown"] if line["rule"] == rule)

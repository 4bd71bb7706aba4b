"""The console's marketing pages over HTTP, without a browser: each page for a marketing key, sales refused
(403, no nav entry), CSRF on every form, a template save refused with its problems at their lines, a stale
save as a sentence, versions with a diff and restore, pause, a test send to the outbox, the rules editor, the
nurture view for a lead and for a template."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib import wiring
from tests.browser.test_console_http import FORM, headers, routed_lead, sign_in
from tests.e2e.conftest import Loop

TEMPLATE = "welcome-product-tour"
PAGES = (
    "/console/templates",
    f"/console/templates/{TEMPLATE}",
    "/console/rules",
    "/console/nurture",
    f"/console/nurture?template={TEMPLATE}",
)
BROKEN = ('{{ prospect.first_name | default("there") }}', "{{ prospect.nickname }}")


def shipped_source() -> str:
    return wiring.shipped_templates()[TEMPLATE].source


def get(loop: Loop, cookie: str, path: str) -> Any:
    return loop.client.http.get(path, headers={"Cookie": cookie})


def post(loop: Loop, cookie: str, path: str, fields: dict[str, str]) -> Any:
    return loop.client.http.post(path, headers={**FORM, "Cookie": cookie}, body=urlencode(fields))


def text(answer: Any) -> str:
    return str(answer.body.decode())


def test_every_marketing_page_answers_marketing_with_the_security_headers(loop: Loop) -> None:
    cookie, _ = sign_in(loop, "dev-marketing-key")
    for path in PAGES:
        answer = get(loop, cookie, path)
        assert answer.status_code == 200, (path, answer.body[:500])
        policy = headers(answer)["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, path
        page = text(answer)
        for link in ('href="/console/templates"', 'href="/console/rules"', 'href="/console/nurture"'):
            assert link in page, (path, link)


@pytest.mark.parametrize("path", PAGES)
def test_sales_cannot_see_or_reach_a_marketing_page(loop: Loop, path: str) -> None:
    cookie, csrf = sign_in(loop, "dev-sales-key")
    inbox = text(get(loop, cookie, "/console/leads"))
    assert 'href="/console/templates"' not in inbox and 'href="/console/rules"' not in inbox
    assert 'href="/console/nurture"' not in inbox
    answer = get(loop, cookie, path)
    assert answer.status_code == 403 and "may not use this page" in text(answer)
    if "?" not in path:  # its forms too, with a valid token
        form = post(loop, cookie, path, {"csrf": csrf, "source": "x", "email": "a@b.example"})
        assert form.status_code in (403, 405), path


def test_sales_cannot_save_pause_or_send_a_test(loop: Loop) -> None:
    cookie, csrf = sign_in(loop, "dev-sales-key")
    base = f"/console/templates/{TEMPLATE}"
    for path, fields in (
        (base, {"source": shipped_source(), "version": "0"}),
        (base + "/status", {"status": "paused"}),
        (base + "/test", {"to": "me@example.com"}),
        (base + "/restore", {"restore": "0", "version": "0"}),
        (base + "/check", {"source": shipped_source()}),
        ("/console/rules/check", {"source": "x"}),
    ):
        answer = post(loop, cookie, path, {"csrf": csrf, **fields})
        assert answer.status_code == 403, path
    assert wiring.marketing_service().template(TEMPLATE)["status"] == "active"
    assert not list(loop.outbox.glob("*.eml"))


def test_a_marketing_form_without_its_csrf_token_is_refused(loop: Loop) -> None:
    cookie, _ = sign_in(loop, "dev-marketing-key")
    base = f"/console/templates/{TEMPLATE}"
    for path in (base, base + "/status", base + "/check", "/console/rules"):
        answer = post(loop, cookie, path, {"source": shipped_source(), "status": "paused", "version": "0"})
        assert answer.status_code == 403 and "reload the page" in text(answer), path
    assert wiring.marketing_service().template_versions(TEMPLATE)["in_force"] == 0
    assert wiring.marketing_service().template(TEMPLATE)["status"] == "active"


def test_the_templates_list_shows_status_and_figures(loop: Loop) -> None:
    cookie, _ = sign_in(loop, "dev-marketing-key")
    page = text(get(loop, cookie, "/console/templates"))
    row = re.search(
        rf'<tr>\s*<td data-label="Template">\s*<a href="/console/templates/{TEMPLATE}">.*?</tr>', page, re.S
    )
    assert row, "each template links to its editor"
    for label in ("Status", "Sends", "Opens", "Clicks", "Click rate"):
        assert f'data-label="{label}"' in row.group(0)
    assert "active" in row.group(0)


def test_a_broken_template_is_refused_with_each_problem_at_its_line(loop: Loop) -> None:
    cookie, csrf = sign_in(loop, "dev-marketing-key")
    source = shipped_source().replace(*BROKEN)
    line = next(n for n, text_ in enumerate(source.split("\n"), 1) if "prospect.nickname" in text_)
    answer = post(
        loop, cookie, f"/console/templates/{TEMPLATE}", {"csrf": csrf, "source": source, "version": "0"}
    )
    page = text(answer)
    assert answer.status_code == 422 and "Not saved" in page
    assert f'data-line="{line}">Line {line}</button>' in page
    assert wiring.marketing_service().template_versions(TEMPLATE)["in_force"] == 0
    # the live check as you type: the same problem, same line, as JSON
    check = post(loop, cookie, f"/console/templates/{TEMPLATE}/check", {"csrf": csrf, "source": source})
    problems = json.loads(text(check))["problems"]
    assert check.status_code == 200 and any(
        p["line"] == line and "nickname" in p["message"] for p in problems
    )
    fixed = post(
        loop, cookie, f"/console/templates/{TEMPLATE}/check", {"csrf": csrf, "source": shipped_source()}
    )
    answer_ = json.loads(text(fixed))
    assert answer_["problems"] == [] and answer_["preview"]["subject"].startswith("Sam")


def test_save_then_a_stale_save_is_a_sentence_then_diff_and_restore(loop: Loop) -> None:
    cookie, csrf = sign_in(loop, "dev-marketing-key")
    base = f"/console/templates/{TEMPLATE}"
    edited = shipped_source().replace("Thanks for stopping by.", "Thanks for dropping in.")
    saved = post(loop, cookie, base, {"csrf": csrf, "source": edited, "version": "0"})
    assert saved.status_code == 303 and headers(saved)["location"] == base + "?done=saved"
    assert "Saved: this version is now in force." in text(get(loop, cookie, base + "?done=saved"))
    stale = post(loop, cookie, base, {"csrf": csrf, "source": edited + "\n", "version": "0"})
    assert stale.status_code == 409 and "saved by someone else after version 0" in text(stale)

    diff = text(get(loop, cookie, base + "?a=0&b=1"))
    assert '<span class="d-del">-&lt;p&gt;Thanks for stopping by.' in diff
    assert '<span class="d-add">+&lt;p&gt;Thanks for dropping in.' in diff

    restored = post(loop, cookie, base + "/restore", {"csrf": csrf, "restore": "0", "version": "1"})
    assert restored.status_code == 303
    current = wiring.marketing_service().template(TEMPLATE)
    assert current["version"] == 2 and "Thanks for stopping by." in current["source"]


def test_pause_resume_and_a_test_send_to_yourself(loop: Loop) -> None:
    cookie, csrf = sign_in(loop, "dev-marketing-key")
    base = f"/console/templates/{TEMPLATE}"
    assert post(loop, cookie, base + "/status", {"csrf": csrf, "status": "paused"}).status_code == 303
    listing = text(get(loop, cookie, "/console/templates"))
    assert re.search(rf'{TEMPLATE}</a>.*?status-paused">paused', listing, re.S)
    assert post(loop, cookie, base + "/status", {"csrf": csrf, "status": "active"}).status_code == 303
    assert wiring.marketing_service().template(TEMPLATE)["status"] == "active"

    refused = post(loop, cookie, base + "/test", {"csrf": csrf, "to": "not an address"})
    assert refused.status_code == 400 and "Give your email address" in text(refused)
    sent = post(loop, cookie, base + "/test", {"csrf": csrf, "to": "me@example.com"})
    assert sent.status_code == 303 and headers(sent)["location"].endswith("?done=tested")
    mails = [p.read_text() for p in loop.outbox.glob("*.eml")]
    assert any("To: me@example.com" in m and "[Test]" in m for m in mails)


def test_the_rules_editor_shows_problems_at_their_line_and_saves(loop: Loop) -> None:
    cookie, csrf = sign_in(loop, "dev-marketing-key")
    page = get(loop, cookie, "/console/rules")
    assert page.status_code == 200 and "No problems" in text(page)
    source = wiring.marketing_service().rules()["source"]
    broken = source + "\nthresholds: [\n"
    refused = post(loop, cookie, "/console/rules", {"csrf": csrf, "source": broken, "version": "0"})
    assert refused.status_code == 422 and re.search(r'data-line="\d+">Line \d+</button>', text(refused))
    check = json.loads(text(post(loop, cookie, "/console/rules/check", {"csrf": csrf, "source": broken})))
    assert check["problems"] and check["problems"][0]["line"]
    saved = post(
        loop, cookie, "/console/rules", {"csrf": csrf, "source": source + "\n# tuned\n", "version": "0"}
    )
    assert saved.status_code == 303
    diff = text(get(loop, cookie, "/console/rules?a=0&b=1"))
    assert '<span class="d-add">+# tuned</span>' in diff


def test_a_rules_document_with_many_comments_saves_from_the_editor(loop: Loop) -> None:
    # A marketer explains each default in comments; a form that refused what PUT /rules accepts (413) would
    # force them to curl. 40 KB of comments is well past the URL-encoded 16 KB the editor once allowed.
    cookie, csrf = sign_in(loop, "dev-marketing-key")
    source = wiring.marketing_service().rules()["source"]
    note = "why this default suits our buyers, at length"
    commented = source + "".join(f"\n# note {n}: {note}" for n in range(800))
    saved = post(loop, cookie, "/console/rules", {"csrf": csrf, "source": commented, "version": "0"})
    assert saved.status_code == 303, text(saved)[:300]


def test_the_nurture_view_explains_a_lead_and_lists_who_is_due(loop: Loop) -> None:
    cookie, csrf = sign_in(loop, "dev-marketing-key")
    lead_id = routed_lead(loop)
    found = post(loop, cookie, "/console/nurture", {"csrf": csrf, "email": "ada@bigco.example"})
    assert found.status_code == 303
    location = headers(found)["location"]
    assert location == f"/console/nurture?lead={lead_id}" and "ada" not in location
    page = text(get(loop, cookie, location))
    assert "Nothing goes next: lead is sales_ready: nurture email pauses while sales owns it" in page
    # The lead's own state is the answer for every template: said once, not once per template.
    assert page.count("nurture email pauses while sales owns it") == 1 and "not eligible" not in page
    missing = post(loop, cookie, "/console/nurture", {"csrf": csrf, "email": "nobody@nowhere.example"})
    assert missing.status_code == 404 and "no lead" in text(missing)
    due = text(get(loop, cookie, f"/console/nurture?template={TEMPLATE}"))
    assert f"Due to receive {TEMPLATE} within 7 days" in due

"""The rules lab in the console over HTTP, without a browser (README "Console", "Rules lab"): a marketer
backtests the draft in the rules editor over a small archived history; the console's status endpoint is
polled to done; the report beside the draft shows published against draft (routed, precision, leads gained
and lost with why and a link to each, unjudged leads, limits), every value escaped. A bad draft shows the
editor check's problems at their lines; an empty window says so; sales is refused; the form needs its CSRF
token."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from chalicelib import wiring
from chalicelib.wiring import DEFAULT_RULES
from tests.browser.test_console_http import sign_in
from tests.browser.test_console_marketing_http import get, post, text
from tests.e2e.conftest import Loop

PUBLISHED = 'hand_raise_events: ["Demo Requested", "Contact Sales Requested"]'
ODD = "<b>Call me</b>"  # an event name people outside the team chose: text on the page, never markup
DRAFT = DEFAULT_RULES.read_text().replace(PUBLISHED, f'hand_raise_events: ["Demo Requested", "{ODD}"]')


@pytest.fixture
def lab(loop: Loop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Loop]:
    """The loop with the event archive in a folder (as `make run` keeps it), and three leads applied today:
    bo asked for a demo (sales accepted), cy asked sales to call, dee sent an event only the draft routes."""
    monkeypatch.setenv("LEADLOOP_ARCHIVE_DIR", str(tmp_path / "archive"))
    wiring.reset()
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    batch = []
    for name, asked in (("bo", "Demo Requested"), ("cy", "Contact Sales Requested"), ("dee", ODD)):
        batch += [
            {"type": "identify", "messageId": f"{name}-1", "anonymousId": f"anon-{name}",
             "timestamp": now.isoformat(), "traits": {"email": f"{name}@bigco.example"}},
            {"type": "track", "messageId": f"{name}-2", "anonymousId": f"anon-{name}", "event": asked,
             "timestamp": (now + timedelta(minutes=2)).isoformat()},
        ]  # fmt: skip
    assert loop.track("/v1/batch", {"batch": batch}).status_code == 200
    loop.drain()
    bo = loop.sales("GET", "/leads/bo@bigco.example").json_body
    assert loop.sales("POST", f"/leads/{bo['id']}/accept", {}).status_code == 200
    yield loop


def _window(days_back: int = 30, days: int = 30) -> dict[str, str]:
    today = datetime.now(UTC).date()
    start = today - timedelta(days=days_back)
    return {"from": start.isoformat(), "to": (start + timedelta(days=days)).isoformat()}


def _start(loop: Loop, cookie: str, csrf: str, source: str, window: dict[str, str]) -> Any:
    return post(
        loop, cookie, "/console/rules/backtest", {"csrf": csrf, "source": source, "version": "0", **window}
    )


def _finished(loop: Loop, cookie: str, location: str) -> dict[str, Any]:
    job_id = location.rsplit("=", 1)[1]
    for _ in range(600):  # the local runner is a thread: poll, as console.js does
        answer = get(loop, cookie, f"/console/rules/backtest/{job_id}")
        assert answer.status_code == 200, answer.body[:300]
        found: dict[str, Any] = answer.json_body
        if found["status"] not in ("queued", "running"):
            return found
        time.sleep(0.05)
    raise AssertionError("the backtest never finished")


def test_a_backtest_of_the_draft_shows_its_report_beside_the_draft(lab: Loop) -> None:
    cookie, csrf = sign_in(lab, "dev-marketing-key")
    editor = text(get(lab, cookie, "/console/rules"))
    window = _window()
    assert f'name="from" value="{window["from"]}"' in editor, "the form offers the last 30 days"
    assert 'formaction="/console/rules/backtest"' in editor

    started = _start(lab, cookie, csrf, DRAFT, window)
    assert started.status_code == 303
    location = started.headers["Location"]
    assert re.fullmatch(r"/console/rules\?backtest=bt-[0-9a-f]+", location)
    polled = _finished(lab, cookie, location)
    assert polled["status"] == "done" and polled["progress"] == 1.0
    assert 'id="backtest-done"' in polled["panel"]

    page = text(get(lab, cookie, location))
    assert str(escape(DRAFT)) in page, "the draft it judged stays in the editor"
    headline = re.search(r'<table [^>]*id="backtest-headline".*?</table>', page, re.S)
    assert headline
    rows = {
        label: (a, b)
        for label, a, b in re.findall(
            r'<th scope="row">([^<]+)</th><td>([^<]*)</td><td>([^<]*)</td>', headline[0]
        )
    }
    assert rows["Leads routed to sales"] == ("2", "2")
    assert rows["Precision (good of judged)"] == ("100%", "100%")  # bo was accepted: good under both
    assert rows["Routed but not judged yet"] == ("1", "1")  # cy under the rules in force, dee under the draft

    cy = lab.sales("GET", "/leads/cy@bigco.example").json_body["id"]
    dee = lab.sales("GET", "/leads/dee@bigco.example").json_body["id"]
    gained = re.search(r'<ul class="changes" id="backtest-gained">.*?</ul>', page, re.S)
    lost = re.search(r'<ul class="changes" id="backtest-lost">.*?</ul>', page, re.S)
    assert gained and lost
    assert f'<a href="/console/leads/{dee}">{dee}</a>' in gained[0]
    assert f'<a href="/console/leads/{cy}">{cy}</a>' in lost[0]
    assert "&lt;b&gt;Call me&lt;/b&gt;" in gained[0] and ODD not in page  # the why, as text
    assert "Leads gained: 1" in page and "Leads lost: 1" in page
    assert 'id="backtest-unjudged">Unjudged: 2 of 3 lead' in page
    assert "cannot know what sales would have done" in page
    assert '<svg class="chart"' in page and 'id="backtest-scores"' in page


def test_a_bad_draft_shows_the_editor_checks_problems_at_their_lines(lab: Loop) -> None:
    cookie, csrf = sign_in(lab, "dev-marketing-key")
    broken = DEFAULT_RULES.read_text().replace("  fit: 40", "  fit: lots")
    checked = post(lab, cookie, "/console/rules/check", {"csrf": csrf, "source": broken}).json_body[
        "problems"
    ]
    assert checked and all(problem["line"] for problem in checked)
    answer = _start(lab, cookie, csrf, broken, _window())
    page = text(answer)
    assert answer.status_code == 422 and "Not backtested: the draft has problems" in page
    for problem in checked:
        assert f'data-line="{problem["line"]}">Line {problem["line"]}</button>' in page
    assert str(escape(broken)) in page, "the draft is kept in the editor"


def test_an_empty_window_says_so(lab: Loop) -> None:
    cookie, csrf = sign_in(lab, "dev-marketing-key")
    started = _start(lab, cookie, csrf, DRAFT, _window(days_back=200, days=10))
    assert started.status_code == 303
    assert _finished(lab, cookie, started.headers["Location"])["status"] == "done"
    page = text(get(lab, cookie, started.headers["Location"]))
    assert 'id="backtest-empty"' in page and "nothing to replay" in page


def test_a_window_backwards_is_a_sentence_beside_the_kept_draft(lab: Loop) -> None:
    cookie, csrf = sign_in(lab, "dev-marketing-key")
    window = _window()
    answer = _start(lab, cookie, csrf, DRAFT, {"from": window["to"], "to": window["from"]})
    page = text(answer)
    assert (
        answer.status_code == 422 and "Not backtested: &#39;from&#39; must not be after &#39;to&#39;" in page
    )
    assert f'name="from" value="{window["to"]}"' in page


def test_sales_may_not_backtest_or_read_a_backtest(lab: Loop) -> None:
    marketing, marketing_csrf = sign_in(lab, "dev-marketing-key")
    location = _start(lab, marketing, marketing_csrf, DRAFT, _window()).headers["Location"]
    job_id = location.rsplit("=", 1)[1]
    cookie, csrf = sign_in(lab, "dev-sales-key")
    assert _start(lab, cookie, csrf, DRAFT, _window()).status_code == 403
    for path in (f"/console/rules/backtest/{job_id}", location):
        answer = get(lab, cookie, path)
        assert answer.status_code == 403 and "may not use this page" in text(answer), path


def test_the_backtest_form_needs_its_csrf_token(lab: Loop) -> None:
    cookie, _ = sign_in(lab, "dev-marketing-key")
    answer = post(lab, cookie, "/console/rules/backtest", {"source": DRAFT, **_window()})
    assert answer.status_code == 403 and "reload the page" in text(answer)

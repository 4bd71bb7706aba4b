"""The rules lab in a real Chromium, as a marketer uses it: edit the rules so a demo request no longer routes,
press "Backtest this draft", watch console.js poll the job to done and put the report beside the draft with
the lead it would lose linked. axe-core finds no serious or critical violation, no CSP violation, and the
page leaves docs/console/rules-backtest.png. Waits are on conditions, never sleeps."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from chalicelib import wiring
from tests.browser.conftest import ConsoleStack
from tests.browser.test_console_browser import DESKTOP, Console, arrive


@pytest.fixture(scope="module")
def lab_stack(
    console_stack: ConsoleStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleStack]:
    """The served console with the event archive in a folder, as `make run` keeps it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEADLOOP_ARCHIVE_DIR", str(tmp_path_factory.mktemp("archive")))
        wiring.reset()
        yield console_stack
    wiring.reset()


@pytest.fixture
def console(browser: Any, lab_stack: ConsoleStack) -> Iterator[Console]:
    context = browser.new_context(viewport=DESKTOP)
    try:
        yield Console(context.new_page(), lab_stack.url)
    finally:
        context.close()


def test_a_marketer_backtests_a_draft_and_reads_the_report_beside_it(
    console: Console, lab_stack: ConsoleStack
) -> None:
    arrive(lab_stack, "lab-ada", firstName="Ada", lastName="Lab", company="Backtest Co")
    page = console.page
    console.sign_in("dev-marketing-key")
    page.get_by_role("link", name="Rules").click()
    rules = page.get_by_label("Rules document")
    rules.fill(rules.input_value().replace('"Demo Requested", ', ""))
    expect(page.locator("#problems")).to_contain_text("No problems")

    page.get_by_role("button", name="Backtest this draft").click()
    expect(page.locator("#backtest[data-finished='done']")).to_be_visible(timeout=30_000)
    headline = page.locator("#backtest-headline")
    expect(headline.get_by_role("row", name="Leads routed to sales")).to_contain_text("1")
    lost = page.locator("#backtest-lost")
    expect(lost.get_by_role("link")).to_have_count(1)
    expect(page.locator("#backtest-limits")).to_contain_text("cannot know what sales would have done")
    expect(page.get_by_label("Rules document")).not_to_have_value(
        wiring.marketing_service().rules()["source"]
    )
    # The same page loaded again renders the ended job's panel itself (no poll): it still says how it ended,
    # as it must when a quick job ends before the page that started it has loaded.
    page.reload()
    expect(page.locator("#backtest[data-finished='done']")).to_be_visible()
    expect(page.locator("#backtest")).not_to_have_attribute("data-poll", re.compile(".+"))
    console.check("rules-backtest")

    lost.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Journey")).to_be_visible()

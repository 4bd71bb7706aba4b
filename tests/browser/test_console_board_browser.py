"""The scoreboard and the activity feed in a real Chromium: both load for a signed-in salesperson with
figures from a lead that arrived through `/v1/batch`, axe-core finds no serious or critical violation, no
Content-Security-Policy violation, and a screenshot of each lands in docs/console/. No sleeps, no timings."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import ConsoleStack
from tests.browser.test_console_browser import Console, arrive
from tests.browser.test_console_browser import console as console  # noqa: F401 - the fixture


def test_the_scoreboard_and_the_feed_load_accessibly(console: Console, console_stack: ConsoleStack) -> None:
    arrive(console_stack, "board", firstName="Bo", lastName="Ard", company="Boardroom Ltd")
    console.sign_in("dev-sales-key")
    page = console.page

    page.get_by_role("link", name="Scoreboard").click()
    expect(page.get_by_role("heading", name="Scoreboard", exact=True)).to_be_visible()
    expect(page.get_by_role("img", name="Leads reaching each stage")).to_be_visible()
    page.get_by_role("link", name="Last 30 days").click()
    expect(page.locator(".headline")).to_contain_text("Leads routed")
    console.check("scoreboard")

    page.get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", name="Activity", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="notified").first).to_be_visible()
    page.get_by_label("What").select_option(label="notified")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="transition")).to_have_count(0)
    # A notification names its channels, never a path on the server.
    expect(page.locator("table.feed")).not_to_contain_text("/tmp/")
    console.check("activity")

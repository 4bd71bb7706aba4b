"""The console in a real Chromium, as a salesperson and a marketer use it: sign in, find a lead that arrived
through `/v1/batch`, read its journey, recycle it with a reason and see its state change; what a role may
not do is not offered; a lead named as markup shows as text; sign-out and a revoked key end the session.

Every page checked runs axe-core (no serious or critical violations) and must load with no Content-Security-
Policy violation in the console. Screenshots of each page land in docs/console/ (README shows them).
Waits are on conditions (Playwright's expect), never sleeps, and nothing here times anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from chalicelib import wiring
from chalicelib.usecases.auth import hash_key
from tests.browser.conftest import AXE, SCREENSHOTS, ConsoleStack
from tests.e2e.test_lead_loop import journey

# Generous: two cores shared by many processes. A condition usually holds in milliseconds.
expect.set_options(timeout=20_000)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
XSS_NAME = "<img src=x onerror=alert(1)>"


class Console:
    """One browser tab on the console, with the checks every page gets."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.csp_violations: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def go(self, path: str) -> None:
        self.page.goto(self.url + path)

    def sign_in(self, key: str) -> None:
        self.go("/console/sign-in")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("heading", name="Sales inbox")).to_be_visible()

    def open_lead(self, search: str, name: str) -> None:
        self.go("/console/leads")
        self.page.get_by_label("Search email, name or company").fill(search)
        self.page.get_by_role("button", name="Search").click()
        self.page.get_by_role("link", name=name).first.click()
        expect(self.page.get_by_role("heading", name="Journey")).to_be_visible()

    def check(self, screenshot: str | None = None) -> None:
        """axe-core in the page: no serious or critical violation; no CSP violation; optional screenshot."""
        self.page.wait_for_load_state("load")
        self.page.evaluate(AXE.read_text())
        found = self.page.evaluate(
            """async () => {
              const result = await axe.run(document, {resultTypes: ["violations"]});
              return result.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target).join(", ")}`);
            }"""
        )
        assert found == [], f"accessibility violations on {self.page.url}"
        assert self.csp_violations == [], f"CSP violations on {self.page.url}"
        if screenshot is not None:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SCREENSHOTS / f"{screenshot}.png"), full_page=True)

    def first_load_bytes(self, path: str) -> int:
        """What a first visit to `path` transfers: the page and every file it loads, with an empty cache."""
        sizes: list[int] = []
        self.page.on("response", lambda response: sizes.append(len(response.body())))
        self.page.route("**/*", lambda route: route.continue_())  # bypasses the HTTP cache
        self.go(path)
        self.page.wait_for_load_state("load")
        self.page.unroute("**/*")
        return sum(sizes)

    def fits_the_screen(self) -> bool:
        return bool(self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.fixture
def console(browser: Any, console_stack: ConsoleStack) -> Iterator[Console]:
    context = browser.new_context(viewport=DESKTOP)
    try:
        yield Console(context.new_page(), console_stack.url)
    finally:
        context.close()


def arrive(stack: ConsoleStack, tag: str, **traits: Any) -> None:
    """A prospect who reads three pages, identifies and requests a demo, through POST /v1/batch."""
    batch = journey(email=f"{tag}@example.com", anon=f"anon-{tag}")
    batch["batch"][3]["traits"].update(traits)
    stack.batch(batch)


def test_sales_finds_a_batch_lead_reads_its_journey_and_recycles_it(
    console: Console, console_stack: ConsoleStack
) -> None:
    arrive(console_stack, "grace", firstName="Grace", lastName="Hopper", company="Recyclo Systems")
    console.go("/console/sign-in")
    console.check("sign-in")
    console.sign_in("dev-sales-key")
    console.check("inbox")
    assert 2_000 < console.first_load_bytes("/console/leads") <= 250 * 1024  # the page, its CSS and JS

    console.open_lead("Recyclo", "Grace Hopper")
    page = console.page
    journey_section = page.locator("section", has=page.get_by_role("heading", name="Journey"))
    expect(journey_section).to_contain_text("Read /pricing")
    expect(journey_section).to_contain_text("raised a hand: Demo Requested")
    expect(journey_section).to_contain_text("nurturing → sales ready")
    expect(page.locator("#lead-state")).to_have_text("sales ready")
    expect(page.get_by_role("heading", name="Score")).to_be_visible()
    console.check("lead")

    page.get_by_text("Recycle", exact=True).first.click()  # the action's disclosure
    form = page.locator('form[data-action="recycle"]')
    form.get_by_label("Reason").select_option(label="No budget")
    form.get_by_label("Revisit on (optional)").fill(
        (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    )
    form.get_by_label("Note (optional)").fill("Budget returns next quarter")
    form.get_by_role("button", name="Recycle").click()

    expect(page.get_by_role("status")).to_have_text("Recycled: the lead is back in nurture with your reason.")
    expect(page.locator("#lead-state")).to_have_text("nurturing")
    expect(journey_section).to_contain_text("sales ready → nurturing")
    expect(journey_section).to_contain_text("Budget returns next quarter")
    console.check("lead-recycled")


def test_inbox_and_lead_page_fit_a_phone(browser: Any, console_stack: ConsoleStack) -> None:
    arrive(console_stack, "phone", firstName="Pho", lastName="Ne", company="Handheld Ltd")
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    try:
        console = Console(context.new_page(), console_stack.url)
        console.sign_in("dev-sales-key")
        assert console.fits_the_screen(), "the inbox scrolls sideways at 390 px"
        console.check("inbox-phone")
        console.open_lead("Handheld", "Pho Ne")
        assert console.fits_the_screen(), "the lead page scrolls sideways at 390 px"
        console.check("lead-phone")
    finally:
        context.close()


def test_marketing_is_not_offered_sales_actions(console: Console, console_stack: ConsoleStack) -> None:
    arrive(console_stack, "mara", firstName="Mara", lastName="Keting", company="Brandwise")
    console.sign_in("dev-marketing-key")
    console.open_lead("Brandwise", "Mara Keting")
    page = console.page
    expect(page.get_by_role("heading", name="Journey")).to_be_visible()
    expect(page.get_by_role("heading", name="Actions")).to_have_count(0)
    expect(page.get_by_role("button", name="Accept")).to_have_count(0)
    console.check("lead-marketing")
    # Refused server-side too: a hand-made POST with the page's own token is a 403 page.
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    answer = page.request.post(page.url + "/accept", form={"csrf": token or ""}, max_redirects=0)
    assert answer.status == 403 and "may not" in answer.text()


def test_a_lead_named_as_markup_shows_as_those_characters(
    console: Console, console_stack: ConsoleStack
) -> None:
    arrive(console_stack, "xss", firstName=XSS_NAME, lastName="", company="Markup Inc")
    console.sign_in("dev-sales-key")
    console.go("/console/leads")
    console.page.get_by_label("Search email, name or company").fill("Markup")
    console.page.get_by_role("button", name="Search").click()
    expect(console.page.get_by_role("link", name=XSS_NAME)).to_be_visible()
    console.page.get_by_role("link", name=XSS_NAME).click()
    expect(console.page.get_by_role("heading", name=XSS_NAME)).to_be_visible()
    expect(console.page.locator("img")).to_have_count(0)
    assert console.dialogs == [], "markup from a prospect ran as script"
    console.check()


def test_sign_out_and_a_revoked_key_end_the_session(browser: Any, console_stack: ConsoleStack) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        console = Console(context.new_page(), console_stack.url)
        console.sign_in("dev-admin-key")
        console.page.get_by_role("button", name="Sign out").click()
        expect(console.page.get_by_role("heading", name="Sign in")).to_be_visible()
        console.go("/console/leads")
        expect(console.page.get_by_role("heading", name="Sign in")).to_be_visible()

        console.page.get_by_label("API key").fill("not-a-key")
        console.page.get_by_role("button", name="Sign in").click()
        expect(console.page.get_by_role("alert")).to_have_text("that API key is unknown or revoked")
        console.check("sign-in-refused")

        console.sign_in("dev-admin-key")
        wiring.keys().revoke(hash_key("dev-admin-key"), datetime.now(UTC))
        console.page.reload()
        expect(console.page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        context.close()

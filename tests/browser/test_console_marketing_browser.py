"""The console's marketing pages in a real Chromium, as a marketer uses them: edit a template with an error
and see it at its line as they type, fix it and see the preview, save, compare two versions and restore
one; the rules editor and the nurture view. Every page runs axe-core (no serious or critical violation),
loads with no Content-Security-Policy violation, and leaves a screenshot in docs/console/. Waits are on
conditions, never sleeps; nothing here times anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from chalicelib import wiring
from tests.browser.conftest import ConsoleStack
from tests.browser.test_console_browser import DESKTOP, Console, arrive

TEMPLATE = "welcome-product-tour"


@pytest.fixture
def console(browser: Any, console_stack: ConsoleStack) -> Iterator[Console]:
    context = browser.new_context(viewport=DESKTOP)
    try:
        yield Console(context.new_page(), console_stack.url)
    finally:
        context.close()


def test_a_marketer_fixes_a_template_at_its_line_saves_it_and_restores_a_version(console: Console) -> None:
    page = console.page
    console.sign_in("dev-marketing-key")
    page.get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="Email templates")).to_be_visible()
    console.check("templates")

    page.get_by_role("link", name=TEMPLATE, exact=True).click()
    expect(page.get_by_role("heading", name=f"Template {TEMPLATE}")).to_be_visible()
    source = page.get_by_label("Template source")
    shipped = source.input_value()
    broken_line = next(n for n, line in enumerate(shipped.split("\n"), 1) if "<p>Hi {{" in line)
    broken = shipped.replace(
        '<p>Hi {{ prospect.first_name | default("there") }}', "<p>Hi {{ prospect.nickname }}"
    )
    source.fill(broken)
    problems = page.locator("#problems")
    expect(problems.get_by_role("button", name=f"Line {broken_line}")).to_be_visible()
    expect(problems).to_contain_text("prospect has no field 'nickname'")
    expect(problems.locator("pre.at-line").first).to_contain_text("{{ prospect.nickname }}")
    console.check("template-editor-problem")

    source.fill(shipped.replace("Thanks for stopping by.", "Thanks for dropping in."))
    expect(problems).to_contain_text("No problems")
    expect(page.locator("#preview-text")).to_contain_text("Thanks for dropping in.")
    expect(page.locator("#preview-subject")).to_contain_text("a 4-minute tour")
    page.get_by_role("button", name="Save as version 1").click()
    expect(page.get_by_role("status")).to_have_text("Saved: this version is now in force.")
    expect(page.locator("#version-in-force")).to_have_text("1")
    console.check("template-editor")

    page.get_by_role("button", name="Compare").click()  # the newest against the one before
    diff = page.locator("pre.diff")
    expect(diff.locator(".d-del")).to_contain_text(["Thanks for stopping by."])
    expect(diff.locator(".d-add")).to_contain_text(["Thanks for dropping in."])
    console.check("template-diff")

    page.get_by_role("button", name="Restore version 0").click()
    expect(page.get_by_role("status")).to_contain_text("Restored")
    expect(page.locator("#version-in-force")).to_have_text("2")
    expect(page.get_by_label("Template source")).to_have_value(shipped)
    assert wiring.marketing_service().template(TEMPLATE)["version"] == 2


def test_the_rules_editor_and_the_nurture_view(console: Console, console_stack: ConsoleStack) -> None:
    arrive(console_stack, "nell", firstName="Nell", lastName="Urture", company="Drip Co")
    page = console.page
    console.sign_in("dev-marketing-key")
    page.get_by_role("link", name="Rules").click()
    expect(page.get_by_role("heading", name="Rules", exact=True)).to_be_visible()
    rules = page.get_by_label("Rules document")
    rules.fill(rules.input_value() + "\nthresholds: [\n")
    expect(page.locator("#problems")).to_contain_text("not valid YAML")
    console.check("rules")

    page.get_by_role("link", name="Nurture").click()
    page.get_by_label("A lead's email").fill("nell@example.com")
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#next-template")).to_contain_text("nurture email pauses while sales owns it")
    expect(page.locator("#plan-h")).to_contain_text("nell@example.com")  # who, not "this lead"
    console.check("nurture")


def test_sales_is_offered_no_marketing_page(console: Console) -> None:
    console.sign_in("dev-sales-key")
    for label in ("Templates", "Rules", "Nurture"):
        expect(console.page.get_by_role("link", name=label, exact=True)).to_have_count(0)
    console.go("/console/templates")
    expect(console.page.get_by_role("heading", name="Not for your role")).to_be_visible()

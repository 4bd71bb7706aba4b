"""Template checks a marketer relies on: topics against the rules' vocabulary (at save time and in the lint),
every problem of a template in one answer, and the pause/resume/delete lifecycle."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from chalicelib.adapters.template_library import (
    ACTIVE,
    DELETED,
    PAUSED,
    IllegalStatusChange,
    choosable,
    status_change,
)
from chalicelib.adapters.templates import TemplateStatus, parse_template, validate_template
from chalicelib.entrypoints.lint import DEFAULT_RULES, main
from chalicelib.errors import InvalidContent
from chalicelib.usecases.rules_text import check_rules_text
from tests.unit.test_templates import GOOD

KNOWN = frozenset({"pricing", "reporting", "roi"})
TOPICS_LINE = 3  # the topics: line of GOOD


def test_a_topic_outside_the_rules_vocabulary_is_named_with_the_known_ones() -> None:
    source = GOOD.replace("topics: [reporting]", "topics: [pricng, reporting]")
    [problem] = validate_template("t", source, topics=KNOWN)
    assert (problem.line, problem.field) == (TOPICS_LINE, "topics")
    assert "'pricng'" in problem.message and "pricing, reporting, roi" in problem.message
    assert validate_template("t", GOOD, topics=KNOWN) == []
    assert validate_template("t", source) == []  # without a vocabulary (loading what is stored) no check


def test_every_problem_of_a_template_comes_in_one_answer() -> None:
    source = GOOD.replace("topics: [reporting]", "topics: [pricng]\npriority: high\nsize: big")
    source = source.replace("<p>Hi {{", "<p>{{ prospect.shoe_size }} Hi {{", 1)
    source = source.replace("Unsubscribe: {{ unsubscribe_url }}", "{{ '-' * 5000 }}")
    with pytest.raises(InvalidContent) as caught:
        parse_template("t", source, topics=KNOWN)
    details = caught.value.details
    assert isinstance(details, list)
    fields = [(p["line"], p.get("field")) for p in details if p.get("field")]
    assert fields == [(3, "topics"), (4, "priority"), (5, "size")]
    messages = " | ".join(p["message"] for p in details)
    assert "shoe_size" in messages  # an unknown field of the prospect, with its line
    assert "unsubscribe" in messages  # the text block lost its unsubscribe link
    assert "1000" in messages or "1,000" in messages  # the render budget: `* n` over 1,000
    assert f"has {len(details)} problem(s)" in caught.value.message


def test_render_problems_show_beside_front_matter_problems() -> None:
    source = GOOD.replace("stages: [awareness]", "stages: [someday]")
    source = source.replace("<p>Hi {{", "<p>{{ prospect.company }} Hi {{", 1)  # no default: fails to render
    problems = validate_template("t", source)
    assert any(p.field == "stages" for p in problems)
    assert any("fails to render" in p.message and "company" in p.message for p in problems)


def test_the_lint_names_a_topic_the_rules_do_not_know(tmp_path: Path) -> None:
    known = check_rules_text(DEFAULT_RULES.read_text())[0]
    assert known is not None
    topic = known.topics[0].topic
    (tmp_path / "typo.md.j2").write_text(GOOD.replace("topics: [reporting]", "topics: [pricng]"))
    (tmp_path / "fine.md.j2").write_text(GOOD.replace("topics: [reporting]", f"topics: [{topic}]"))
    out = io.StringIO()
    assert main([str(tmp_path)], out) == 1
    lines = out.getvalue().splitlines()
    assert any(
        line.startswith(f"{tmp_path / 'typo.md.j2'}:{TOPICS_LINE}: ") and "'pricng'" in line for line in lines
    )
    assert not any("fine.md.j2" in line for line in lines)


def test_the_lint_reads_topics_from_the_rules_document_it_is_given(tmp_path: Path) -> None:
    rules = DEFAULT_RULES.read_text().replace(
        "topics:\n", "topics:\n  - {topic: webinars, url: '/webinars'}\n", 1
    )
    (tmp_path / "rules.yaml").write_text(rules)
    (tmp_path / "webinar.md.j2").write_text(GOOD.replace("topics: [reporting]", "topics: [webinars]"))
    out = io.StringIO()
    assert main([str(tmp_path / "webinar.md.j2")], io.StringIO()) == 1
    assert main([str(tmp_path / "webinar.md.j2"), str(tmp_path / "rules.yaml")], out) == 0, out.getvalue()


@pytest.mark.parametrize(
    ("current", "wanted", "change"),
    [
        (ACTIVE, PAUSED, "pause"),
        (PAUSED, ACTIVE, "resume"),
        (ACTIVE, DELETED, "delete"),
        (PAUSED, DELETED, "delete"),
        (ACTIVE, ACTIVE, None),
        (PAUSED, PAUSED, None),
    ],
)
def test_allowed_status_changes(current: TemplateStatus, wanted: TemplateStatus, change: str | None) -> None:
    assert status_change("t", current, wanted) == change


@pytest.mark.parametrize("wanted", [ACTIVE, PAUSED, DELETED])
def test_a_deleted_template_cannot_change_again(wanted: TemplateStatus) -> None:
    with pytest.raises(IllegalStatusChange, match="was deleted") as caught:
        status_change("t", DELETED, wanted)
    assert caught.value.details == {"status": "deleted", "requested": wanted.value}


def test_only_active_templates_are_choosable() -> None:
    from dataclasses import replace

    good = parse_template("good", GOOD)
    templates = {"a": good, "p": replace(good, status=PAUSED), "d": replace(good, status=DELETED)}
    assert list(choosable(templates)) == ["a"]


def test_a_link_topic_outside_the_rules_vocabulary_is_named_at_its_line() -> None:
    # A click on such a link records an interest no template or rule can match: nurture would wait on it.
    link = "{{ link('https://example.com/dashboards', topics=['dashboards', 'reporting']) }}"
    source = GOOD.replace("{% block html %}", "{% block html %}\n" + link, 1)
    [problem] = validate_template("t", source, topics=KNOWN)
    assert "'dashboards'" in problem.message and "'reporting'" not in problem.message.split(";")[0]
    assert source.splitlines()[problem.line - 1].strip() == link
    assert validate_template("t", source) == []  # loading what is stored is never refused

"""Message templates: the shipped catalogue, front matter, validation with line numbers, and the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.adapters.templates import (
    ParsedTemplate,
    ProspectFields,
    RenderContext,
    SenderFields,
    TemplateProblem,
    TemplateRenderer,
    load_shipped_templates,
    parse_template,
    render,
    validate_template,
)
from chalicelib.domain.catalogue import Stage, TemplateMeta, meta_from_front_matter
from chalicelib.errors import InvalidContent, NotFound

SENDER = SenderFields(name="Maya Ortiz", company="Acme Analytics", address="1 Market St, Springfield")
UNSUBSCRIBE = "https://leadloop.example/unsubscribe/tok?a=1&b=2"
HOSTILE = ProspectFields(
    email="eve@example.com",
    first_name="<script>alert(1)</script>",
    last_name="O'Brien & Co",
    company="Evil <b>Corp</b>",
    title="CTO",
    persona="technical",
    stage="decision",
    top_interests=("security", "api"),
)
NEWCOMER = ProspectFields(email="new@example.com")


def tracked(url: str, topics: tuple[str, ...]) -> str:
    return f"https://t.leadloop.example/r?to={url}&topics={','.join(topics)}"


def context(prospect: ProspectFields = HOSTILE, link_builder=tracked) -> RenderContext:
    return RenderContext(
        prospect=prospect, sender=SENDER, unsubscribe_url=UNSUBSCRIBE, link_builder=link_builder
    )


GOOD = """---
subject: "{{ prospect.first_name | default('Hi') }}, see what changed"
topics: [reporting]
stages: [awareness]
personas: [practitioner]
---
{% block html %}
<p>Hi {{ prospect.first_name | default("there") }},</p>
<p><a href="{{ link('https://acme.example/guide', topics=['reporting']) }}">Read the guide</a></p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
{% endblock %}
{% block text %}
Hi {{ prospect.first_name | default("there") }},
Guide: {{ link('https://acme.example/guide', topics=['reporting']) }}
Unsubscribe: {{ unsubscribe_url }}
{% endblock %}
"""
HTML_LINE = 8  # the "<p>Hi ..." line of GOOD


def with_html_line(extra: str) -> str:
    """GOOD with `extra` prepended to the html block's first content line (line HTML_LINE)."""
    return GOOD.replace("<p>Hi", extra + "<p>Hi", 1)


def unchecked(source: str, name: str = "raw") -> ParsedTemplate:
    """A ParsedTemplate built without validation, as a stored template from an older version could be."""
    meta = TemplateMeta(name=name, subject="Hello", topics=("reporting",), stages=(), personas=())
    return ParsedTemplate(meta=meta, source=source)


# -- the shipped catalogue ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> dict[str, ParsedTemplate]:
    return load_shipped_templates()


def test_at_least_eight_templates_ship(shipped: dict[str, ParsedTemplate]) -> None:
    assert len(shipped) >= 8
    assert all(name == parsed.meta.name for name, parsed in shipped.items())


def test_every_shipped_template_validates_clean() -> None:
    folder = Path(__file__).resolve().parents[2] / "templates"
    for path in sorted(folder.glob("*.md.j2")):
        assert validate_template(path.name.removesuffix(".md.j2"), path.read_text()) == [], path.name


@pytest.mark.parametrize("prospect", [HOSTILE, NEWCOMER], ids=["hostile", "newcomer"])
def test_every_shipped_template_renders_safely(shipped: dict[str, ParsedTemplate], prospect) -> None:
    for name, parsed in shipped.items():
        email = render(parsed, context(prospect))
        assert email.subject and "\n" not in email.subject, name
        assert "<script>" not in email.html, name
        assert UNSUBSCRIBE.replace("&", "&amp;") in email.html, name
        assert UNSUBSCRIBE in email.text, name
        if prospect is HOSTILE:
            assert "Hi &lt;script&gt;alert(1)&lt;/script&gt;," in email.html, name
            assert "Hi <script>alert(1)</script>," in email.text, name
        else:
            assert "Hi there," in email.html and "Hi there," in email.text, name


def test_shipped_links_are_tracked_with_topics(shipped: dict[str, ParsedTemplate]) -> None:
    calls: list[tuple[str, tuple[str, ...]]] = []

    def recording(url: str, topics: tuple[str, ...]) -> str:
        calls.append((url, topics))
        return tracked(url, topics)

    for name, parsed in shipped.items():
        calls.clear()
        email = render(parsed, context(link_builder=recording))
        assert calls, f"{name} has no tracked links"
        assert all(topics for _, topics in calls), name
        assert "https://t.leadloop.example/r?to=" in email.text, name


def test_shipped_catalogue_covers_stages_personas_topics_and_recycle_reasons(
    shipped: dict[str, ParsedTemplate],
) -> None:
    metas = [parsed.meta for parsed in shipped.values()]
    assert {stage for m in metas for stage in m.stages} == set(Stage)
    assert {persona for m in metas for persona in m.personas} == {"executive", "practitioner", "technical"}
    topics = {topic for m in metas for topic in m.topics}
    # Every topic the default rules infer has templates (a template topic outside them could never match).
    assert {"pricing", "roi", "integrations", "security", "case_studies", "onboarding", "reporting"} <= topics
    reasons = {reason for m in metas for reason in m.recycle_reasons}
    assert {"bad_timing", "not_ready", "no_budget", "no_authority"} <= reasons


def test_missing_templates_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no templates folder"):
        load_shipped_templates(tmp_path / "nowhere")


def test_a_broken_file_in_the_folder_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "good.md.j2").write_text(GOOD)
    (tmp_path / "broken.md.j2").write_text(GOOD.replace("{% endblock %}", "", 1))
    with pytest.raises(InvalidContent, match="'broken'"):
        load_shipped_templates(tmp_path)


# -- rendering -----------------------------------------------------------------------------------------------


def test_html_is_escaped_and_text_and_subject_are_not() -> None:
    email = render(parse_template("good", GOOD), context())
    assert email.subject == "<script>alert(1)</script>, see what changed"
    assert "Hi &lt;script&gt;alert(1)&lt;/script&gt;," in email.html
    assert "Hi <script>alert(1)</script>," in email.text
    tracked_guide = "https://t.leadloop.example/r?to=https://acme.example/guide&topics=reporting"
    assert f'href="{tracked_guide.replace("&", "&amp;")}"' in email.html
    assert f"Guide: {tracked_guide}\n" in email.text


def test_unknown_first_name_falls_back_to_the_default() -> None:
    email = render(parse_template("good", GOOD), context(NEWCOMER))
    assert email.subject == "Hi, see what changed"
    assert email.text.startswith("Hi there,")


def test_subject_stays_one_line_whatever_the_data_holds() -> None:
    source = GOOD.replace("{{ prospect.first_name | default('Hi') }}", "{{ prospect.company | default('') }}")
    prospect = ProspectFields(email="x@example.com", company="Acme\r\nBcc: victim@example.com")
    email = render(parse_template("good", source), context(prospect))
    assert email.subject == "Acme Bcc: victim@example.com, see what changed"


def test_rendering_is_deterministic() -> None:
    parsed = parse_template("good", GOOD)
    first = render(parsed, context())
    assert render(parsed, context()) == first
    assert TemplateRenderer().render(parsed, context()) == first


def test_a_missing_field_is_an_error_naming_it_with_its_line() -> None:
    parsed = unchecked(with_html_line("{{ prospect.company }}"))
    assert render(parsed, context()).html.startswith("Evil &lt;b&gt;Corp&lt;/b&gt;<p>")
    with pytest.raises(InvalidContent, match=rf"line {HTML_LINE}: prospect\.company is not known") as caught:
        render(parsed, context(NEWCOMER))
    assert caught.value.details == {"line": HTML_LINE}


def test_validation_reports_a_field_used_without_a_default() -> None:
    problems = validate_template("t", with_html_line("{{ prospect.company }}"))
    assert [p.line for p in problems] == [HTML_LINE]
    assert "a prospect known only by email" in problems[0].message
    assert "prospect.company" in problems[0].message
    assert validate_template("t", with_html_line("{{ prospect.company | default('your team') }}")) == []
    assert validate_template("t", with_html_line("{% if prospect.company is defined %}x{% endif %}")) == []


def test_link_refuses_non_web_addresses() -> None:
    problems = validate_template("t", with_html_line("<a href=\"{{ link('javascript:alert(1)') }}\">x</a>"))
    assert [p.line for p in problems] == [HTML_LINE]
    assert "link() needs an http(s) address" in problems[0].message


# -- the sandbox -------------------------------------------------------------------------------------------

# (payload, what the refusal says)
SSTI = [
    ("{{ ''.__class__.__mro__ }}", "'__class__' of 'str' object is unsafe"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "'__class__' of 'str' object is unsafe"),
    ("{{ cycler.__init__.__globals__ }}", "unsafe"),
    ("{{ self._TemplateReference__context }}", "'_TemplateReference__context' of 'TemplateReference' object"),
    ("{{ lipsum.__globals__['os'] }}", "'lipsum' is not part of the template context"),
    ("{{ lipsum() }}", "'lipsum' is not part of the template context"),
    ("{{ range(10**9) | list }}", "the ** operator is not allowed"),
    ("{{ range(1000000000) }}", "'range' is not part of the template context"),
    ("{{ namespace(x=1) }}", "'namespace' is not part of the template context"),
    ("{{ joiner() }}", "'joiner' is not part of the template context"),
    ("{{ prospect.email.__class__ }}", "unsafe"),
    ("{{ link.__globals__ }}", "unsafe"),
    ("{{ prospect.items() }}", "'items' of '_Fields' object is unsafe"),
    ("{{ unsubscribe_url.format(unsubscribe_url) }}", "'format' of 'str' object is unsafe"),
    ("{{ '{0:>999999999}'.format(1) }}", "'format' of 'str' object is unsafe"),
    ("{{ '%0999999999d' % 1 }}", "'%' formatting is not allowed"),
    ("{{ 'x' * 999999999 }}", "would be longer than 200000 characters"),
    ("{{ 9 ** 9 ** 9 }}", "the ** operator is not allowed"),
    ("{{ prospect.email | attr('__class__') }}", "No filter named 'attr'"),
    ("{{ 'a' | center(999999999) }}", "No filter named 'center'"),
    ("{% include '/etc/passwd' %}", "cannot include, import or extend"),
    ("{% import 'x' as x %}", "cannot include, import or extend"),
    ("{% macro boom(s) %}{{ boom(s ~ s) }}{% endmacro %}{{ boom('x') }}", "macros are not supported"),
]


@pytest.mark.parametrize(("payload", "refusal"), SSTI)
def test_injection_is_refused_by_validation(payload: str, refusal: str) -> None:
    source = with_html_line(payload)
    problems = validate_template("t", source)
    assert any(p.line == HTML_LINE for p in problems), problems
    with pytest.raises(InvalidContent, match=rf"line {HTML_LINE}"):
        parse_template("t", source)


@pytest.mark.parametrize(("payload", "refusal"), SSTI)
def test_injection_is_refused_at_render_even_without_validation(payload: str, refusal: str) -> None:
    with pytest.raises(InvalidContent) as caught:
        render(unchecked(with_html_line(payload)), context())
    assert f"line {HTML_LINE}: " in caught.value.message
    assert refusal in caught.value.message


def test_output_size_is_bounded() -> None:
    many = "'" + "x" * 1000 + "'"
    loop = "{% for a in " + many + " %}{% for b in " + many + " %}"
    payload = loop + "{{ unsubscribe_url }}{% endfor %}{% endfor %}"
    with pytest.raises(InvalidContent, match="line 7: the rendered message is longer than 200000 characters"):
        render(unchecked(with_html_line(payload)), context())


# -- validation --------------------------------------------------------------------------------------------


def test_a_good_template_has_no_problems() -> None:
    assert validate_template("good", GOOD) == []
    parsed = parse_template("good", GOOD, version=3)
    assert parsed.meta == TemplateMeta(
        name="good",
        subject="{{ prospect.first_name | default('Hi') }}, see what changed",
        topics=("reporting",),
        stages=(Stage.AWARENESS,),
        personas=("practitioner",),
        version=3,
    )


def test_windows_line_endings_are_accepted() -> None:
    assert validate_template("good", GOOD.replace("\n", "\r\n")) == []


def test_syntax_error_is_reported_with_its_line() -> None:
    source = GOOD.replace("Guide: {{ link(", "Guide: {{ link(( ", 1)
    problems = validate_template("t", source)
    assert [p.line for p in problems] == [14]
    assert problems[0].message.startswith("syntax error")
    with pytest.raises(InvalidContent, match="line 14: syntax error") as caught:
        parse_template("t", source)
    assert caught.value.details == [{"line": 14, "message": problems[0].message}]


def test_a_number_too_long_to_read_is_reported_with_its_line() -> None:
    problems = validate_template("t", with_html_line("{{ " + "1" * 5000 + " }}"))
    assert problems == [TemplateProblem(HTML_LINE, "syntax error: a number here is too long")]


def test_unclosed_tag_is_reported() -> None:
    problems = validate_template("t", with_html_line("{% if prospect.stage is defined %}"))
    assert len(problems) == 1 and "syntax error" in problems[0].message


def test_syntax_error_in_the_subject_points_at_the_subject_line() -> None:
    source = GOOD.replace("default('Hi') }}", "default('Hi') }", 1)
    assert [p.line for p in validate_template("t", source)] == [2]


def test_unknown_filter_is_reported() -> None:
    problems = validate_template("t", with_html_line("{{ prospect.email | shout }}"))
    assert [p.line for p in problems] == [HTML_LINE] and "shout" in problems[0].message


def test_unknown_variable_and_field_are_reported_with_their_lines() -> None:
    source = GOOD.replace("Guide:", "{{ discount_code }} Guide:").replace(
        "<p>Hi", "{{ prospect.firstname }} {{ sender['phone'] }}<p>Hi"
    )
    problems = validate_template("t", source)
    assert [(p.line, p.message.split(";")[0]) for p in problems] == [
        (HTML_LINE, "prospect has no field 'firstname'"),
        (HTML_LINE, "sender has no field 'phone'"),
        (14, "unknown variable 'discount_code'"),
    ]


def test_loop_variables_and_sets_are_not_unknown() -> None:
    body = "{% set tail = 'ok' %}{% for t in prospect.top_interests %}{{ loop.index }}{{ t }}{% endfor %}"
    body += "{{ tail }}"
    assert validate_template("t", with_html_line(body)) == []


@pytest.mark.parametrize(
    ("removed", "block", "line"),
    [
        ('<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>\n', "html", 7),
        ("Unsubscribe: {{ unsubscribe_url }}\n", "text", 12),
    ],
)
def test_missing_unsubscribe_link_is_reported_per_block(removed: str, block: str, line: int) -> None:
    problems = validate_template("t", GOOD.replace(removed, ""))
    assert [(p.line, p.message) for p in problems] == [
        (line, f"the {block} block needs an unsubscribe link: {{{{ unsubscribe_url }}}}")
    ]
    with pytest.raises(InvalidContent, match="needs an unsubscribe link"):
        parse_template("t", GOOD.replace(removed, ""))


def test_missing_block_and_stray_content_are_reported() -> None:
    text_start = GOOD.index("{% block text %}")
    problems = validate_template("t", GOOD[:text_start] + "Hello {{ prospect.email }}\n")
    messages = [p.message for p in problems]
    assert "content outside the html and text blocks is never sent; move it inside" in messages
    assert "missing {% block text %}…{% endblock %}" in messages


def test_unknown_block_is_reported() -> None:
    problems = validate_template("t", GOOD.replace("{% block text %}", "{% block txt %}"))
    assert any(p.message.startswith("unknown block 'txt'") for p in problems)


@pytest.mark.parametrize(
    ("change", "line", "field"),
    [
        (("subject: \"{{ prospect.first_name | default('Hi') }}, see what changed\"\n", ""), 1, "subject"),
        (("stages: [awareness]", "stages: [buying]"), 4, "stages"),
        (("personas: [practitioner]", "personas: [cfo]"), 5, "personas"),
        (("topics: [reporting]", "topics: []"), 3, "topics"),
        (("topics: [reporting]", "topics: [Reporting!]"), 3, "topics"),
        (("topics: [reporting]", "topics: [reporting]\npriority: high"), 4, "priority"),
        (("topics: [reporting]", "topics: [reporting]\ncooldown_days: -1"), 4, "cooldown_days"),
        (("topics: [reporting]", "topics: [reporting]\nrecycle_reasons: [too_pricey]"), 4, "recycle_reasons"),
        (("stages: [awareness]", "stage: [awareness]"), 4, "stage"),
    ],
)
def test_front_matter_errors_name_the_field_and_line(change: tuple[str, str], line: int, field: str) -> None:
    source = GOOD.replace(*change, 1)
    problems = validate_template("t", source)
    assert len(problems) == 1
    assert problems[0].line == line
    assert f"front matter field {field!r}" in problems[0].message
    with pytest.raises(InvalidContent, match=f"line {line}: .*{field}"):
        parse_template("t", source)


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("{% block html %}{% endblock %}", 1, "starts with a '---' line"),
        ("---\nsubject: x\n{% block html %}", 1, "never closed"),
        ("---\nsubject: [x\ntopics: y\n---\n", 3, "not valid YAML"),
        ("---\n- a list\n---\n", 2, "must be YAML fields"),
    ],
)
def test_broken_front_matter_is_reported_with_its_line(source: str, line: int, words: str) -> None:
    problems = validate_template("t", source)
    # The body is checked too (here: its missing blocks), so every problem shows in one answer.
    assert [p.line for p in problems if words in p.message] == [line]


def test_an_invalid_template_name_is_refused() -> None:
    problems = validate_template("../etc/passwd", GOOD)
    assert "front matter field 'name'" in problems[0].message


# -- front matter to TemplateMeta (pure) --------------------------------------------------------------------


def test_meta_defaults_and_single_values() -> None:
    meta = meta_from_front_matter("t", {"subject": " Hello ", "topics": "pricing", "stages": "decision"})
    assert meta == TemplateMeta(
        name="t", subject="Hello", topics=("pricing",), stages=(Stage.DECISION,), personas=(), priority=0
    )
    assert (meta.cooldown_days, meta.recycle_reasons, meta.version) == (30, (), 0)


def test_meta_keeps_declared_order_and_drops_duplicates() -> None:
    meta = meta_from_front_matter(
        "t",
        {"subject": "s", "topics": ["roi", "pricing", "roi"], "recycle_reasons": ["no_budget", "not_ready"]},
    )
    assert meta.topics == ("roi", "pricing")
    assert meta.recycle_reasons == ("no_budget", "not_ready")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"topics": ["roi"]}, "subject"),
        ({"subject": "s", "topics": ["roi"], "priority": True}, "priority"),
        ({"subject": "s", "topics": ["roi"], "cooldown_days": 1.5}, "cooldown_days"),
        ({"subject": "s", "topics": {"roi": 1}}, "topics"),
        ({"subject": "s", "topics": ["roi"], "version": 2}, "version"),
    ],
)
def test_meta_errors_carry_the_field(data: dict, field: str) -> None:
    with pytest.raises(InvalidContent, match=f"field {field!r}") as caught:
        meta_from_front_matter("t", data)
    assert caught.value.details["field"] == field

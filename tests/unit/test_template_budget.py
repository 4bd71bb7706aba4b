"""The render budget: a template cannot make one render take unbounded time or memory, whatever the data.

Each case below rendered (slowly, or into megabytes of text) before the budget existed; the sizes are kept
small enough that the old renderer finished them quickly, yet large enough that the budget must refuse.
"""

from __future__ import annotations

import time

import pytest

from chalicelib.adapters.template_budget import BudgetExceeded, RenderLimits, budgeted
from chalicelib.adapters.template_sandbox import RenderOverBudget
from chalicelib.adapters.templates import (
    ProspectFields,
    TemplateRenderer,
    parse_template,
    render,
    validate_template,
)
from chalicelib.errors import InvalidContent
from tests.unit.test_templates import GOOD, HTML_LINE, context, unchecked, with_html_line

LIMITS = RenderLimits()
EMAIL_16 = "longname@acme.io"  # 16 characters: doubling it 14 times passes the 200,000-character cap


def prospect(**fields: str) -> ProspectFields:
    return ProspectFields(**{"email": EMAIL_16, **fields})


def refusal(payload: str, who: ProspectFields) -> InvalidContent:
    with pytest.raises(InvalidContent) as caught:
        render(unchecked(with_html_line(payload)), context(who))
    assert f"line {HTML_LINE}: " in caught.value.message, caught.value.message
    return caught.value


# -- work: loops ------------------------------------------------------------------------------------------


def test_nested_loops_over_a_prospect_field_stop_at_the_operation_budget() -> None:
    # 400 x 400 = 160,000 passes with an empty body: no output to hit the size limit, only work.
    loops = "{% for a in prospect.first_name %}{% for b in prospect.first_name %}{% endfor %}{% endfor %}"
    refused = refusal(loops, prospect(first_name="a" * 400))
    assert isinstance(refused, RenderOverBudget)
    assert f"more than {LIMITS.operations} steps" in refused.message


def test_the_budget_covers_the_whole_render_not_each_block() -> None:
    # 250 x 120 = 30,000 passes in each of the html and text blocks: under the budget alone, over it together.
    loops = "{% for a in prospect.first_name %}{% for b in prospect.last_name %}{% endfor %}{% endfor %}"
    source = GOOD.replace("<p>Hi", loops + "<p>Hi", 1).replace("\nHi {{", "\n" + loops + "Hi {{", 1)
    with pytest.raises(RenderOverBudget, match="steps"):
        render(unchecked(source), context(prospect(first_name="a" * 250, last_name="b" * 120)))


def test_a_render_that_runs_past_the_wall_clock_cap_is_stopped() -> None:
    ticks = iter(range(10**9))

    def slow_clock() -> float:  # every reading is a tenth of a second later than the one before
        return next(ticks) / 10

    renderer = TemplateRenderer(limits=RenderLimits(seconds=1.5), clock=slow_clock)
    payload = "{% for a in prospect.first_name %}{{ a }}{% endfor %}"
    with pytest.raises(RenderOverBudget, match=rf"line {HTML_LINE}: the render took longer than 1.5 s"):
        renderer.render(unchecked(with_html_line(payload)), context(prospect(first_name="a" * 40)))


# -- memory: growing text, lists and numbers --------------------------------------------------------------

DOUBLINGS = 17  # 16 characters doubled 17 times: 2,097,152 characters, ten times the 200,000 cap


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        ("{% set s = prospect.email %}" + "{% set s = s ~ s %}" * DOUBLINGS + "{{ s | length }}", "~"),
        ("{% set s = prospect.email %}" + "{% set s = s + s %}" * DOUBLINGS + "{{ s | length }}", "+"),
        (
            "{% set s = [prospect.email] %}" + "{% set s = s + s %}" * DOUBLINGS + "{{ s | join | length }}",
            "list +",
        ),
        (
            "{% set s = prospect.email %}" + "{% set s = [s, s] | join %}" * DOUBLINGS + "{{ s | length }}",
            "join",
        ),
        ("{% set s = prospect.email %}{% set s = s * 10000 %}{{ [s] * 20 }}", "list *"),
    ],
    ids=["tilde", "plus", "list-plus", "join", "list-times"],
)
def test_doubling_text_is_stopped_before_it_grows_past_the_cap(payload: str, what: str) -> None:
    refused = refusal(payload, prospect())
    assert f"longer than {LIMITS.string_chars} characters" in refused.message, what


def test_many_large_strings_count_towards_one_total() -> None:
    # Each string stays under the 200,000 cap; fifteen of them are 2.4 million characters held at once.
    keep = "".join(f"{{% set s{i} = big ~ '{i}' %}}" for i in range(15))
    refused = refusal("{% set big = prospect.email * 10000 %}" + keep + "{{ s1 | length }}", prospect())
    assert isinstance(refused, RenderOverBudget)
    assert f"more than {LIMITS.chars} characters of text in all" in refused.message


def test_text_captured_by_a_set_block_counts_too() -> None:
    capture = "{% set s %}" + "{{ big }}" * 15 + "{% endset %}{{ s | length }}"
    refused = refusal("{% set big = prospect.email * 10000 %}" + capture, prospect())
    assert f"more than {LIMITS.chars} characters of text in all" in refused.message


def test_slices_count_as_text_built() -> None:
    # Each slice is a fresh copy of about 160,000 characters; fifteen of them are held at once.
    keep = "".join(f"{{% set s{i} = big[{i}:] %}}" for i in range(15))
    refused = refusal("{% set big = prospect.email * 10000 %}" + keep + "{{ s1 | length }}", prospect())
    assert f"more than {LIMITS.chars} characters of text in all" in refused.message


def test_fixed_text_repeated_by_a_loop_into_a_set_block_counts_too() -> None:
    # The loop's 1,000-character line is written 2,500 times into one string before anything is output.
    line = "x" * 1_000
    capture = (
        "{% set s %}{% for a in prospect.first_name %}" + line + "{% endfor %}{% endset %}{{ s | length }}"
    )
    refused = refusal(capture, prospect(first_name="a" * 2_500))
    assert f"more than {LIMITS.chars} characters of text in all" in refused.message


def test_numbers_cannot_be_squared_into_megabytes() -> None:
    payload = "{% set n = 99999999 %}" + "{% set n = n * n %}" * 14 + "{{ n > 1 }}"
    assert "too large" in refusal(payload, prospect()).message


# -- normal templates are untouched -----------------------------------------------------------------------


def test_loops_joins_and_concatenation_still_render_as_before() -> None:
    payload = (
        "{% for t in prospect.top_interests %}{{ loop.index }}/{{ loop.length }} {{ t ~ '!' }};"
        "{% else %}none{% endfor %}{{ prospect.first_name ~ ' <i>' }}{{ ['a', 'b'] | join('+') }}"
        "{{ '-' * 3 }}{{ [1] + [2] }}{{ 6 * 7 }}"
        "{% for t in prospect.top_interests %}<b>{{ t[:3] }}</b>{% endfor %}"
    )
    email = render(unchecked(with_html_line(payload)), context())
    assert email.html.startswith(
        "1/2 security!;2/2 api!;&lt;script&gt;alert(1)&lt;/script&gt; &lt;i&gt;"
        "a+b---[1, 2]42<b>sec</b><b>api</b><p>Hi"
    )
    empty = render(unchecked(with_html_line(payload)), context(prospect(first_name="Ada")))
    assert empty.html.startswith("noneAda &lt;i&gt;a+b")


# -- refused when saved, with the line, where it can be seen ----------------------------------------------

STATIC = [
    (
        "{% for a in prospect.email %}{% for b in prospect.email %}{% for c in prospect.email %}"
        "{% endfor %}{% endfor %}{% endfor %}",
        "loops nested more than 2 deep",
    ),
    ("{% set s = prospect.email %}{% set s = s ~ s %}", "doubles"),
    ("{% set s = prospect.email %}{% set s = [s, s] | join %}", "doubles"),
    ("{{ prospect.email * 5000 }}", "repeats text 5000 times"),
    ("{{ [prospect.email] * 5000 }}", "repeats text 5000 times"),
]


@pytest.mark.parametrize(
    ("payload", "words"), STATIC, ids=["nesting", "tilde", "join", "text-repeat", "list-repeat"]
)
def test_what_can_be_seen_statically_is_refused_at_save_time(payload: str, words: str) -> None:
    problems = validate_template("t", with_html_line(payload))
    assert [p.line for p in problems if words in p.message] == [HTML_LINE], problems
    with pytest.raises(InvalidContent, match=rf"line {HTML_LINE}: .*{words}"):
        parse_template("t", with_html_line(payload))


def test_loops_two_deep_and_short_repeats_are_fine() -> None:
    two_deep = "{% for a in prospect.top_interests %}{% for b in a %}{{ b }}{% endfor %}{% endfor %}"
    assert validate_template("t", with_html_line(two_deep + "{{ '-' * 40 }}")) == []


def test_the_budget_is_per_render() -> None:
    # A budget leaking from one render into the next would refuse the third of three renders that each fit.
    loops = "{% for a in prospect.first_name %}{% for b in prospect.first_name %}{% endfor %}{% endfor %}"
    parsed = unchecked(with_html_line(loops))
    for _ in range(3):
        assert render(parsed, context(prospect(first_name="a" * 150))).html.startswith("<p>Hi aaa")


def test_time_off_the_cpu_does_not_count_against_a_render() -> None:
    """On a busy machine a render may wait for a core longer than its whole budget (the sim saw renders fail
    at a load of 10 on 2 cores); the budget counts the rendering thread's own CPU time, so only a template
    that really works that long is stopped. Waiting (sleep) stands in for being descheduled."""
    with budgeted(RenderLimits(seconds=0.05, operations=10**9)) as budget:
        time.sleep(0.1)
        budget.step()  # waited twice the budget without working: still within it
        deadline = time.thread_time() + 0.2
        with pytest.raises(BudgetExceeded, match="longer than 0.05 s"):
            while time.thread_time() < deadline:  # working past the budget is stopped
                budget.step()

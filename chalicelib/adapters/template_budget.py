"""How much work and memory one template render may take, and the checks that hold a render to it.

The sandbox in `template_sandbox.py` stops a template from reaching Python; this module stops it from spending
the scheduler's time and memory. Both are needed: a template is data a marketer saves, the prospect fields
it loops over are data a visitor sends, and every send renders one.

Per render (the subject and both blocks together; `RenderLimits`, the renderer's defaults):
- at most 50,000 steps: each loop pass, function or method call, filter, `~`, `+`, `*` and slice;
- no string (or list, counted as the text it stands for) longer than 200,000 characters, checked BEFORE
  it is built (`~`, `+`, `*`, join, replace) so a doubling stops at the cap instead of after it;
- at most 2,000,000 characters built in all (intermediate strings, slices, `{% set %}` captures, text a
  loop writes, output), so holding many strings just under the cap is bounded too: a render's memory
  stays in the tens of MB;
- no number beyond 1,000 bits (about 300 digits): squaring a number in a chain would otherwise grow it
  into megabytes of digits;
- 2 seconds of the rendering thread's own CPU time (`time.thread_time`), checked at every step: what the
  template costs, not how busy the machine is (on a loaded box a wall-clock budget failed renders that pass on
  a quiet one). The check is cooperative, so it never interrupts one step midway; the size limits are what
  keep each single step short.
Going over any of them raises `BudgetExceeded` (a Jinja SecurityError), which the renderer reports as a 422
naming the line.

Seen when a template is saved (`template_checks.static_problems`, with their lines before any render):
- loops nested more than 2 deep (each level multiplies the work by the size of the data it walks);
- a `{% set s = … %}` that uses `s` twice (it doubles `s` each time it runs);
- `* n` with a constant n above 1,000 (repeating text or a list that many times).

How: `instrument` rewrites a parsed template before compiling so that every loop's iterable, every `~`, every
slice and any fixed text inside a loop go through private filters (`@iter`, `@concat`, `@slice`, `@text`: a
template cannot name them, they are not identifiers); `bounded_filters` wraps the allowed filters; and the
sandbox's `call`, `call_binop` and `finalize` report to the `Budget` that `budgeted` makes current.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import SecurityError
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

MAX_PART_CHARS = 200_000  # per rendered part, and per string built on the way; a real email is a few KB
MAX_NUMBER_BITS = 1_000

ITER_HOOK = "@iter"
CONCAT_HOOK = "@concat"
TEXT_HOOK = "@text"
SLICE_HOOK = "@slice"

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RenderLimits:
    operations: int = 50_000  # loop passes, calls, filters, `~` and `+`/`*` in one render
    chars: int = 2_000_000  # characters built in all: intermediate strings, captures and output
    string_chars: int = MAX_PART_CHARS  # the longest one string (or list, as text) may grow
    seconds: float = 2.0  # the rendering thread's CPU time for the whole render


DEFAULT_LIMITS = RenderLimits()


class BudgetExceeded(SecurityError):
    """A render went past one of its `RenderLimits`; it was stopped before doing (or building) more."""


class Budget:
    """What one render has spent so far. Made current by `budgeted`; the hooks below report to it."""

    def __init__(self, limits: RenderLimits, clock: Clock) -> None:
        self.limits = limits
        self.operations = 0
        self.chars = 0
        self._clock = clock
        self._deadline = clock() + limits.seconds

    def step(self) -> None:
        self.operations += 1
        if self.operations > self.limits.operations:
            raise BudgetExceeded(
                f"the template did more than {self.limits.operations} steps (loop passes, calls, filters);"
                " loop over less, or nest loops less deeply"
            )
        if self._clock() > self._deadline:
            raise BudgetExceeded(f"the render took longer than {self.limits.seconds:g} s")

    def built(self, size: int) -> None:
        self.chars += size
        if self.chars > self.limits.chars:
            raise BudgetExceeded(
                f"the template built more than {self.limits.chars} characters of text in all"
            )


_CURRENT: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


@contextmanager
def budgeted(limits: RenderLimits, clock: Clock = time.thread_time) -> Iterator[Budget]:
    """Everything rendered inside the block spends from one fresh budget."""
    budget = Budget(limits, clock)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def step() -> None:
    # Outside a render (Jinja folding constants while compiling) there is nothing to spend from; the
    # size checks still apply, and what they refuse is simply left for the render to refuse.
    budget = _CURRENT.get()
    if budget is not None:
        budget.step()


def string_cap() -> int:
    budget = _CURRENT.get()
    return budget.limits.string_chars if budget is not None else MAX_PART_CHARS


def too_long(what: str, cap: int) -> BudgetExceeded:
    return BudgetExceeded(f"{what} would be longer than {cap} characters")


def weight(value: Any, cap: int) -> int:
    """The characters `value` stands for as text, counted only until the count passes `cap`, so checking
    a value costs at most `cap` steps whatever it holds. Lists count their items plus a little per item."""
    total = 0
    pending = [value]
    while pending and total <= cap:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset | Mapping):
            total += 2 + 2 * len(item)
            if total <= cap:
                pending.extend(item)
                if isinstance(item, Mapping):
                    pending.extend(item.values())
        else:
            total += 1  # numbers (kept small by check_operands), None, undefined values, functions
    return total


def built(value: Any) -> Any:
    """Checks and counts a value the template just made; returns it unchanged."""
    cap = string_cap()
    if isinstance(value, str):
        size = len(value)
    elif isinstance(value, list | tuple):
        size = weight(value, cap)
    else:
        return value
    if size > cap:
        raise too_long("the text built here", cap)
    budget = _CURRENT.get()
    if budget is not None:
        budget.built(size)
    return value


def finalize(value: Any) -> Any:
    """Every `{{ … }}` passes here before it becomes text, including inside `{% set %}…{% endset %}`."""
    cap = string_cap()
    size = weight(value, cap)
    if size > cap:
        raise too_long("the text printed here", cap)
    budget = _CURRENT.get()
    if budget is not None:
        budget.built(size)
    return value


# -- operators, calls and filters -------------------------------------------------------------------------


def check_operands(operator: str, left: Any, right: Any) -> None:
    """Refuses `+` and `*` whose result would pass the caps, before Python builds it."""
    step()
    cap = string_cap()
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if _is_sequence(sequence) and isinstance(times, int) and times > 0:
                if weight(sequence, cap) * times > cap:
                    raise too_long(f"repeating text {times} times", cap)
        if is_number(left) and is_number(right):
            if left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
                raise BudgetExceeded(f"the numbers here are too large (over {MAX_NUMBER_BITS} bits)")
    elif operator == "+" and (_is_sequence(left) or _is_sequence(right)):
        if weight(left, cap) + weight(right, cap) > cap:
            raise too_long("joining text here", cap)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def is_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def bounded_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """The allowed filters, each counted as a step, refused input over the cap, and its result counted;
    join and replace check the size of what they would build first. Adds the hooks `instrument` uses."""
    sizes: dict[str, Callable[..., int]] = {"join": _join_size, "replace": _replace_size}
    sizes.update(dict.fromkeys(("length", "count", "first", "last", "default", "d"), _builds_nothing))
    wrapped = {name: _bounded(name, func, sizes.get(name, _args_size)) for name, func in filters.items()}
    wrapped[ITER_HOOK] = counted_iter
    wrapped[CONCAT_HOOK] = bounded_concat
    wrapped[TEXT_HOOK] = loop_text
    wrapped[SLICE_HOOK] = sliced
    return wrapped


def _bounded(name: str, func: Callable[..., Any], size: Callable[..., int]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps Jinja's pass_eval_context / pass_environment marks
    def run(*args: Any, **kwargs: Any) -> Any:
        step()
        cap = string_cap()
        if size(cap, *args, **kwargs) > cap:
            raise too_long(f"the text from | {name}", cap)
        return built(func(*args, **kwargs))

    return run


def _builds_nothing(cap: int, *args: Any, **kwargs: Any) -> int:
    return 0  # these return a count or one of the values they were given


def _args_size(cap: int, *args: Any, **kwargs: Any) -> int:
    return sum(weight(value, cap) for value in (*args, *kwargs.values()))


def _join_size(cap: int, eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> int:
    # A join costs its items plus one separator between each two: `[s, s, s] | join(s)` is 5 x s.
    if not isinstance(value, str | list | tuple | Mapping):
        return 0  # anything else fails in join itself, with Jinja's own message
    total = weight(d, cap) * max(len(value) - 1, 0)
    for item in value:
        if total > cap:
            break
        total += weight(item, cap)
    return total


def _replace_size(cap: int, eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> int:
    given = _args_size(cap, s, old, new)
    if given > cap:
        return given
    text, old_text, new_text = str(s), str(old), str(new)
    hits = text.count(old_text) if old_text else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * len(new_text)


def counted_iter(value: Any) -> Iterator[Any]:
    """What a `for` loop walks: each pass is a step."""
    iterator = iter(value)
    budget = _CURRENT.get()
    return iterator if budget is None else _counted(iterator, budget)


def _counted(iterator: Iterator[Any], budget: Budget) -> Iterator[Any]:
    for item in iterator:
        budget.step()
        yield item


def sliced(value: Any) -> Any:
    step()
    return built(value)


@pass_context  # which also keeps Jinja from folding it back into a constant when compiling
def loop_text(context: Context, data: str) -> str:
    return Markup(data) if context.eval_ctx.autoescape else data


@pass_eval_context
def bounded_concat(eval_ctx: Any, parts: Iterable[Any]) -> str:
    """`a ~ b ~ c`, refused before joining when the result would pass the cap; escapes as Jinja does."""
    step()
    cap = string_cap()
    items = list(parts)
    total = 0
    for item in items:
        total += weight(item, cap)
        if total > cap:
            raise too_long("the text joined here with ~", cap)
    return built(markup_join(items) if eval_ctx.autoescape else str_join(items))


def bounded_output(chunks: Iterator[str], cap: int = MAX_PART_CHARS) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise BudgetExceeded(f"the rendered message is longer than {cap} characters")
        out.append(chunk)
    return "".join(out)


# -- rewriting the template before it is compiled ---------------------------------------------------------


class _Instrument(NodeTransformer):
    def __init__(self) -> None:
        self._loops = 0

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node.iter = _hook(ITER_HOOK, self.visit(node.iter), node.lineno)
        self._loops += 1
        node.body = [self.visit(statement) for statement in node.body]
        self._loops -= 1
        node.else_ = [self.visit(statement) for statement in node.else_]
        node.test = None if node.test is None else self.visit(node.test)
        return node

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)  # Jinja slices in plain Python, past the sandbox: `s[1:]` is a new copy
        return _hook(SLICE_HOOK, node, node.lineno) if isinstance(node.arg, nodes.Slice) else node

    def visit_TemplateData(self, node: nodes.TemplateData) -> nodes.Node:
        # Fixed text is free once, but a loop writes it again on every pass, and into a `{% set %}` block
        # nothing stops it: inside loops it becomes a value, which `finalize` counts like any other.
        if not self._loops:
            return node
        return _hook(TEXT_HOOK, nodes.Const(node.data, lineno=node.lineno), node.lineno)

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _hook(CONCAT_HOOK, nodes.List(list(node.nodes), lineno=node.lineno), node.lineno)


def _hook(name: str, value: nodes.Node, lineno: int) -> nodes.Filter:
    return nodes.Filter(value, name, [], [], None, None, lineno=lineno)


def instrument(tree: nodes.Template) -> nodes.Template:
    """The same template, with every loop's iterable and every `~` routed through the budget hooks."""
    found = _Instrument().visit(tree)
    assert isinstance(found, nodes.Template)
    return found

"""The Jinja sandbox a template's code runs in, and compiling and running it there safely.

It owns the one locked-down environment (no loader or globals, a short list of filters, no attribute but
a few string methods and the loop variable, no `**`, no `%` formatting, no str.format), the strict undefined
that names a field a prospect lacks, the plain dicts the context is handed over in, and turning whatever a
render raises into a RenderFailed (or RenderOverBudget) naming the template's line. What the sandbox allows
is described for marketers in templates.py; the render budget it reports to is in template_budget.py.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.filters import FILTERS
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import missing

from chalicelib.adapters import template_budget as budget
from chalicelib.adapters.template_budget import BudgetExceeded
from chalicelib.adapters.template_checks import unsafe_nodes
from chalicelib.errors import InvalidContent

_FILTERS = (
    "default", "d", "escape", "e", "upper", "lower", "title", "capitalize", "trim", "striptags",
    "truncate", "join", "first", "last", "length", "count", "urlencode", "sort", "unique",
)  # fmt: skip
_STR_METHODS = frozenset({"upper", "lower", "title", "capitalize", "strip", "startswith", "endswith"})
_LOOP_ATTRIBUTES = frozenset(name for name in dir(LoopContext) if not name.startswith("_"))


class RenderFailed(InvalidContent):
    def __init__(self, name: str, line: int, reason: str) -> None:
        super().__init__(f"template {name!r}, line {line}: {reason}", details={"line": line})
        self.line = line
        self.reason = reason


class RenderOverBudget(RenderFailed):
    """The render went past its RenderLimits (work, time or size) and was stopped there."""


class _Fields(dict[str, Any]):
    """A plain dict that remembers which context name it is, so an undefined field is named exactly."""

    __slots__ = ("_label",)

    def __init__(self, label: str, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self._label = label


def context_fields(label: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Context value `label` (prospect, sender) as a plain dict; a missing field is named in errors."""
    return _Fields(label, values)


class _Undefined(StrictUndefined):
    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        owner = self._undefined_obj
        if isinstance(owner, _Fields) and self._undefined_hint is None:
            path = f"{owner._label}.{self._undefined_name}"
            return f'{path} is not known here; write {{{{ {path} | default("…") }}}} or test `is defined`'
        if self._undefined_hint is None and isinstance(self._undefined_name, str) and owner is missing:
            return f"{self._undefined_name!r} is not part of the template context"
        return super()._undefined_message


class Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # Only the few string methods a template might want and the loop variable; every other attribute
        # (dict methods, str.format, anything dunder) is refused, which closes the classic SSTI paths.
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, str):
            return attr in _STR_METHODS
        return isinstance(obj, LoopContext) and attr in _LOOP_ATTRIBUTES

    def wrap_str_format(self, value: Any) -> None:
        # Jinja would hand out a sandboxed str.format; padding specs like {0:>999999999} still exhaust
        # memory, and templates join text with ~, so format stays out like every other method.
        return None

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("the ** operator is not allowed in templates")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' formatting is not allowed in templates; join text with ~")
        budget.check_operands(operator, left, right)  # `+` and `*` are refused before they build too much
        return budget.built(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # link() and the few string methods: each call is a step, and what it returns is counted.
        budget.step()
        return budget.built(super().call(context, obj, *args, **kwargs))


def build_environment() -> Sandbox:
    env = Sandbox(
        undefined=_Undefined,
        autoescape=lambda template_name: bool(template_name and template_name.endswith(".html")),
        trim_blocks=True,
        lstrip_blocks=True,
        loader=None,
        finalize=budget.finalize,
    )
    env.globals.clear()  # range, lipsum, cycler, joiner, namespace, dict: none belong in an email
    env.filters = budget.bounded_filters({name: FILTERS[name] for name in (*_FILTERS, "replace")})
    return env


def parse_source(env: Sandbox, source: str, **names: str) -> nodes.Template:
    try:
        return env.parse(source, **names)
    except ValueError as exc:  # Python refuses to read an integer of more than 4,300 digits
        found = re.search(r"\d{4000}", source)
        line = source.count("\n", 0, found.start()) + 1 if found else 1
        raise TemplateSyntaxError("a number here is too long", line) from exc


# -- compiling and running --------------------------------------------------------------------------------


def compile_template(env: Sandbox, name: str, source: str, kind: str) -> Any:
    # The file name decides autoescaping (see build_environment) and lets errors point at lines.
    filename = f"<template {name}.{kind}>"
    try:
        tree = parse_source(env, source, name=f"{name}.{kind}", filename=filename)
        unsafe = list(unsafe_nodes(tree))
        if unsafe:
            line, message = unsafe[0]
            raise RenderFailed(name, line, message)
        tree = budget.instrument(tree)  # loops and `~` report to the render's budget
        code = env.compile(tree, name=f"{name}.{kind}", filename=filename)
    except TemplateSyntaxError as exc:
        raise RenderFailed(name, exc.lineno or 1, f"syntax error: {exc.message}") from exc
    return env.template_class.from_code(env, code, env.make_globals(None))


def run_template(
    template: Any, name: str, source: str, block: str | None, values: dict[str, Any], *, string_chars: int
) -> str:
    context: Context = template.new_context(values)
    render = template.root_render_func if block is None else template.blocks.get(block)
    if render is None:
        raise RenderFailed(name, 1, f"the template has no {{% block {block} %}}")
    try:
        return budget.bounded_output(render(context), string_chars)
    except RenderFailed:
        raise
    except (TemplateError, InvalidContent, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        line = _template_line(template, exc, default=_block_line(source, block))
        failed = RenderOverBudget if isinstance(exc, BudgetExceeded) else RenderFailed
        raise failed(name, line, _reason(exc)) from exc
    except RecursionError as exc:
        line = _template_line(template, exc, default=_block_line(source, block))
        raise RenderFailed(name, line, "the template calls itself endlessly") from exc


def _template_line(template: Any, exc: BaseException, *, default: int) -> int:
    line = default
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == template.filename:
            line = template.get_corresponding_lineno(lineno)
    return line


def _block_line(source: str, block: str | None) -> int:
    # Errors raised outside the template's own frames (the size limit) point at the block they stopped.
    found = re.search(r"\{%-?\s*block\s+" + re.escape(block or "") + r"\b", source) if block else None
    return source.count("\n", 0, found.start()) + 1 if found else 1


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InvalidContent):
        return exc.message
    if isinstance(exc, TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"

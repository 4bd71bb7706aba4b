"""Nurture message templates: the file format, validation, and sandboxed rendering into an email.

Format. A template is one UTF-8 text file, `templates/<name>.md.j2` (name: lowercase letters, digits,
`-`, `_`). It starts with YAML front matter between two `---` lines, followed by a Jinja2 body holding
exactly two blocks, `{% block html %}…{% endblock %}` and `{% block text %}…{% endblock %}`:

    ---
    subject: "{{ prospect.first_name | default('Hi') }}, what a week of reporting costs"
    topics: [pricing, roi]          # required; what it is about: topics the rules know (save and lint check)
    stages: [consideration]         # awareness | consideration | decision | reengagement; omit = any
    personas: [executive]           # executive | practitioner | technical; omit = any
    priority: 10                    # -100..100, higher wins a tie (default 0)
    cooldown_days: 45               # never resent to the same prospect within this (default 30)
    recycle_reasons: [no_budget]    # sales recycle reasons it answers (default none)
    ---
    {% block html %}<p>Hi {{ prospect.first_name | default("there") }},</p> …
    <a href="{{ link('https://example.com/roi', topics=['roi']) }}">Work out your ROI</a> …
    <a href="{{ unsubscribe_url }}">Unsubscribe</a>{% endblock %}
    {% block text %}Hi {{ prospect.first_name | default("there") }}, … Unsubscribe: {{ unsubscribe_url }}
    {% endblock %}

The html block is HTML-escaped automatically (a prospect called `<b>` shows as `&lt;b&gt;`); the text
block and the subject are not. Both blocks must contain `{{ unsubscribe_url }}`. Nothing may sit outside
the two blocks.

Context. These are the only names a template can use; anything else is reported by validation:
- `prospect`: `first_name`, `last_name`, `name`, `email`, `company`, `title`, `persona`, `stage` (text)
  and `top_interests` (a list of topics, strongest first, possibly empty). Only `email` and
  `top_interests` are always there: use `| default("…")` or `{% if prospect.company is defined %}` for
  the rest, since using a field the prospect does not have is an error, never a blank.
- `sender`: `name`, `company`, `address` (the postal address every commercial email must carry).
- `unsubscribe_url`: the prospect's one-click unsubscribe link.
- `link(url, topics=[...])`: returns the tracked address for an http(s) `url`; a click on it tells
  Leadloop the prospect is interested in those topics.

Sandbox. Rendering uses one Jinja2 immutable sandbox with no loader (no include, import or extends), no
globals beyond the context, a short list of text filters (default, escape, upper, lower, title,
capitalize, trim, striptags, truncate, join, first, last, length, count, replace, urlencode, sort,
unique), no macros, no `**`, no `%` formatting, and size limits on what a template can produce. Reaching
for Python internals (`''.__class__`, `self._TemplateReference__context`, `cycler`, `lipsum`, `range`)
fails with InvalidContent instead of executing.

Budget. A render (subject and both blocks) gets 50,000 steps, 2 s and 2,000,000 characters built in all,
no string over 200,000; past them it raises RenderOverBudget (422, with the line). Saving refuses loops
nested over 2 deep, `{% set s = s ~ s %}` and `* n` over 1,000. Limits and enforcement: template_budget.py.
"""

from __future__ import annotations

import functools
import re
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.filters import FILTERS
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import missing

from chalicelib.adapters import template_budget as budget
from chalicelib.adapters.template_budget import DEFAULT_LIMITS, BudgetExceeded, Clock, RenderLimits
from chalicelib.adapters.template_checks import (
    PROSPECT_FIELDS,
    SENDER_FIELDS,
    FormatProblem,
    TemplateProblem,
    block_problems,
    normalise,
    problem_dict,
    read_front_matter,
    sorted_problems,
    split_source,
    unknown_link_topics,
    unknown_names,
    unsafe_nodes,
)
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.errors import InvalidContent, NotFound

TEMPLATE_SUFFIX = ".md.j2"
# Lambda gets the repo's templates/ through vendor/templates, which chalice unpacks beside chalicelib/.
SHIPPED_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

MAX_SOURCE_CHARS = 100_000

_FILTERS = (
    "default", "d", "escape", "e", "upper", "lower", "title", "capitalize", "trim", "striptags",
    "truncate", "join", "first", "last", "length", "count", "urlencode", "sort", "unique",
)  # fmt: skip
_STR_METHODS = frozenset({"upper", "lower", "title", "capitalize", "strip", "startswith", "endswith"})
_LOOP_ATTRIBUTES = frozenset(name for name in dir(LoopContext) if not name.startswith("_"))
_HTTP_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)


class TemplateStatus(StrEnum):
    """Whether nurture may choose a template; its lifecycle is in template_library.py."""

    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


@dataclass(frozen=True)
class ParsedTemplate:
    """A template that passed validation. `source` is the whole file as the marketer wrote it."""

    meta: TemplateMeta
    source: str
    status: TemplateStatus = TemplateStatus.ACTIVE  # paused and deleted templates are never chosen
    body: str = field(init=False, repr=False, compare=False)  # the Jinja part, front matter blanked out
    subject_line: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        split = split_source(self.source)
        object.__setattr__(self, "body", split.body)
        object.__setattr__(self, "subject_line", split.subject_line)


@dataclass(frozen=True, slots=True)
class ProspectFields:
    """What a template may know about a prospect; None (or empty) means unknown, i.e. undefined."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None  # derived from first and last name when not given
    company: str | None = None
    title: str | None = None
    persona: str | None = None
    stage: str | None = None
    top_interests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SenderFields:
    name: str
    company: str
    address: str


LinkBuilder = Callable[[str, tuple[str, ...]], str]


def untracked_link(url: str, topics: tuple[str, ...]) -> str:
    return url


@dataclass(frozen=True, slots=True)
class RenderContext:
    prospect: ProspectFields
    sender: SenderFields
    unsubscribe_url: str
    link_builder: LinkBuilder = untracked_link  # (url, topics) -> tracked redirect URL

    def to_template_vars(self) -> dict[str, Any]:
        """Plain dicts, strings and one wrapped function: Jinja never sees a live object."""
        return {
            "prospect": _prospect_vars(self.prospect),
            "sender": _Fields("sender", {k: str(getattr(self.sender, k)) for k in sorted(SENDER_FIELDS)}),
            "unsubscribe_url": str(self.unsubscribe_url),
            "link": _link_function(self.link_builder),
        }


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


class TemplateRenderer:
    """Validates, parses and renders templates with one sandboxed Jinja environment, built once."""

    def __init__(
        self, *, cache_size: int = 256, limits: RenderLimits = DEFAULT_LIMITS, clock: Clock = time.monotonic
    ) -> None:
        self._env = _build_environment()
        self._limits = limits
        self._clock = clock
        # Compiling costs far more than rendering and the scheduler renders the same few templates all
        # day, so compiled templates are kept, keyed by their exact source.
        self._compiled = functools.lru_cache(maxsize=cache_size)(self._compile)

    def validate(
        self, name: str, source: str, *, topics: Collection[str] | None = None
    ) -> list[TemplateProblem]:
        """Every problem, each with its line (and front matter field). `topics` is the rules' topic
        vocabulary; given, a declared topic outside it is a problem."""
        return self._check(name, source, topics=topics)[1]

    def parse(
        self, name: str, source: str, *, version: int = 0, topics: Collection[str] | None = None
    ) -> ParsedTemplate:
        found, problems = self._check(name, source, version=version, topics=topics)
        if problems or found is None:
            listing = "; ".join(f"line {p.line}: {p.message}" for p in problems)
            raise InvalidContent(
                f"template {name!r} has {len(problems)} problem(s): {listing}",
                details=[problem_dict(p) for p in problems],
            )
        return found

    def render(self, parsed: ParsedTemplate, context: RenderContext) -> RenderedEmail:
        values = context.to_template_vars()
        name = parsed.meta.name
        # Compiling (cached, and bounded by the source's size) is not the template's work: the budget, one
        # for the whole email, starts once the three parts are compiled.
        with _in_subject(parsed):
            self._compiled(name, parsed.meta.subject, "subject")
        self._compiled(name, parsed.body, "html")
        self._compiled(name, parsed.body, "text")
        with budget.budgeted(self._limits, self._clock):
            with _in_subject(parsed):
                subject = self._run(name, parsed.meta.subject, "subject", None, values)
            subject = " ".join(subject.split())  # a subject is one header line, whatever the data held
            if not subject:
                raise _RenderFailed(name, parsed.subject_line, "the subject rendered empty")
            html = self._run(name, parsed.body, "html", "html", values)
            text = self._run(name, parsed.body, "text", "text", values)
        return RenderedEmail(subject=subject, html=html.strip() + "\n", text=text.strip() + "\n")

    # -- checking -------------------------------------------------------------------------------------

    def _check(
        self, name: str, source: str, *, version: int = 0, topics: Collection[str] | None = None
    ) -> tuple[ParsedTemplate | None, list[TemplateProblem]]:
        if len(source) > MAX_SOURCE_CHARS:
            return None, [TemplateProblem(1, f"the template is longer than {MAX_SOURCE_CHARS} characters")]
        source = normalise(source)
        try:
            split = split_source(source)
        except FormatProblem as exc:
            return None, [exc.problem]
        # Every stage is checked whatever the others found, so one answer lists every problem.
        front = read_front_matter(name, split, version=version, topics=topics)
        jinja = self._check_jinja(name, split.body, kind="text", first_line=1, topics=topics)
        if front.subject is not None:
            jinja += self._check_jinja(name, front.subject, kind="subject", first_line=split.subject_line)
        if jinja or front.subject is None:
            return None, sorted_problems([*front.problems, *jinja])
        # A sound body and subject are rendered for samples even when other fields are wrong, so render
        # problems (the budget, a field used without a default) show in the same answer.
        meta = front.meta or TemplateMeta(name=name, subject=front.subject, topics=(), stages=(), personas=())
        parsed = ParsedTemplate(meta=meta, source=source)
        problems = sorted_problems([*front.problems, *self._try_samples(parsed)])
        return (None if problems else parsed), problems

    def _check_jinja(
        self, name: str, source: str, *, kind: str, first_line: int, topics: Collection[str] | None = None
    ) -> list[TemplateProblem]:
        try:
            tree = _parse(self._env, source)
            # Read before the code generator below walks (and rewrites) the tree.
            link_topics = list(unknown_link_topics(tree, topics)) if topics is not None else []
            # Finding undeclared names runs Jinja's code generator, which also refuses unknown filters.
            undeclared = meta.find_undeclared_variables(tree)
        except TemplateSyntaxError as exc:
            return [TemplateProblem(first_line + (exc.lineno or 1) - 1, f"syntax error: {exc.message}")]
        unsafe = list(unsafe_nodes(tree))
        problems = [
            TemplateProblem(first_line + line - 1, message)
            for line, message in [*unsafe, *unknown_names(tree, undeclared), *budget.static_problems(tree)]
        ]
        if kind != "subject":
            problems += block_problems(tree)
        problems += [TemplateProblem(first_line + line - 1, message) for line, message in link_topics]
        if not unsafe:
            try:
                # Unknown filters and tests only show when compiling; the compiled template is cached, so
                # the sample renders that follow reuse it.
                self._compiled(name, source, kind)
            except _RenderFailed as exc:
                problems.append(TemplateProblem(first_line + exc.line - 1, exc.reason))
        return sorted_problems(problems)

    def _try_samples(self, parsed: ParsedTemplate) -> list[TemplateProblem]:
        # Rendering for a fully known and a barely known prospect catches what reading cannot: a field used
        # without a default, a bad link() call, a loop over text.
        failures: dict[TemplateProblem, list[str]] = {}
        for sample, label in (
            (FULL_SAMPLE, "a prospect with every field"),
            (MINIMAL_SAMPLE, "a prospect known only by email"),
        ):
            try:
                self.render(parsed, sample)
            except _RenderFailed as exc:
                failures.setdefault(TemplateProblem(exc.line, exc.reason), []).append(label)
        return [
            TemplateProblem(problem.line, f"fails to render for {' and '.join(labels)}: {problem.message}")
            for problem, labels in sorted(failures.items())
        ]

    # -- compiling and running --------------------------------------------------------------------------

    def _compile(self, name: str, source: str, kind: str) -> Any:
        # The file name decides autoescaping (see _build_environment) and lets errors point at lines.
        filename = f"<template {name}.{kind}>"
        try:
            tree = _parse(self._env, source, name=f"{name}.{kind}", filename=filename)
            unsafe = list(unsafe_nodes(tree))
            if unsafe:
                line, message = unsafe[0]
                raise _RenderFailed(name, line, message)
            tree = budget.instrument(tree)  # loops and `~` report to the render's budget
            code = self._env.compile(tree, name=f"{name}.{kind}", filename=filename)
        except TemplateSyntaxError as exc:
            raise _RenderFailed(name, exc.lineno or 1, f"syntax error: {exc.message}") from exc
        return self._env.template_class.from_code(self._env, code, self._env.make_globals(None))

    def _run(self, name: str, source: str, kind: str, block: str | None, values: dict[str, Any]) -> str:
        template = self._compiled(name, source, kind)
        context: Context = template.new_context(values)
        render = template.root_render_func if block is None else template.blocks.get(block)
        if render is None:
            raise _RenderFailed(name, 1, f"the template has no {{% block {block} %}}")
        try:
            return budget.bounded_output(render(context), self._limits.string_chars)
        except _RenderFailed:
            raise
        except (TemplateError, InvalidContent, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            line = _template_line(template, exc, default=_block_line(source, block))
            failed = RenderOverBudget if isinstance(exc, BudgetExceeded) else _RenderFailed
            raise failed(name, line, _reason(exc)) from exc
        except RecursionError as exc:
            line = _template_line(template, exc, default=_block_line(source, block))
            raise _RenderFailed(name, line, "the template calls itself endlessly") from exc


class _RenderFailed(InvalidContent):
    def __init__(self, name: str, line: int, reason: str) -> None:
        super().__init__(f"template {name!r}, line {line}: {reason}", details={"line": line})
        self.line = line
        self.reason = reason


class RenderOverBudget(_RenderFailed):
    """The render went past its RenderLimits (work, time or size) and was stopped there."""


@contextmanager
def _in_subject(parsed: ParsedTemplate) -> Iterator[None]:
    try:
        yield
    except _RenderFailed as exc:  # the subject's own line 1 is the front matter's subject line
        line = parsed.subject_line + exc.line - 1
        raise type(exc)(parsed.meta.name, line, f"in the subject: {exc.reason}") from exc


# -- the sandbox ------------------------------------------------------------------------------------------


class _Fields(dict[str, Any]):
    """A plain dict that remembers which context name it is, so an undefined field is named exactly."""

    __slots__ = ("_label",)

    def __init__(self, label: str, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self._label = label


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


class _Sandbox(ImmutableSandboxedEnvironment):
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


def _build_environment() -> _Sandbox:
    env = _Sandbox(
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


def _parse(env: _Sandbox, source: str, **names: str) -> nodes.Template:
    try:
        return env.parse(source, **names)
    except ValueError as exc:  # Python refuses to read an integer of more than 4,300 digits
        found = re.search(r"\d{4000}", source)
        line = source.count("\n", 0, found.start()) + 1 if found else 1
        raise TemplateSyntaxError("a number here is too long", line) from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InvalidContent):
        return exc.message
    if isinstance(exc, TemplateError):
        return exc.message or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


# -- the context ------------------------------------------------------------------------------------------


def _prospect_vars(prospect: ProspectFields) -> _Fields:
    values: dict[str, Any] = {}
    for key in sorted(PROSPECT_FIELDS - {"top_interests"}):
        value = getattr(prospect, key)
        if value is not None and str(value).strip():
            values[key] = str(value).strip()
    if "name" not in values and (prospect.first_name or prospect.last_name):
        values["name"] = " ".join(p.strip() for p in (prospect.first_name, prospect.last_name) if p)
    values["top_interests"] = [str(topic) for topic in prospect.top_interests]
    return _Fields("prospect", values)


def _link_function(builder: LinkBuilder) -> Callable[..., str]:
    def link(url: Any, topics: Any = ()) -> str:
        if not isinstance(url, str) or not _HTTP_URL.fullmatch(url):
            raise InvalidContent(f"link() needs an http(s) address, got {url!r}")
        if isinstance(topics, str):
            topics = [topics]
        if not isinstance(topics, list | tuple) or not all(isinstance(t, str) for t in topics):
            raise InvalidContent(
                f"link() topics must be a list of words, e.g. topics=['pricing'], got {topics!r}"
            )
        return str(builder(url, tuple(topics)))

    return link


SAMPLE_SENDER = SenderFields(name="Maya Ortiz", company="Acme Analytics", address="1 Market St, Springfield")
FULL_SAMPLE = RenderContext(
    prospect=ProspectFields(
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        company="Analytical Engines Ltd",
        title="Head of Data",
        persona="practitioner",
        stage="consideration",
        top_interests=("reporting", "integrations"),
    ),
    sender=SAMPLE_SENDER,
    unsubscribe_url="https://leadloop.example/unsubscribe/sample-token",
)
MINIMAL_SAMPLE = RenderContext(
    prospect=ProspectFields(email="someone@example.com"),
    sender=SAMPLE_SENDER,
    unsubscribe_url="https://leadloop.example/unsubscribe/sample-token",
)


# -- module-level API -------------------------------------------------------------------------------------


@functools.cache
def default_renderer() -> TemplateRenderer:
    return TemplateRenderer()


def parse_template(
    name: str, source: str, *, version: int = 0, topics: Collection[str] | None = None
) -> ParsedTemplate:
    """A checked template, or InvalidContent listing every problem with its line (`details`)."""
    return default_renderer().parse(name, source, version=version, topics=topics)


def validate_template(
    name: str, source: str, *, topics: Collection[str] | None = None
) -> list[TemplateProblem]:
    """Every problem found, each with its line; [] when the template is fit to send."""
    return default_renderer().validate(name, source, topics=topics)


def render(parsed: ParsedTemplate, context: RenderContext) -> RenderedEmail:
    """The email for one prospect; InvalidContent (with the line) if the template cannot render."""
    return default_renderer().render(parsed, context)


def load_shipped_templates(directory: Path | None = None) -> dict[str, ParsedTemplate]:
    """Every `*.md.j2` under `directory` (default: the shipped templates/), by name, in name order."""
    folder = directory or SHIPPED_TEMPLATES_DIR
    if not folder.is_dir():
        raise NotFound(f"no templates folder at {folder}; package the repo's templates/ as vendor/templates")
    found: dict[str, ParsedTemplate] = {}
    for path in sorted(folder.glob(f"*{TEMPLATE_SUFFIX}")):
        name = path.name.removesuffix(TEMPLATE_SUFFIX)
        found[name] = parse_template(name, path.read_text(encoding="utf-8"))
    return found

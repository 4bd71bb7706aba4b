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
fails with InvalidContent instead of executing. The sandbox and running a template in it: template_sandbox.py.

Budget. A render (subject and both blocks) gets 50,000 steps, 2 s and 2,000,000 characters built in all,
no string over 200,000; past them it raises RenderOverBudget (422, with the line). Saving refuses loops
nested over 2 deep, `{% set s = s ~ s %}` and `* n` over 1,000. Limits and enforcement: template_budget.py.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, meta

from chalicelib.adapters import template_budget as budget
from chalicelib.adapters import template_sandbox as sandbox
from chalicelib.adapters.template_budget import DEFAULT_LIMITS, Clock, RenderLimits
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
    static_problems,
    unknown_link_topics,
    unknown_names,
    unsafe_nodes,
)
from chalicelib.adapters.template_sandbox import RenderFailed, context_fields
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.errors import InvalidContent, NotFound

TEMPLATE_SUFFIX = ".md.j2"
# Lambda gets the repo's templates/ through vendor/templates, which chalice unpacks beside chalicelib/.
SHIPPED_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

MAX_SOURCE_CHARS = 100_000

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
            "sender": context_fields(
                "sender", {k: str(getattr(self.sender, k)) for k in sorted(SENDER_FIELDS)}
            ),
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
        self, *, cache_size: int = 256, limits: RenderLimits = DEFAULT_LIMITS, clock: Clock = time.thread_time
    ) -> None:
        self._env = sandbox.build_environment()
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
                raise RenderFailed(name, parsed.subject_line, "the subject rendered empty")
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
            tree = sandbox.parse_source(self._env, source)
            # Read before the code generator below walks (and rewrites) the tree.
            link_topics = list(unknown_link_topics(tree, topics)) if topics is not None else []
            # Finding undeclared names runs Jinja's code generator, which also refuses unknown filters.
            undeclared = meta.find_undeclared_variables(tree)
        except TemplateSyntaxError as exc:
            return [TemplateProblem(first_line + (exc.lineno or 1) - 1, f"syntax error: {exc.message}")]
        unsafe = list(unsafe_nodes(tree))
        problems = [
            TemplateProblem(first_line + line - 1, message)
            for line, message in [*unsafe, *unknown_names(tree, undeclared), *static_problems(tree)]
        ]
        if kind != "subject":
            problems += block_problems(tree)
        problems += [TemplateProblem(first_line + line - 1, message) for line, message in link_topics]
        if not unsafe:
            try:
                # Unknown filters and tests only show when compiling; the compiled template is cached, so
                # the sample renders that follow reuse it.
                self._compiled(name, source, kind)
            except RenderFailed as exc:
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
            except RenderFailed as exc:
                failures.setdefault(TemplateProblem(exc.line, exc.reason), []).append(label)
        return [
            TemplateProblem(problem.line, f"fails to render for {' and '.join(labels)}: {problem.message}")
            for problem, labels in sorted(failures.items())
        ]

    # -- compiling and running --------------------------------------------------------------------------

    def _compile(self, name: str, source: str, kind: str) -> Any:
        return sandbox.compile_template(self._env, name, source, kind)

    def _run(self, name: str, source: str, kind: str, block: str | None, values: dict[str, Any]) -> str:
        template = self._compiled(name, source, kind)
        return sandbox.run_template(
            template, name, source, block, values, string_chars=self._limits.string_chars
        )


@contextmanager
def _in_subject(parsed: ParsedTemplate) -> Iterator[None]:
    try:
        yield
    except RenderFailed as exc:  # the subject's own line 1 is the front matter's subject line
        line = parsed.subject_line + exc.line - 1
        raise type(exc)(parsed.meta.name, line, f"in the subject: {exc.reason}") from exc


# -- the context ------------------------------------------------------------------------------------------


def _prospect_vars(prospect: ProspectFields) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in sorted(PROSPECT_FIELDS - {"top_interests"}):
        value = getattr(prospect, key)
        if value is not None and str(value).strip():
            values[key] = str(value).strip()
    if "name" not in values and (prospect.first_name or prospect.last_name):
        values["name"] = " ".join(p.strip() for p in (prospect.first_name, prospect.last_name) if p)
    values["top_interests"] = [str(topic) for topic in prospect.top_interests]
    return context_fields("prospect", values)


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

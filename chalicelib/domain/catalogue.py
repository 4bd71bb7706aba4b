"""The message catalogue's vocabulary: what a nurture template declares about itself.

A template's front matter says which topics it covers, which buying stages and personas it suits, how
eagerly it should be chosen (priority), how long before it may go to the same prospect again (cooldown)
and which sales recycle reasons it answers. This module turns that front matter (already parsed into a
mapping) into a checked `TemplateMeta`; the chooser reads only `TemplateMeta`, never the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from chalicelib.domain import lifecycle
from chalicelib.errors import InvalidContent


class Stage(StrEnum):
    AWARENESS = "awareness"
    CONSIDERATION = "consideration"
    DECISION = "decision"
    REENGAGEMENT = "reengagement"


# Personas are inferred from a prospect's title and traits; a template naming one outside this set could
# never be chosen, so a typo is refused rather than silently never matching.
PERSONAS: frozenset[str] = frozenset({"executive", "practitioner", "technical"})

RECYCLE_REASONS: frozenset[str] = frozenset(lifecycle.RECYCLE_REASONS)

FRONT_MATTER_FIELDS: tuple[str, ...] = (
    "subject",
    "topics",
    "stages",
    "personas",
    "priority",
    "cooldown_days",
    "recycle_reasons",
    "requires",
)
# `requires:` keys: what a prospect must be for the template to go to them at all (a hard requirement;
# `stages` and `personas` are only preferences).
REQUIREMENTS: tuple[str, ...] = ("stage", "persona")

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_TOPIC = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_MAX_SUBJECT_CHARS = 500
_MAX_COOLDOWN_DAYS = 3650
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class TemplateMeta:
    name: str
    subject: str  # Jinja2 source, rendered like the body (without HTML escaping)
    topics: tuple[str, ...]
    stages: tuple[Stage, ...]  # empty = any stage
    personas: tuple[str, ...]  # empty = any persona
    priority: int = 0
    cooldown_days: int = 30  # never resend the same template to a prospect within this
    recycle_reasons: tuple[str, ...] = ()
    version: int = 0
    requires_stages: tuple[Stage, ...] = ()  # empty = no requirement (`requires: {stage: [...]}`)
    requires_personas: tuple[str, ...] = ()


# Topic indexes of the catalogues lately chosen from, by the identities of their templates. An entry holds
# its templates, so no identity in its key can be reused while it is kept; TemplateMeta is immutable.
_TOPIC_INDEXES: dict[tuple[int, ...], tuple[tuple[TemplateMeta, ...], dict[str, tuple[int, ...]]]] = {}
_TOPIC_INDEXES_KEPT = 64


def templates_on(catalogue: Sequence[TemplateMeta], topics: Iterable[str]) -> list[TemplateMeta]:
    """The templates of `catalogue` that cover any of `topics`, in catalogue order. The chooser asks this
    for every choice; the topic index is built once per catalogue."""
    key = tuple(map(id, catalogue))
    held = _TOPIC_INDEXES.get(key)
    if held is None:
        index: dict[str, list[int]] = {}
        for position, template in enumerate(catalogue):
            for topic in template.topics:
                index.setdefault(topic, []).append(position)
        if len(_TOPIC_INDEXES) >= _TOPIC_INDEXES_KEPT:
            _TOPIC_INDEXES.clear()
        held = _TOPIC_INDEXES[key] = (tuple(catalogue), {t: tuple(ps) for t, ps in index.items()})
    templates, by_topic = held
    positions = sorted({position for topic in topics for position in by_topic.get(topic, ())})
    return [templates[position] for position in positions]


def meta_from_front_matter(name: str, data: Mapping[str, Any], *, version: int = 0) -> TemplateMeta:
    """Check a template's front matter and build its `TemplateMeta`.

    Raises InvalidContent naming the template and every offending field, so a marketer fixes them all in
    one go: `details["field"]` is the first field, `details["problems"]` each `{"field", "message"}`, so a
    caller that knows the file can point at the lines.
    """
    problems: list[InvalidContent] = []

    def checked(read: Callable[[], _T], fallback: _T) -> _T:
        try:
            return read()
        except InvalidContent as exc:
            problems.append(exc)
            return fallback

    if not _NAME.fullmatch(name):
        problems.append(
            _field_error(
                name, "name", "must be 1-64 lowercase letters, digits, '-' or '_', got " + repr(name)
            )
        )
    for key in sorted(str(key) for key in data if key not in FRONT_MATTER_FIELDS):
        problems.append(
            _field_error(name, key, f"is not a known field; the fields are {', '.join(FRONT_MATTER_FIELDS)}")
        )
    nothing: tuple[tuple[Stage, ...], tuple[str, ...]] = ((), ())
    required = checked(lambda: _requires(name, data.get("requires")), nothing)
    meta = TemplateMeta(
        name=name,
        subject=checked(lambda: _subject(name, data.get("subject")), ""),
        topics=checked(lambda: _slugs(name, "topics", data.get("topics"), required=True), ()),
        stages=checked(lambda: _stages(name, data.get("stages")), ()),
        personas=checked(lambda: _members(name, "personas", data.get("personas"), PERSONAS), ()),
        priority=checked(
            lambda: _whole_number(name, "priority", data.get("priority", 0), low=-100, high=100), 0
        ),
        cooldown_days=checked(
            lambda: _whole_number(
                name, "cooldown_days", data.get("cooldown_days", 30), low=0, high=_MAX_COOLDOWN_DAYS
            ),
            30,
        ),
        recycle_reasons=checked(
            lambda: _members(name, "recycle_reasons", data.get("recycle_reasons"), RECYCLE_REASONS), ()
        ),
        version=version,
        requires_stages=required[0],
        requires_personas=required[1],
    )
    if problems:
        raise _all_problems(name, problems)
    return meta


def _all_problems(name: str, problems: list[InvalidContent]) -> InvalidContent:
    listed = [{"field": _field_of(p), "message": p.message} for p in problems]
    if len(problems) == 1:
        message = problems[0].message
    else:
        each = "; ".join(p.message.removeprefix(f"template {name!r}: ") for p in problems)
        message = f"template {name!r} has {len(problems)} front matter problems: {each}"
    return InvalidContent(message, details={"field": listed[0]["field"], "problems": listed})


def _field_of(problem: InvalidContent) -> str:
    return str(problem.details.get("field")) if isinstance(problem.details, dict) else "(front matter)"


def _field_error(name: str, field: str, problem: str) -> InvalidContent:
    return InvalidContent(
        f"template {name!r}: front matter field {field!r} {problem}", details={"field": field}
    )


def _subject(name: str, value: Any) -> str:
    if value is None:
        raise _field_error(name, "subject", "is required (the email's subject line, Jinja2 allowed)")
    if not isinstance(value, str) or not value.strip():
        raise _field_error(name, "subject", f"must be non-empty text, got {value!r}")
    if len(value) > _MAX_SUBJECT_CHARS:
        raise _field_error(name, "subject", f"is longer than {_MAX_SUBJECT_CHARS} characters")
    return value.strip()


def _as_list(name: str, field: str, value: Any) -> list[Any]:
    # A single value is accepted for a one-item list: `stages: decision` reads naturally in YAML.
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    raise _field_error(name, field, f"must be a list, got {value!r}")


def _slugs(name: str, field: str, value: Any, *, required: bool = False) -> tuple[str, ...]:
    items = _as_list(name, field, value)
    if required and not items:
        raise _field_error(name, field, "needs at least one entry (e.g. [pricing, roi])")
    for item in items:
        if not isinstance(item, str) or not _TOPIC.fullmatch(item):
            raise _field_error(
                name, field, f"entries must be lowercase words ('a-z', '0-9', '-', '_'), got {item!r}"
            )
    return _unique(items)


def _members(name: str, field: str, value: Any, allowed: frozenset[str]) -> tuple[str, ...]:
    items = _as_list(name, field, value)
    for item in items:
        if item not in allowed:
            raise _field_error(
                name, field, f"has unknown entry {item!r}; expected one of {', '.join(sorted(allowed))}"
            )
    return _unique(items)


def _stages(name: str, value: Any) -> tuple[Stage, ...]:
    allowed = frozenset(stage.value for stage in Stage)
    return tuple(Stage(item) for item in _members(name, "stages", value, allowed))


def _requires(name: str, value: Any) -> tuple[tuple[Stage, ...], tuple[str, ...]]:
    if value is None:
        return (), ()
    if not isinstance(value, Mapping):
        raise _field_error(name, "requires", f"must be a mapping like {{stage: [decision]}}, got {value!r}")
    unknown = sorted(str(key) for key in value if key not in REQUIREMENTS)
    if unknown:
        raise _field_error(name, "requires", f"has unknown key {unknown[0]!r}; the keys are stage, persona")
    allowed = frozenset(stage.value for stage in Stage)
    stages = tuple(Stage(item) for item in _members(name, "requires", value.get("stage"), allowed))
    return stages, _members(name, "requires", value.get("persona"), PERSONAS)


def _whole_number(name: str, field: str, value: Any, *, low: int, high: int) -> int:
    # bool is an int in Python; `priority: yes` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _field_error(name, field, f"must be a whole number from {low} to {high}, got {value!r}")
    return value


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))

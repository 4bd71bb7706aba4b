"""Rules documents as marketers write them: YAML (or JSON) read without aliases, checked by `parse_rules`, and
every problem given with its dotted field and, where it can be found, its line in the text. Used by the rules
API (usecases/marketing.py), by template checks (the rules' topics) and by the offline lint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from chalicelib.domain.rules import Rules, RulesError, parse_rules
from chalicelib.errors import InvalidContent, MalformedInput


@dataclass(frozen=True, slots=True)
class RulesProblem:
    field: str  # dotted path, e.g. "fit.2.points"; "(document)" for the whole text
    message: str
    line: int | None  # 1-based line in the text, when it can be found

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "line": self.line}


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors' aliases: `*x` repeated inside lists is the billion-laughs bomb; rules never
    need it."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in rules", mark)
        return super().compose_node(parent, index)


def check_rules_text(text: str, *, as_json: bool = False) -> tuple[Rules | None, list[RulesProblem]]:
    """Parse and validate a rules document (YAML, or JSON when `as_json`); every problem with its line.

    A `version` in the document is ignored: versions are given by the store when a document is saved.
    """
    try:
        if as_json:
            document = json.loads(text)
        else:
            document = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except json.JSONDecodeError as error:
        return None, [RulesProblem("(document)", f"not valid JSON: {error.msg}", error.lineno)]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        line = mark.line + 1 if mark is not None else None
        return None, [RulesProblem("(document)", f"not valid YAML: {problem}", line)]
    except RecursionError:
        return None, [RulesProblem("(document)", "the document is nested too deeply", None)]
    if not isinstance(document, Mapping):
        return None, [RulesProblem("(document)", "the rules document must be a mapping of fields", 1)]
    try:
        return parse_rules({**document, "version": 0}), []
    except RulesError as error:
        lines = _field_line_finder(text, as_json=as_json)
        return None, [RulesProblem(p["field"], p["message"], lines(p["field"])) for p in error.problems]


def _field_line_finder(text: str, *, as_json: bool) -> Callable[[str], int | None]:
    """field path -> the line of the deepest part of it found in the text (JSON is YAML enough for this)."""
    try:
        root = yaml.compose(text, Loader=_NoAliasLoader)
    except yaml.YAMLError:
        root = None

    def find(path: str) -> int | None:
        node, line = root, None
        for part in path.split("."):
            if isinstance(node, yaml.MappingNode):
                found = next(((k, v) for k, v in node.value if str(k.value) == part), None)
                if found is None:
                    break
                line, node = found[0].start_mark.line + 1, found[1]
            elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
                node = node.value[int(part)]
                line = node.start_mark.line + 1
            else:
                break
        return line

    return find


def rules_error(problems: list[RulesProblem]) -> InvalidContent:
    listing = "; ".join(f"{p.field}{f' (line {p.line})' if p.line else ''}: {p.message}" for p in problems)
    return InvalidContent(
        f"the rules have {len(problems)} problem(s): {listing}", details=[p.as_dict() for p in problems]
    )


@dataclass(frozen=True, slots=True)
class RulesDraft:
    rules: Rules
    text: str
    based_on: int | None  # the saved version the draft is, when sent as {"version": N}


def read_rules_draft(
    body: Mapping[str, Any], rules_source: Callable[[int], str], *, takes: tuple[str, ...] = ()
) -> RulesDraft:
    """A rules draft as the rules lab takes it (backtest, shadow): `{"rules": <text>}` or `{"version": N}`,
    refused with the same problems as PUT /rules. `takes`: the request's other fields; any field beyond
    them is refused by name (a misspelt "form" must not silently mean "no window")."""
    unknown = sorted(set(body) - {"rules", "version", *takes})
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise MalformedInput(
            f"unknown field(s) {names}; this takes: 'rules' or 'version', {', '.join(takes)}"
        )
    text, version = body.get("rules"), body.get("version")
    if (text is None) == (version is None):
        raise MalformedInput("send the draft as 'rules' (the rules text) or 'version' (a saved version)")
    if version is not None:
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise MalformedInput("'version' must be a rules version number")
        text = rules_source(version)
    if not isinstance(text, str) or not text.strip():
        raise MalformedInput("'rules' must be the rules text (YAML or JSON)")
    parsed, problems = check_rules_text(text)  # JSON is YAML: the same problems as PUT /rules
    if parsed is None:
        raise rules_error(problems)
    return RulesDraft(parsed, text, version)

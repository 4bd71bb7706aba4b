"""Reading a template's text before anything renders it: the file format (YAML front matter between two
`---` lines, then the Jinja body), the front matter's fields and whether its topics are ones the rules know,
and the checks made on the parsed Jinja (unknown names and fields, file access, macros, the two blocks and
their unsubscribe link). Every check returns all the problems it finds, each with its line and, for front
matter, its field, so a marketer fixes a template in one round; templates.py adds what only a sample render
shows (the sandbox is template_sandbox.py). The format itself is described in templates.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from jinja2 import nodes

from chalicelib.adapters.template_budget import is_number
from chalicelib.domain.catalogue import TemplateMeta, meta_from_front_matter
from chalicelib.errors import InvalidContent

CONTEXT_NAMES: frozenset[str] = frozenset({"prospect", "sender", "unsubscribe_url", "link"})
PROSPECT_FIELDS: frozenset[str] = frozenset(
    {"first_name", "last_name", "name", "email", "company", "title", "persona", "stage", "top_interests"}
)
SENDER_FIELDS: frozenset[str] = frozenset({"name", "company", "address"})
BLOCKS: tuple[str, ...] = ("html", "text")

_FILE_ONLY = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
_SUBJECT_KEY = re.compile(r"subject\s*:")
_MAX_SUBJECT_CHARS = 500


class TemplateProblem(NamedTuple):
    line: int  # 1-based line in the template file
    message: str
    field: str | None = None  # the front matter field, when the problem is in one


def problem_dict(problem: TemplateProblem) -> dict[str, Any]:
    """A problem as the API answers it: `line` and `message`, and `field` when it is in the front matter."""
    found = {"line": problem.line, "message": problem.message}
    return found if problem.field is None else {**found, "field": problem.field}


def sorted_problems(problems: Collection[TemplateProblem]) -> list[TemplateProblem]:
    return sorted(set(problems), key=lambda p: (p.line, p.field or "", p.message))


class FormatProblem(InvalidContent):
    """The text is not a template at all (no front matter delimiters): nothing further can be read."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}", details={"line": line})
        self.problem = TemplateProblem(line, message)


# -- the file format --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceParts:
    front_matter: str
    body: str  # front matter lines replaced by blank lines, so Jinja's line numbers are the file's
    subject_line: int  # where the subject field sits, for errors in the subject's Jinja


def normalise(source: str) -> str:
    return source.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def split_source(source: str) -> SourceParts:
    lines = normalise(source).split("\n")
    if lines[0].strip() != "---":
        raise FormatProblem(
            1, "a template starts with a '---' line, then YAML front matter, then another '---'"
        )
    for close in range(1, len(lines)):
        if lines[close].strip() == "---":
            break
    else:
        raise FormatProblem(1, "the front matter opened on line 1 is never closed by a '---' line")
    front = "\n".join(lines[1:close])
    body = "\n" * (close + 1) + "\n".join(lines[close + 1 :])
    subject_line = next((i + 1 for i in range(1, close) if _SUBJECT_KEY.match(lines[i])), 2)
    return SourceParts(front_matter=front, body=body, subject_line=subject_line)


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """What the front matter says: the checked meta when every field is sound, else the problems; the
    subject is kept whenever it is usable text, so its Jinja is checked beside the other problems."""

    meta: TemplateMeta | None
    subject: str | None
    problems: list[TemplateProblem] = field(default_factory=list)


def read_front_matter(
    name: str, parts: SourceParts, *, version: int = 0, topics: Collection[str] | None = None
) -> FrontMatter:
    """The front matter's fields, every problem with its field and line. `topics`, when given, is the
    rules' topic vocabulary: a topic outside it could never match a prospect's interest."""
    try:
        data = yaml.safe_load(parts.front_matter) if parts.front_matter.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 2 if mark else 1
        return FrontMatter(None, None, [TemplateProblem(line, f"front matter is not valid YAML: {problem}")])
    if not isinstance(data, dict):
        message = "front matter must be YAML fields (subject, topics, ...), one per line"
        return FrontMatter(None, None, [TemplateProblem(2, message)])
    lines = _key_lines(parts.front_matter)
    problems: list[TemplateProblem] = []
    meta: TemplateMeta | None = None
    try:
        meta = meta_from_front_matter(name, data, version=version)
    except InvalidContent as exc:
        for found in _field_problems(exc):
            where = found["field"]
            problems.append(TemplateProblem(lines.get(where, 1), found["message"], where))
    if topics is not None and not any(p.field == "topics" for p in problems):
        problems += _unknown_topics(data.get("topics"), topics, lines.get("topics", 1))
    return FrontMatter(None if problems else meta, _usable_subject(data.get("subject")), problems)


def _field_problems(exc: InvalidContent) -> list[dict[str, str]]:
    details = exc.details if isinstance(exc.details, dict) else {}
    listed = details.get("problems")
    if isinstance(listed, list):
        return [{"field": str(p["field"]), "message": str(p["message"])} for p in listed]
    return [{"field": str(details.get("field", "(front matter)")), "message": exc.message}]


def _unknown_topics(value: Any, known: Collection[str], line: int) -> list[TemplateProblem]:
    declared = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    unknown = [topic for topic in dict.fromkeys(declared) if isinstance(topic, str) and topic not in known]
    if not unknown:
        return []
    names = ", ".join(repr(topic) for topic in unknown)
    which = f"topic {names} is" if len(unknown) == 1 else f"topics {names} are"
    message = (
        f"{which} not among the rules' topics, so no interest the rules infer can ever match; the rules' "
        f"topics are {', '.join(sorted(known))} (add a topic to the rules before a template uses it)"
    )
    return [TemplateProblem(line, message, "topics")]


def _usable_subject(value: Any) -> str | None:
    if isinstance(value, str) and value.strip() and len(value) <= _MAX_SUBJECT_CHARS:
        return value.strip()
    return None


def _key_lines(front_matter: str) -> dict[str, int]:
    node = yaml.compose(front_matter, Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): key.start_mark.line + 2 for key, _ in node.value}


# -- reading the template ---------------------------------------------------------------------------------


def unsafe_nodes(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    for node in tree.find_all((*_FILE_ONLY, nodes.Macro, nodes.CallBlock, nodes.For, nodes.Pow)):
        if isinstance(node, _FILE_ONLY):
            yield node.lineno, "a template cannot include, import or extend other files"
        elif isinstance(node, nodes.Macro | nodes.CallBlock):
            yield node.lineno, "macros are not supported; repeat the markup or use a loop"
        elif isinstance(node, nodes.Pow):
            yield node.lineno, "the ** operator is not allowed in templates"
        elif isinstance(node, nodes.For) and node.recursive:
            yield node.lineno, "recursive loops are not supported"


def unknown_names(tree: nodes.Template, undeclared: set[str]) -> Iterator[tuple[int, str]]:
    # `self` is never "undeclared" to Jinja, yet it reaches the template's internals.
    flagged = undeclared | {"self"}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in flagged and node.name not in CONTEXT_NAMES:
            yield node.lineno, f"unknown variable {node.name!r}; a template can use {_known_names()}"
    for owner, fields in (("prospect", PROSPECT_FIELDS), ("sender", SENDER_FIELDS)):
        for lineno, attribute in _attributes_of(tree, owner):
            if attribute not in fields:
                yield lineno, f"{owner} has no field {attribute!r}; it has {', '.join(sorted(fields))}"


def unknown_link_topics(tree: nodes.Template, known: Collection[str]) -> Iterator[tuple[int, str]]:
    """Topics a `link(url, topics=[...])` names that the rules do not know: a click on that link would record
    an interest no template and no rule can ever match (nurture would wait on it for good)."""
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name == "link"):
            continue
        given = [kw.value for kw in call.kwargs if kw.key == "topics"] + call.args[1:2]
        for value in given:
            items = value.items if isinstance(value, nodes.List | nodes.Tuple) else [value]
            names = [
                item.value for item in items if isinstance(item, nodes.Const) and isinstance(item.value, str)
            ]
            unknown = [name for name in dict.fromkeys(names) if name not in known]
            if unknown:
                listed = ", ".join(repr(name) for name in unknown)
                yield (
                    call.lineno,
                    (
                        f"link topic {listed} is not among the rules' topics, so a click on it records "
                        f"an interest nothing can match; the rules' topics are {', '.join(sorted(known))}"
                    ),
                )


def _attributes_of(tree: nodes.Template, owner: str) -> Iterator[tuple[int, str]]:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if not (isinstance(target, nodes.Name) and target.name == owner):
            continue
        if isinstance(node, nodes.Getattr):
            yield node.lineno, node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if isinstance(node.arg.value, str):
                yield node.lineno, node.arg.value


def _known_names() -> str:
    return "prospect, sender, unsubscribe_url and link(url, topics=[...])"


def block_problems(tree: nodes.Template) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    blocks = {block.name: block for block in tree.find_all(nodes.Block)}
    for block in blocks.values():
        if block.name not in BLOCKS:
            problems.append(TemplateProblem(block.lineno, f"unknown block {block.name!r}; use html and text"))
    for wanted in BLOCKS:
        found = blocks.get(wanted)
        if found is None:
            problems.append(
                TemplateProblem(_last_line(tree), f"missing {{% block {wanted} %}}…{{% endblock %}}")
            )
        elif not _mentions(found, "unsubscribe_url"):
            problems.append(
                TemplateProblem(
                    found.lineno, f"the {wanted} block needs an unsubscribe link: {{{{ unsubscribe_url }}}}"
                )
            )
    problems.extend(_outside_blocks(tree))
    return problems


def _mentions(block: nodes.Block, variable: str) -> bool:
    return any(node.name == variable and node.ctx == "load" for node in block.find_all(nodes.Name))


def _outside_blocks(tree: nodes.Template) -> Iterator[TemplateProblem]:
    for node in tree.body:
        if isinstance(node, nodes.Block):
            continue
        if isinstance(node, nodes.Output) and all(
            isinstance(item, nodes.TemplateData) and not item.data.strip() for item in node.nodes
        ):
            continue
        yield TemplateProblem(
            node.lineno, "content outside the html and text blocks is never sent; move it inside"
        )


def _last_line(tree: nodes.Template) -> int:
    return max((node.lineno for node in tree.find_all(nodes.Node)), default=1)


MAX_LOOP_NESTING = 2
MAX_REPEAT = 1_000


# -- what a saved template is refused for, without rendering it (its cost; the render budget is
# template_budget.py) -------------------------------------------


def static_problems(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """(line, message) for every construct whose cost grows with the data beyond what a message needs."""
    yield from _deep_loops([tree], 0)
    yield from _self_doubling(tree)
    yield from _big_repeats(tree)


def _deep_loops(found: Iterable[nodes.Node | None], depth: int) -> Iterator[tuple[int, str]]:
    for node in found:
        if not isinstance(node, nodes.For):
            if node is not None:
                yield from _deep_loops(node.iter_child_nodes(), depth)
            continue
        if depth + 1 == MAX_LOOP_NESTING + 1:
            yield (
                node.lineno,
                f"loops nested more than {MAX_LOOP_NESTING} deep multiply their work by the data's size;"
                " flatten them",
            )
        yield from _deep_loops([node.iter, node.test, *node.else_], depth)
        yield from _deep_loops(node.body, depth + 1)


def _self_doubling(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    for node in tree.find_all((nodes.Assign, nodes.AssignBlock)):
        assert isinstance(node, nodes.Assign | nodes.AssignBlock)
        value: list[nodes.Node] = [node.node] if isinstance(node, nodes.Assign) else list(node.body)
        loads = [name.name for part in value for name in part.find_all(nodes.Name) if name.ctx == "load"]
        targets = [node.target] if isinstance(node.target, nodes.Name) else node.target.find_all(nodes.Name)
        for target in targets:
            if loads.count(target.name) >= 2:
                yield (
                    node.lineno,
                    f"setting {target.name} from {target.name} twice doubles it every time it runs;"
                    " build the text once",
                )


def _big_repeats(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    for node in tree.find_all(nodes.Mul):
        for count, other in ((node.right, node.left), (node.left, node.right)):
            if not (isinstance(count, nodes.Const) and is_number(count.value) and count.value > MAX_REPEAT):
                continue
            if _numeric(other):
                continue
            yield node.lineno, f"`* {count.value}` repeats text {count.value} times; at most {MAX_REPEAT}"
            break


def _numeric(node: nodes.Node) -> bool:
    # Arithmetic on numbers stays allowed; only the loop counters are numbers in a template's context.
    if isinstance(node, nodes.Const):
        return isinstance(node.value, int | float) and not isinstance(node.value, bool)
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return node.node.name == "loop"
    return isinstance(node, nodes.BinExpr | nodes.UnaryExpr) and all(
        _numeric(child) for child in node.iter_child_nodes()
    )

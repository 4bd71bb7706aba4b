"""Offline lint of message templates and rules documents: `python -m chalicelib.entrypoints.lint [PATH ...]`.

With no PATH it checks what a deployment ships: every `templates/*.md.j2` and `chalicelib/default_rules.yaml`.
A PATH may be a template file (`*.md.j2`), a folder of them, or a rules document (`.yaml`, `.yml`, `.json`).
The checks are the very ones a save through the API runs (the sandboxed renderer, the rules parser, template
topics against the rules' topics), so what passes here can be saved and sent. Template topics are checked
against the rules document among the PATHs, or else the shipped default rules. Prints one `path:line: problem`
per problem and a summary; exits 1 when anything is wrong, 2 when a PATH cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from chalicelib.adapters.templates import SHIPPED_TEMPLATES_DIR, TEMPLATE_SUFFIX, TemplateRenderer
from chalicelib.usecases.rules_text import check_rules_text

DEFAULT_RULES = Path(__file__).resolve().parents[1] / "default_rules.yaml"
RULES_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True, slots=True)
class Finding:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line or 1}: {self.message}"


@dataclass
class Report:
    templates: int = 0
    rules: int = 0
    findings: list[Finding] = field(default_factory=list)


class Unreadable(Exception):
    pass


def lint_template(
    path: Path, renderer: TemplateRenderer, topics: Collection[str] | None = None
) -> list[Finding]:
    name = path.name.removesuffix(TEMPLATE_SUFFIX)
    source = _read(path)
    problems = renderer.validate(name, source, topics=topics)
    return [Finding(path, problem.line, problem.message) for problem in problems]


def lint_rules(path: Path) -> list[Finding]:
    text = _read(path)
    _, problems = check_rules_text(text, as_json=path.suffix == ".json")
    return [Finding(path, problem.line, f"{problem.field}: {problem.message}") for problem in problems]


def lint(paths: Sequence[Path]) -> Report:
    renderer = TemplateRenderer()
    report = Report()
    files = _expand(paths)
    topics = _topic_vocabulary(files)
    for path in files:
        if path.name.endswith(TEMPLATE_SUFFIX):
            report.templates += 1
            found = lint_template(path, renderer, topics)
        else:
            report.rules += 1
            found = lint_rules(path)
        report.findings.extend(found)
    return report


def _topic_vocabulary(files: Sequence[Path]) -> frozenset[str] | None:
    """The topics of the rules being linted (the first rules document given), else of the shipped rules;
    None when that document is itself broken (its own findings say why)."""
    rules_path = next((f for f in files if not f.name.endswith(TEMPLATE_SUFFIX)), DEFAULT_RULES)
    rules, _ = check_rules_text(_read(rules_path), as_json=rules_path.suffix == ".json")
    return None if rules is None else frozenset(topic.topic for topic in rules.topics)


def _expand(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob(f"*{TEMPLATE_SUFFIX}"))
            if not found:
                raise Unreadable(f"{path}: no *{TEMPLATE_SUFFIX} templates in this folder")
            files.extend(found)
        elif path.name.endswith(TEMPLATE_SUFFIX) or path.suffix in RULES_SUFFIXES:
            files.append(path)
        else:
            rules = ", ".join(RULES_SUFFIXES)
            kinds = f"a template (*{TEMPLATE_SUFFIX}), a folder of them, or a rules document ({rules})"
            raise Unreadable(f"{path}: not {kinds}")
    return files


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise Unreadable(f"{path}: cannot be read: {error}") from error


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.entrypoints.lint",
        description="Check message templates and rules documents offline.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="templates, folders of them, rules documents")
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths or [SHIPPED_TEMPLATES_DIR, DEFAULT_RULES]
    try:
        report = lint(paths)
    except Unreadable as error:
        print(f"lint: {error}", file=out)
        return 2
    findings = report.findings
    for finding in findings:
        print(finding, file=out)
    checked = f"{report.templates} template(s) and {report.rules} rules document(s)"
    if findings:
        files = len({finding.path for finding in findings})
        print(f"lint: {len(findings)} problem(s) in {files} file(s); checked {checked}", file=out)
        return 1
    print(f"lint: OK, checked {checked}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

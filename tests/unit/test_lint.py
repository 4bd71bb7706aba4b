"""`python -m chalicelib.entrypoints.lint`: the shipped templates and rules pass; a broken file is named with
its line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import yaml

from chalicelib.adapters.templates import SHIPPED_TEMPLATES_DIR
from chalicelib.entrypoints.lint import DEFAULT_RULES, main
from chalicelib.usecases.marketing import check_rules_text

ROOT = Path(__file__).resolve().parents[2]


def run(*paths: Path) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = main([str(path) for path in paths], out)
    return code, out.getvalue().splitlines()


def test_the_shipped_templates_and_default_rules_pass_as_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.entrypoints.lint"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = len(list(SHIPPED_TEMPLATES_DIR.glob("*.md.j2")))
    assert f"OK, checked {shipped} template(s) and 1 rules document(s)" in done.stdout


def test_every_broken_file_is_reported_with_its_line_and_the_exit_code_is_1(tmp_path: Path) -> None:
    good = (SHIPPED_TEMPLATES_DIR / "welcome-product-tour.md.j2").read_text()
    lines = good.split("\n")
    html = lines.index("{% block html %}")
    lines.insert(html + 1, "{{ prospect.frist_name }}")
    (tmp_path / "typo.md.j2").write_text("\n".join(lines))
    (tmp_path / "injection.md.j2").write_text(good.replace("{{ sender.name }}", "{{ ''.__class__.__mro__ }}"))
    (tmp_path / "fine.md.j2").write_text(good)
    rules = DEFAULT_RULES.read_text().replace("  fit: 40", "  fit: -1")
    (tmp_path / "rules.yaml").write_text(rules)
    fit_line = rules.split("\n").index("  fit: -1") + 1

    code, output = run(tmp_path, tmp_path / "rules.yaml")

    assert code == 1
    assert any(
        line.startswith(f"{tmp_path / 'typo.md.j2'}:{html + 2}: ") and "frist_name" in line for line in output
    )
    assert any(line.startswith(f"{tmp_path / 'injection.md.j2'}:") and "unsafe" in line for line in output)
    assert not any("fine.md.j2" in line for line in output)
    assert (
        f"{tmp_path / 'rules.yaml'}:{fit_line}: thresholds.fit: Input should be greater than or equal to 0"
        in output
    )
    assert output[-1].startswith(
        "lint: 3 problem(s) in 3 file(s); checked 3 template(s) and 1 rules document(s)"
    )


def test_json_rules_and_unreadable_paths(tmp_path: Path) -> None:
    document = yaml.safe_load(DEFAULT_RULES.read_text())
    document["cadence"]["max_per_30_days"] = 0
    (tmp_path / "rules.json").write_text(json.dumps(document, indent=2))
    code, output = run(tmp_path / "rules.json")
    assert code == 1
    assert any("cadence.max_per_30_days" in line for line in output)
    assert run(tmp_path / "missing.md.j2")[0] == 2
    assert run(tmp_path / "notes.txt")[0] == 2


def test_rules_text_problems_point_at_fields_and_lines() -> None:
    rules, problems = check_rules_text("thresholds:\n  fit: [40\n")
    assert rules is None and problems[0].field == "(document)" and problems[0].line == 3
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    rules, problems = check_rules_text(bomb)
    assert rules is None and "aliases" in problems[0].message and problems[0].line == 2
    rules, problems = check_rules_text(DEFAULT_RULES.read_text() + "\nsurprise: 1\n")
    assert rules is None and [p.field for p in problems] == ["surprise"]
    assert problems[0].line == DEFAULT_RULES.read_text().count("\n") + 2
    rules, problems = check_rules_text(DEFAULT_RULES.read_text())
    assert rules is not None and problems == []

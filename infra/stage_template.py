"""Turns Chalice's merged output (or infra/resources.yaml alone) into the deployable template of one stage.

It owns the steps `chalice package --merge-template` cannot do: pinning the `Stage` parameter to the
Chalice stage that was packaged (so names, roles and environment agree), inlining the state machine
definitions from infra/*.asl.json, which stay separate files so they can be validated and reviewed as ASL,
and setting the functions' Lambda runtime (Chalice takes it from the Python that packages, 3.11, which
Lambda no longer accepts; scripts/package.sh chooses the runtime and installs wheels built for it).
It also builds the reduced template `scripts/validate_infra.sh` lints when the app cannot be packaged.

CLI (used by scripts/package.sh and scripts/validate_infra.sh):
    python infra/stage_template.py finalize TEMPLATE STAGE RUNTIME  # in place
    python infra/stage_template.py standalone STAGE OUT            # resources.yaml alone, for linting
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

INFRA_DIR = Path(__file__).resolve().parent
RESOURCES_TEMPLATE = INFRA_DIR / "resources.yaml"
# Logical id of a state machine -> its definition file, relative to infra/.
WORKFLOWS = {
    "SlaStateMachine": "sla_workflow.asl.json",
    "BacktestStateMachine": "backtest_workflow.asl.json",
}
PSEUDO_PREFIX = "AWS::"


def load_template(path: Path) -> dict[str, Any]:
    """Load a CloudFormation template, JSON or YAML, expanding short-form intrinsics (!Ref, !Sub...)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return dict(json.loads(text))
    return dict(yaml.load(text, Loader=_CloudFormationLoader))  # a SafeLoader subclass


def dump_template(template: dict[str, Any], path: Path) -> None:
    if path.suffix == ".json":
        path.write_text(json.dumps(template, indent=2) + "\n", encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(template, sort_keys=False, allow_unicode=True), encoding="utf-8")


def finalize(
    template: dict[str, Any], stage: str, runtime: str | None = None, infra_dir: Path = INFRA_DIR
) -> dict[str, Any]:
    """Pin `Stage` to `stage`, inline every workflow definition and, given a `runtime`, run every function
    on it; returns a new template."""
    result = json.loads(json.dumps(template))
    for body in result.get("Resources", {}).values():
        if runtime is not None and body.get("Type") == "AWS::Serverless::Function":
            body["Properties"]["Runtime"] = runtime
    stage_parameter = result.setdefault("Parameters", {}).setdefault("Stage", {"Type": "String"})
    stage_parameter["Default"] = stage
    stage_parameter["AllowedValues"] = [stage]
    for logical_id, filename in WORKFLOWS.items():
        machine = result.get("Resources", {}).get(logical_id)
        if machine is None:
            raise KeyError(f"{logical_id} is missing from the template: cannot inline {filename}")
        definition = json.loads((infra_dir / filename).read_text(encoding="utf-8"))
        machine.setdefault("Properties", {})["Definition"] = definition
    return result


def standalone(template: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Drop the patches to Chalice-made resources (no `Type`) and whatever refers to them.

    Returns the reduced template and the logical ids that were dropped, so the caller can say so.
    """
    result = json.loads(json.dumps(template))
    resources: dict[str, Any] = result.get("Resources", {})
    dropped = [name for name, body in resources.items() if "Type" not in body]
    for name in dropped:
        del resources[name]
    changed = True
    while changed:
        known = set(resources) | set(result.get("Parameters", {}))
        changed = False
        for name, body in list(resources.items()):
            if not references(body) <= known:
                del resources[name]
                dropped.append(name)
                changed = True
    outputs: dict[str, Any] = result.get("Outputs", {})
    known = set(resources) | set(result.get("Parameters", {}))
    for name, body in list(outputs.items()):
        if not references(body) <= known:
            del outputs[name]
    return result, dropped


def references(node: Any) -> set[str]:
    """Logical ids and parameters a fragment refers to (Ref, GetAtt, Sub), pseudo-parameters aside."""
    return {name for name in _walk_references(node) if not name.startswith(PSEUDO_PREFIX)}


def _walk_references(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _walk_references(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "Ref" and isinstance(value, str):
            yield value
        elif key == "Fn::GetAtt":
            target = value[0] if isinstance(value, list) else str(value).split(".", 1)[0]
            yield str(target)
        elif key == "Fn::Sub":
            yield from _sub_references(value)
        else:
            yield from _walk_references(value)


def _sub_references(value: Any) -> Iterator[str]:
    text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
    for chunk in str(text).split("${")[1:]:
        name = chunk.split("}", 1)[0].split(".", 1)[0]
        if not name.startswith("!") and name not in variables:
            yield name
    yield from _walk_references(variables)


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short forms into their long forms, as Chalice's loader does."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if tag_suffix == "GetAtt" and isinstance(node, yaml.ScalarNode):
        return {name: str(loader.construct_scalar(node)).split(".", 1)}
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "finalize":
        path = Path(argv[1])
        dump_template(finalize(load_template(path), argv[2], argv[3]), path)
        return 0
    if len(argv) == 3 and argv[0] == "standalone":
        reduced, dropped = standalone(finalize(load_template(RESOURCES_TEMPLATE), argv[1]))
        dump_template(reduced, Path(argv[2]))
        print("left out (made or patched by Chalice, or referring to it): " + ", ".join(sorted(dropped)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Shared test configuration: where the wire fixtures live, and a fixed clock."""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def script_module(name: str) -> ModuleType:
    """scripts/<name>.py imported as the module `name` (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


# CI clones main with shared/ beside it; a developer's checkout has the same layout.
FIXTURES = Path(os.environ.get("LEADLOOP_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"wire fixtures not found at {FIXTURES}; set LEADLOOP_FIXTURES")
    return FIXTURES


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

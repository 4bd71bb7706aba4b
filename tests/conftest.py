"""Shared test configuration: where the wire fixtures live, and a fixed clock."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
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

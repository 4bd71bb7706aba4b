"""The console's tests: over HTTP in-process (the e2e loop fixture), and in a real Chromium."""

from __future__ import annotations

from tests.e2e.conftest import loop  # noqa: F401 - the in-process loop, for the HTTP-level console tests

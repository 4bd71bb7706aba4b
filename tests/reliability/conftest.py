"""Reliability tests reuse the end-to-end loop (chalice test client + moto + queue drain)."""

from __future__ import annotations

from tests.e2e.conftest import Loop, loop

__all__ = ["Loop", "loop"]

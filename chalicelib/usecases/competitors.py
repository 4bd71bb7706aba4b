"""Competitor domains learned from sales (chalicelib.domain.competitors): list them, and remove one a rep
named by mistake. Learning itself is an effect of the disqualification (chalicelib.effects.dispatch)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.domain.competitors import DOMAIN, MAX_LEARNED_COMPETITORS
from chalicelib.errors import MalformedInput, NotFound
from chalicelib.usecases.ports import CompetitorList


class CompetitorService:
    def __init__(
        self,
        *,
        competitors: CompetitorList,
        clock: Callable[[], datetime],
        forget_rules: Callable[[], None] = lambda: None,  # this process scores without it at once
    ) -> None:
        self._competitors = competitors
        self._clock = clock
        self._forget_rules = forget_rules

    def list(self) -> dict[str, Any]:
        entries = self._competitors.entries()
        return {
            "competitors": [entry.to_json() for entry in entries],
            "count": len(entries),
            "limit": MAX_LEARNED_COMPETITORS,
        }

    def forget(self, domain: str, actor: str) -> dict[str, Any]:
        name = domain.strip().lower()
        if not DOMAIN.match(name):
            raise MalformedInput(f"{domain[:80]!r} is not a domain name (like 'example.com')")
        if not self._competitors.forget(name, actor=actor, at=self._clock()):
            raise NotFound(f"{name!r} is not a learned competitor domain")
        self._forget_rules()
        return {"removed": name}

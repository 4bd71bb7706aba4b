"""The learned competitor domains (chalicelib.domain.competitors), kept as versioned content beside the rules:
every change is a new version of "learned#competitors" (who, when), so the list's history reads like the
rules'. Each change reads the latest version and writes the next one conditionally; losing a race to another
change reads again.
"""

from __future__ import annotations

import json
from datetime import datetime

from chalicelib.adapters.dynamo_records import ContentStore
from chalicelib.domain.competitors import MAX_LEARNED_COMPETITORS, LearnedCompetitor
from chalicelib.errors import ConcurrentUpdate

LEARNED_KEY = "learned#competitors"
ATTEMPTS = 5  # changes are rare (a disqualification, a removal); five lost races in a row is a fault


def learned(
    entries: list[LearnedCompetitor], entry: LearnedCompetitor
) -> tuple[str, list[LearnedCompetitor]]:
    """What learning `entry` does: ("learned", the longer list), or ("known" | "full", `entries`)."""
    if any(e.domain == entry.domain for e in entries):
        return "known", entries
    if len(entries) >= MAX_LEARNED_COMPETITORS:
        return "full", entries
    return "learned", [*entries, entry]


class StoredCompetitorList:
    def __init__(self, content: ContentStore) -> None:
        self._content = content

    def learn(self, entry: LearnedCompetitor) -> str:
        for _ in range(ATTEMPTS):
            version, entries = self._latest()
            outcome, changed = learned(entries, entry)
            if outcome != "learned":
                return outcome
            if self._save(changed, entry.actor, entry.at, version):
                return outcome
        raise ConcurrentUpdate("the learned competitor domains kept changing; try again")

    def entries(self) -> list[LearnedCompetitor]:
        return self._latest()[1]

    def forget(self, domain: str, *, actor: str, at: datetime) -> bool:
        for _ in range(ATTEMPTS):
            version, entries = self._latest()
            kept = [e for e in entries if e.domain != domain]
            if len(kept) == len(entries):
                return False
            if self._save(kept, actor, at, version):
                return True
        raise ConcurrentUpdate("the learned competitor domains kept changing; try again")

    def _latest(self) -> tuple[int, list[LearnedCompetitor]]:
        saved = self._content.latest(LEARNED_KEY)
        if saved is None:
            return 0, []
        return saved.version, [LearnedCompetitor.from_json(e) for e in json.loads(saved.body)["entries"]]

    def _save(self, entries: list[LearnedCompetitor], actor: str, at: datetime, version: int) -> bool:
        body = json.dumps({"entries": [e.to_json() for e in entries]}, separators=(",", ":"))
        try:
            self._content.save(LEARNED_KEY, body, actor, at, expected_latest=version)
        except ConcurrentUpdate:
            return False
        return True


class InMemoryCompetitorList:
    """The same promises in memory, for use-case tests and the simulation."""

    def __init__(self) -> None:
        self._entries: list[LearnedCompetitor] = []

    def learn(self, entry: LearnedCompetitor) -> str:
        outcome, self._entries = learned(self._entries, entry)
        return outcome

    def entries(self) -> list[LearnedCompetitor]:
        return list(self._entries)

    def forget(self, domain: str, *, actor: str, at: datetime) -> bool:
        kept = [e for e in self._entries if e.domain != domain]
        found, self._entries = len(kept) != len(self._entries), kept
        return found

"""Copies of people's data kept on disk, and their removal when a person is erased.

- The outbox folder (`adapters.mail.OutboxMailer`, `adapters.notify.SalesNotifier`): nurture emails named
  `<send id>.eml`, sales notifications `notifications/<time>-<lead id>.json`, and owner emails named by
  time, found by their `X-Leadloop-Lead-Id` header.
- The local stack's events journal (`adapters.queue.JournaledQueue`, scripts/local_journal.py): accepted
  bodies that name the person are dropped from `accepted.jsonl`. Not on AWS, where SQS keeps no journal.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from email.parser import BytesHeaderParser
from pathlib import Path

from chalicelib.adapters.mail import FILE_UNSAFE
from chalicelib.adapters.queue import JOURNAL_FILE

log = logging.getLogger("leadloop.copies")

HEADER_BYTES = 16 * 1024  # an .eml's headers sit at its start; the body is not read


class OutboxCopies:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def forget(self, lead_ids: Sequence[str], send_ids: Sequence[str]) -> int:
        """Delete every copy naming one of `lead_ids` or sent as one of `send_ids`; returns how many."""
        if not self._directory.is_dir():
            return 0  # a deployed stage sends through SES and keeps no copies
        doomed = {self._directory / f"{FILE_UNSAFE.sub('_', send_id)}.eml" for send_id in send_ids}
        wanted = set(lead_ids)
        for path in self._directory.glob("*.eml"):
            if path not in doomed and _names_lead(path, wanted):
                doomed.add(path)
        notifications = self._directory / "notifications"
        for lead_id in lead_ids:
            doomed.update(notifications.glob(f"*-{FILE_UNSAFE.sub('_', lead_id)}.json"))
        removed = 0
        for path in doomed:
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                continue
        return removed


def _names_lead(path: Path, lead_ids: set[str]) -> bool:
    try:
        with path.open("rb") as file:
            headers = BytesHeaderParser().parsebytes(file.read(HEADER_BYTES))
    except OSError:
        return False
    return str(headers.get("X-Leadloop-Lead-Id") or "").strip() in lead_ids


class JournalCopies:
    """The local events journal; `forget` rewrites `accepted.jsonl` without the bodies naming a person."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / JOURNAL_FILE

    def forget(self, identifiers: Sequence[str]) -> int:
        # Matched as JSON strings, so the id "L1" does not match "L12" and an address only whole.
        needles = [json.dumps(value) for value in identifiers if value]
        try:
            lines = self._path.read_text().splitlines(keepends=True)
        except FileNotFoundError:
            return 0
        kept: list[str] = []
        for line in lines:
            try:
                body = str(json.loads(line).get("body") or "")
            except (ValueError, AttributeError):
                kept.append(line)  # a torn line: compaction skips it
                continue
            if not any(needle in body for needle in needles):
                kept.append(line)
        dropped = len(lines) - len(kept)
        if dropped:
            # Written aside and renamed: a crash leaves the old journal or the new one, never half of one.
            draft = self._path.with_suffix(".erase.tmp")
            draft.write_text("".join(kept))
            os.replace(draft, self._path)
            log.info("dropped %d journaled bodies of an erased person", dropped)
        return dropped

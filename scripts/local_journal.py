"""The local events journal, read side: which accepted events the local stack has not applied yet.

moto keeps its SQS queue in memory, so on the local stack the queue alone cannot be trusted with an event
answered 2xx. `chalicelib.adapters.queue.JournaledQueue` (wiring builds it when LEADLOOP_LOCAL_JOURNAL is
set) appends every message body to `accepted.jsonl` and fsyncs it before SQS is asked to take it; the runner
appends each applied body's id to `applied.jsonl` (fsynced) before it deletes the message. On start, before
anything can accept an event, `compact()` keeps only the accepted bodies never applied and they go back on
the fresh queue (`requeue`): at least once, and applying is idempotent per event id, so a body applied just
before a crash and replayed is a no-op.

Compaction rewrites the files, so it runs only while no process writes them: before chalice local starts,
or after it stopped and the queue was drained.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chalicelib.adapters.queue import JOURNAL_FILE, journal_id

APPLIED_FILE = "applied.jsonl"

log = logging.getLogger("local_stack")


class EventJournal:
    """The folder holding `accepted.jsonl` (written by chalice local) and `applied.jsonl` (by the runner)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.accepted_path = directory / JOURNAL_FILE
        self.applied_path = directory / APPLIED_FILE
        self._lock = threading.Lock()

    def mark_applied(self, bodies: Iterable[str]) -> None:
        """Record bodies as applied; durable when this returns, so the caller may then delete the messages."""
        lines = "".join(json.dumps(journal_id(body)) + "\n" for body in bodies)
        if not lines:
            return
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.applied_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, lines.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending(self) -> list[str]:
        """Accepted bodies not yet applied, in the order they were accepted, each once."""
        applied = set(_lines(self.applied_path, json.loads))
        bodies: list[str] = []
        for entry in _lines(self.accepted_path, json.loads):
            if not isinstance(entry, dict) or not isinstance(entry.get("body"), str):
                continue
            key = str(entry.get("id") or journal_id(entry["body"]))
            if key not in applied:
                applied.add(key)  # identical bodies carry identical events: one replay is enough
                bodies.append(entry["body"])
        return bodies

    def compact(self) -> list[str]:
        """Rewrite the journal to hold only what is still pending, and return those bodies. Only while no
        other process writes the journal (see the module docstring)."""
        with self._lock:
            bodies = self.pending()
            self.directory.mkdir(parents=True, exist_ok=True)
            entries = "".join(
                json.dumps({"id": journal_id(body), "body": body}, separators=(",", ":")) + "\n"
                for body in bodies
            )
            # Accepted first: a crash between the two renames leaves stale applied ids, which name bodies
            # no longer in the journal, or identical ones already applied; either way nothing is lost.
            _replace(self.accepted_path, entries)
            _replace(self.applied_path, "")
        return bodies


def requeue(journal: EventJournal, sqs: Any, queue_url: str) -> int:
    """Put every pending body back on the queue (at start, before chalice local accepts anything new)."""
    bodies = journal.compact()
    for body in bodies:
        # One at a time: a body may be up to 200 KB, and ten of them would overrun a batch call's limit.
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    if bodies:
        log.info("replayed %d accepted message(s) not applied before the last stop", len(bodies))
    return len(bodies)


def _lines(path: Path, parse: Any) -> Iterable[Any]:
    """Parsed lines; a line cut short by a crash mid-write is skipped (its request was never answered)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    for line in raw.splitlines():
        try:
            yield parse(line)
        except ValueError:
            log.warning("journal %s: skipping a torn line (%d bytes)", path.name, len(line))


def _replace(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

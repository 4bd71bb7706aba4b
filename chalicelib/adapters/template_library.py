"""The templates in force and where they are kept: the shipped files (version 0), overridden by the latest
saved version, each with its status (active, paused or deleted). Versions and status changes are immutable
records in the ContentStore (`template#<name>`, `template-status#<name>`), so a deleted template keeps its
versions and the record of who paused or deleted it and when. Nurture chooses only among `choosable`
templates; the marketing API reads them all. The status lifecycle is declared here as data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from chalicelib.adapters.dynamo import ContentStore
from chalicelib.adapters.templates import ParsedTemplate, TemplateRenderer, TemplateStatus
from chalicelib.errors import Conflict, InvalidContent

log = logging.getLogger(__name__)

TEMPLATE_PREFIX = "template#"
STATUS_PREFIX = "template-status#"

ACTIVE, PAUSED, DELETED = TemplateStatus.ACTIVE, TemplateStatus.PAUSED, TemplateStatus.DELETED
# (from, to) -> what the change is called. Deleting retires a template for good: its name stays with its
# history, so a later template with that name would blur what was sent under it.
TRANSITIONS: dict[tuple[TemplateStatus, TemplateStatus], str] = {
    (ACTIVE, PAUSED): "pause",
    (PAUSED, ACTIVE): "resume",
    (ACTIVE, DELETED): "delete",
    (PAUSED, DELETED): "delete",
}


class IllegalStatusChange(Conflict):
    """A status change the lifecycle does not allow, with the template's status and the change asked."""

    def __init__(self, name: str, current: TemplateStatus, wanted: TemplateStatus) -> None:
        if current is DELETED:
            message = (
                f"template {name!r} was deleted; a deleted template keeps its versions for audit but "
                "cannot be changed, resumed or deleted again; save the text under a new name to use it"
            )
        else:
            message = f"template {name!r} is {current.value} and cannot become {wanted.value}"
        super().__init__(message, details={"status": current.value, "requested": wanted.value})
        self.current, self.wanted = current, wanted


@dataclass(frozen=True, slots=True)
class StatusRecord:
    status: TemplateStatus
    version: int  # of the status record: a change names the one it replaces, so racing changes conflict
    author: str | None
    at: datetime | None


UNSET = StatusRecord(ACTIVE, 0, None, None)


def template_key(name: str) -> str:
    return f"{TEMPLATE_PREFIX}{name}"


def status_key(name: str) -> str:
    return f"{STATUS_PREFIX}{name}"


def status_change(name: str, current: TemplateStatus, wanted: TemplateStatus) -> str | None:
    """What changing `current` to `wanted` is called; None when it is already so (nothing to do)."""
    if current is wanted and current is not DELETED:
        return None
    change = TRANSITIONS.get((current, wanted))
    if change is None:
        raise IllegalStatusChange(name, current, wanted)
    return change


def read_status(content: ContentStore, name: str) -> StatusRecord:
    latest = content.latest(status_key(name))
    if latest is None:
        return UNSET
    return StatusRecord(_status(latest.body), latest.version, latest.author, latest.created_at)


def status_history(content: ContentStore, name: str) -> list[StatusRecord]:
    """Every status change, newest first."""
    versions = content.versions(status_key(name))
    return [StatusRecord(_status(v.body), v.version, v.author, v.created_at) for v in versions]


def write_status(
    content: ContentStore, name: str, status: TemplateStatus, author: str, at: datetime, *, replaces: int
) -> int:
    """Record a new status; ConcurrentUpdate when another change landed after version `replaces`."""
    return content.save(status_key(name), status.value, author, at, expected_latest=replaces)


def load_templates_in_force(
    shipped: Mapping[str, ParsedTemplate], content: ContentStore, renderer: TemplateRenderer
) -> dict[str, ParsedTemplate]:
    """Shipped templates overridden by their latest saved version, each with its status."""
    templates = dict(shipped)
    for key in content.keys(TEMPLATE_PREFIX):
        saved = content.latest(key)
        if saved is not None:
            name = key.removeprefix(TEMPLATE_PREFIX)
            try:
                templates[name] = renderer.parse(name, saved.body, version=saved.version)
            except InvalidContent as error:
                # A saved version that no longer passes (e.g. the sandbox was tightened) must not stop every
                # send: keep the shipped default (or leave the name out) and say so loudly.
                log.error("saved template %s v%s fails validation, not used: %s", name, saved.version, error)
    for key in content.keys(STATUS_PREFIX):
        name = key.removeprefix(STATUS_PREFIX)
        if name in templates:
            status = read_status(content, name).status
            if status is not ACTIVE:
                templates[name] = replace(templates[name], status=status)
    return templates


def choosable(templates: Mapping[str, ParsedTemplate]) -> dict[str, ParsedTemplate]:
    """The templates nurture may choose from: neither paused nor deleted."""
    return {name: t for name, t in templates.items() if t.status is ACTIVE}


def _status(body: str) -> TemplateStatus:
    try:
        return TemplateStatus(body.strip())
    except ValueError:
        # Only this module writes these records; an unreadable one must not revive a retired template.
        log.error("template status record %r is not a status; treated as paused", body[:40])
        return PAUSED

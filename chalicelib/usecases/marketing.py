"""Marketing use cases: read, save and list versions of templates and of the rules, checked before storing.

Templates and rules are immutable versions in the ContentStore (`template#<name>`, `rules#default`); the files
shipped with a deployment are version 0 and a saved version overrides them. A save goes through the very
checks a send relies on (the sandboxed renderer, `parse_rules`, the rules' topics), so nothing saved here can
break a send; a refused save answers 422 with every problem and where it is (a template line and field, a
rules field and its line); a save of the text in force stores nothing. A template can be paused, resumed and
deleted (retired, keeping its versions); template_library.py keeps the status and its lifecycle.
After a save this process forgets its cached templates or rules at once; other processes reload within
wiring's cache period. Rules text is read and checked by rules_text.py, which the offline lint uses too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from chalicelib.adapters.dynamo import ContentStore, ContentVersion
from chalicelib.adapters.mail import OutgoingEmail
from chalicelib.adapters.template_checks import normalise
from chalicelib.adapters.template_library import (
    DELETED,
    IllegalStatusChange,
    read_status,
    status_change,
    status_history,
    template_key,
    write_status,
)
from chalicelib.adapters.templates import ParsedTemplate, TemplateRenderer, TemplateStatus
from chalicelib.domain.catalogue import TemplateMeta
from chalicelib.domain.prospect import Prospect
from chalicelib.errors import ConcurrentUpdate, MalformedInput, NotFound, TooLarge
from chalicelib.ingest.headers import header
from chalicelib.usecases.rules_text import check_rules_text, rules_error

RULES_KEY = "rules#default"
SHIPPED_AUTHOR = "shipped"

Compose = Callable[[Prospect, ParsedTemplate], OutgoingEmail]  # the send path's own composer


def meta_dict(meta: TemplateMeta) -> dict[str, Any]:
    return {
        "name": meta.name,
        "version": meta.version,
        "subject": meta.subject,
        "topics": list(meta.topics),
        "stages": [stage.value for stage in meta.stages],
        "personas": list(meta.personas),
        "priority": meta.priority,
        "cooldown_days": meta.cooldown_days,
        "recycle_reasons": list(meta.recycle_reasons),
    }


def listing_dict(template: ParsedTemplate) -> dict[str, Any]:
    return {**meta_dict(template.meta), "status": template.status.value}


# --- the use cases --------------------------------------------------------------------------------------


class MarketingService:
    def __init__(
        self,
        *,
        content: ContentStore,
        renderer: TemplateRenderer,
        shipped_templates: Callable[[], dict[str, ParsedTemplate]],
        templates_in_force: Callable[[], dict[str, ParsedTemplate]],
        default_rules_text: Callable[[], str],
        forget_templates: Callable[[], None],
        forget_rules: Callable[[], None],
        compose: Compose,
        clock: Callable[[], datetime],
    ) -> None:
        self._content = content
        self._renderer = renderer
        self._shipped = shipped_templates
        self._in_force = templates_in_force
        self._default_rules_text = default_rules_text
        self._forget_templates = forget_templates
        self._forget_rules = forget_rules
        self._compose = compose
        self._clock = clock

    # --- templates ---------------------------------------------------------------------------------------

    def templates(self, status: str | None = None) -> list[dict[str, Any]]:
        """The templates in force with their status: active and paused ones, or those with `status`."""
        wanted = {_status(status)} if status else {TemplateStatus.ACTIVE, TemplateStatus.PAUSED}
        return [listing_dict(t) for t in self._in_force().values() if t.status in wanted]

    def template(self, name: str, version: int | None = None) -> dict[str, Any]:
        """The template in force (or one `version` of it): its source, front matter, version and status."""
        status = read_status(self._content, name).status
        if version is None:
            templates = self._in_force()
            if name not in templates:
                raise NotFound(f"no template named {name!r}; known: {', '.join(sorted(templates))}")
            parsed = templates[name]
            saved = parsed.meta.version
            record = self._content.get(template_key(name), saved) if saved else None
            return _template_answer(parsed.meta, parsed.source, record, in_force=True, status=status)
        if version == 0:
            shipped = self._shipped().get(name)
            if shipped is None:
                raise NotFound(f"template {name!r} has no shipped version 0")
            in_force = self._content.latest(template_key(name)) is None
            return _template_answer(shipped.meta, shipped.source, None, in_force=in_force, status=status)
        record = self._content.get(template_key(name), version)
        if record is None:
            raise NotFound(f"template {name!r} has no version {version}")
        meta = self._renderer.parse(name, record.body, version=version).meta
        latest = self._content.latest(template_key(name))
        in_force = latest is not None and latest.version == version
        return _template_answer(meta, record.body, record, in_force=in_force, status=status)

    def template_versions(self, name: str) -> dict[str, Any]:
        """Every version, newest first, and every status change (who paused or deleted it, when)."""
        saved = self._content.versions(template_key(name))
        shipped = name in self._shipped()
        if not saved and not shipped:
            raise NotFound(f"no template named {name!r}")
        versions = [
            {"version": v.version, "author": v.author, "saved_at": v.created_at.isoformat()} for v in saved
        ]
        if shipped:
            versions.append({"version": 0, "author": SHIPPED_AUTHOR, "saved_at": None})
        changes = [
            {"status": c.status.value, "author": c.author, "at": c.at.isoformat() if c.at else None}
            for c in status_history(self._content, name)
        ]
        return {
            "name": name,
            "in_force": versions[0]["version"],
            "status": changes[0]["status"] if changes else TemplateStatus.ACTIVE.value,
            "versions": versions,
            "status_changes": changes,
        }

    def save_template(
        self, name: str, source: str, author: str, *, expected_version: int | None = None
    ) -> dict[str, Any]:
        """Check `source` as a send would use it; store it as the next version, which is then in force.

        Raises InvalidContent (every problem, each with its line) and stores nothing when it is refused;
        ConcurrentUpdate when `expected_version` is no longer the latest; IllegalStatusChange for a deleted
        template. The text in force saved again stores nothing and answers its version, `unchanged`.
        """
        status = read_status(self._content, name).status
        if status is DELETED:
            raise IllegalStatusChange(name, status, status)
        parsed = self._renderer.parse(name, source, topics=self._topics())
        current = self._current_source(name)
        # A stale If-Match is refused even when the text matches: the editor's base is not what is in force.
        stale = expected_version is not None and expected_version != (current[0] if current else 0)
        if current is not None and not stale and normalise(current[1]) == parsed.source:
            version, saved_at, unchanged = current[0], None, True
        else:
            now = self._clock()
            with _stale_edit(f"template {name!r}", expected_version):
                version = self._content.save(
                    template_key(name), parsed.source, author, now, expected_latest=expected_version
                )
            self._forget_templates()
            saved_at, unchanged = now.isoformat(), False
        meta = replace(parsed.meta, version=version)
        return {
            "name": name,
            "version": version,
            "unchanged": unchanged,
            "status": status.value,
            "author": author,
            "saved_at": saved_at,
            "meta": meta_dict(meta),
        }

    def set_template_status(self, name: str, wanted: str, author: str) -> dict[str, Any]:
        """Pause, resume or delete a template: nurture never chooses a paused or deleted one. NotFound for
        an unknown name, IllegalStatusChange (409) when the lifecycle does not allow it."""
        status = _status(wanted)
        if self._current_source(name) is None:
            raise NotFound(f"no template named {name!r}")
        current = read_status(self._content, name)
        change = status_change(name, current.status, status)
        if change is None:
            return {"name": name, "status": status.value, "unchanged": True}
        now = self._clock()
        with _stale_edit(f"the status of template {name!r}", current.version):
            write_status(self._content, name, status, author, now, replaces=current.version)
        self._forget_templates()
        return {
            "name": name,
            "status": status.value,
            "unchanged": False,
            "changed_by": author,
            "at": now.isoformat(),
        }

    def preview_saved(self, name: str, prospect: Prospect) -> dict[str, Any]:
        """What the template in force (active or paused) would send to `prospect` now."""
        templates = self._in_force()
        if name not in templates:
            raise NotFound(f"no template named {name!r}; known: {', '.join(sorted(templates))}")
        parsed = templates[name]
        email = self._compose(prospect, parsed)
        return {
            "template": name,
            "version": parsed.meta.version,
            "status": parsed.status.value,
            "to": email.to,
            "from": email.sender,
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
            "headers": email.headers,
        }

    def _current_source(self, name: str) -> tuple[int, str] | None:
        """The version in force and its text, read from the store (not a cache another process may hold)."""
        latest = self._content.latest(template_key(name))
        if latest is not None:
            return latest.version, latest.body
        shipped = self._shipped().get(name)
        return (0, shipped.source) if shipped is not None else None

    def _topics(self) -> frozenset[str]:
        """The topic vocabulary of the rules in force: a template topic outside it never matches."""
        record = self._content.latest(RULES_KEY)
        parsed, _ = check_rules_text(record.body if record is not None else self._default_rules_text())
        if parsed is None:  # stored rules that no longer pass: the shipped ones are what is in force
            parsed, _ = check_rules_text(self._default_rules_text())
        return frozenset(topic.topic for topic in parsed.topics) if parsed is not None else frozenset()

    def preview_draft(self, name: str, source: str, prospect: Prospect) -> dict[str, Any]:
        """What an unsaved `source` would send to `prospect`, through the send path's composer; nothing is
        stored. Refused like a save (InvalidContent with every line) when the draft could not be saved."""
        parsed = self._renderer.parse(name, source, topics=self._topics())
        email = self._compose(prospect, parsed)
        return {
            "template": name,
            "version": None,
            "draft": True,
            "to": email.to,
            "from": email.sender,
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
            "headers": {**email.headers, "X-Leadloop-Template": f"{name}@draft"},
        }

    # --- rules -------------------------------------------------------------------------------------------

    def rules(self, version: int | None = None) -> dict[str, Any]:
        """The rules in force (or one `version`): the text as written and the checked document."""
        if version == 0:
            record = None
        elif version is None:
            record = self._content.latest(RULES_KEY)
        else:
            record = self._content.get(RULES_KEY, version)
            if record is None:
                raise NotFound(f"the rules have no version {version}")
        source = record.body if record is not None else self._default_rules_text()
        parsed, problems = check_rules_text(source)  # stored JSON is space-indented, so YAML reads it
        if parsed is None:
            raise rules_error(problems)  # only if a stored document no longer passes today's checks
        number = record.version if record is not None else 0
        latest = record if version is None else self._content.latest(RULES_KEY)
        return {
            "version": number,
            "in_force": (latest.version if latest is not None else 0) == number,
            "author": record.author if record is not None else SHIPPED_AUTHOR,
            "saved_at": record.created_at.isoformat() if record is not None else None,
            "source": source,
            "rules": {**parsed.model_dump(mode="json"), "version": number},
        }

    def rules_versions(self) -> dict[str, Any]:
        saved = self._content.versions(RULES_KEY)
        versions = [
            {"version": v.version, "author": v.author, "saved_at": v.created_at.isoformat()} for v in saved
        ]
        versions.append({"version": 0, "author": SHIPPED_AUTHOR, "saved_at": None})
        return {"in_force": versions[0]["version"], "versions": versions}

    def save_rules(
        self, text: str, author: str, *, as_json: bool = False, expected_version: int | None = None
    ) -> dict[str, Any]:
        """Check a whole rules document and store it as the next version; every score from then on
        records that version. Raises InvalidContent (field-level problems, with lines) and stores nothing
        when it is refused."""
        parsed, problems = check_rules_text(text, as_json=as_json)
        if parsed is None:
            raise rules_error(problems)
        if as_json:
            # Stored as the loader reads it (YAML): JSON indented with spaces is YAML, tabs are not.
            text = json.dumps(json.loads(text), indent=2)
        now = self._clock()
        with _stale_edit("the rules", expected_version):
            version = self._content.save(RULES_KEY, text, author, now, expected_latest=expected_version)
        self._forget_rules()
        return {
            "version": version,
            "author": author,
            "saved_at": now.isoformat(),
            "rules": {**parsed.model_dump(mode="json"), "version": version},
        }


def _template_answer(
    meta: TemplateMeta, source: str, record: ContentVersion | None, *, in_force: bool, status: TemplateStatus
) -> dict[str, Any]:
    return {
        "name": meta.name,
        "version": meta.version,
        "in_force": in_force,
        "status": status.value,
        "origin": "saved" if meta.version else SHIPPED_AUTHOR,
        "author": record.author if record is not None else SHIPPED_AUTHOR,
        "saved_at": record.created_at.isoformat() if record is not None else None,
        "meta": meta_dict(meta),
        "source": source,
    }


def _status(value: str) -> TemplateStatus:
    try:
        return TemplateStatus(value)
    except ValueError:
        known = ", ".join(status.value for status in TemplateStatus)
        raise MalformedInput(f"status must be one of {known}, got {value!r}") from None


# --- reading request bodies -----------------------------------------------------------------------------


@contextmanager
def _stale_edit(what: str, expected: int | None) -> Iterator[None]:
    """A lost save names what the editor changed, never its storage key (`template#...`)."""
    try:
        yield
    except ConcurrentUpdate:
        edited = "" if expected is None else f" after version {expected}"
        raise ConcurrentUpdate(
            f"{what} was saved by someone else{edited}; reload it and apply your change again"
        ) from None


def body_text(raw: bytes | None, *, limit: int) -> str:
    """A request body as UTF-8 text; 400 when empty or not UTF-8."""
    if not raw or not raw.strip():
        raise MalformedInput("the request needs a body")
    if len(raw) > limit:
        raise TooLarge(f"the body is larger than {limit // 1024} KB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("the body must be UTF-8 text") from None


def is_json_request(headers: Mapping[str, str]) -> bool:
    content_type = header(headers, "Content-Type") or ""
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def expected_version(headers: Mapping[str, str]) -> int | None:
    """The version an editor changed, from `If-Match: "3"` (optional): a later save in between is a 409."""
    value = header(headers, "If-Match")
    if value is None or not value.strip() or value.strip() == "*":
        return None
    cleaned = value.strip().removeprefix("W/").strip('"')
    if not cleaned.isdigit():
        raise MalformedInput(f'If-Match must be a version number such as "3", got {value!r}')
    return int(cleaned)

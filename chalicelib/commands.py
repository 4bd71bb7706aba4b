"""Typed commands from sales and the CRM, parsed once at the edge: Accept, Recycle, Disqualify, Opportunity,
Won, Lost and Reassign.

Every route and webhook that issues a command turns its body into one of these models with `parse_command`,
so there is one validation and one set of limits (declared in `domain.lifecycle`, which the domain's own
checks use too). Unknown fields are refused, never ignored; `null` means "not given". Who issued a command
is never part of it: the caller passes the authenticated principal (or the signed CRM's actor) alongside.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.domain.lifecycle import (
    MAX_AMOUNT,
    MAX_NOTE_CHARS,
    MAX_OWNER_CHARS,
    MAX_REASON_CHARS,
    MAX_REVISIT_DAYS,
    RecycleReason,
)
from chalicelib.errors import MalformedInput

Note = Field(default=None, min_length=1, max_length=MAX_NOTE_CHARS)
Amount = Field(default=None, ge=0, le=MAX_AMOUNT, strict=True, allow_inf_nan=False)


class BaseCommand(BaseModel):
    """What every command shares: strict JSON-ish types, no unknown fields, and an optional note."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)
    action: ClassVar[str]

    note: str | None = Note

    def properties(self) -> dict[str, Any]:
        """The command as the plain properties of the event that carries it (JSON types only)."""
        return self.model_dump(mode="json", exclude_none=True)


class Accept(BaseCommand):
    action = "accept"
    owner: str | None = Field(default=None, min_length=1, max_length=MAX_OWNER_CHARS)


class Recycle(BaseCommand):
    action = "recycle"
    # Enums are matched by value from JSON, so strict mode must not demand an enum instance.
    reason: RecycleReason = Field(strict=False)
    revisit_in_days: int | None = Field(default=None, ge=0, le=MAX_REVISIT_DAYS)


class Disqualify(BaseCommand):
    action = "disqualify"
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)
    # The lead works for a competitor (as is a reason starting "competitor"): the rules learn its company's
    # domain (chalicelib.domain.competitors).
    competitor: bool | None = None


class Opportunity(BaseCommand):
    action = "opportunity"
    amount: float | None = Amount


class Won(BaseCommand):
    action = "won"
    amount: float | None = Amount


class Lost(BaseCommand):
    action = "lost"
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class Reassign(BaseCommand):
    action = "reassign"
    owner: str = Field(min_length=1, max_length=MAX_OWNER_CHARS)


Command = Accept | Recycle | Disqualify | Opportunity | Won | Lost | Reassign

COMMANDS: dict[str, type[BaseCommand]] = {
    model.action: model for model in (Accept, Recycle, Disqualify, Opportunity, Won, Lost, Reassign)
}
# The lifecycle actions of POST /leads/{ref}/{action} and the CRM webhooks; reassign has its own route.
SALES_ACTIONS: tuple[str, ...] = ("accept", "recycle", "disqualify", "opportunity", "won", "lost")


def parse_command(action: str, body: dict[str, Any], *, where: str = "") -> Command:
    """`body` as the command `action` names. Raises MalformedInput (400) naming each offending field (prefixed
    with `where`, e.g. "events[0]") and what it allows; `details` lists the problems one by one."""
    model = COMMANDS.get(action)
    if model is None:
        raise MalformedInput(
            f"{_at(where, 'action')}unknown action {action!r}; one of: {', '.join(COMMANDS)}"
        )
    if not isinstance(body, dict):
        raise MalformedInput(f"{_at(where, '')}{action} needs a JSON object")
    given = {key: value for key, value in body.items() if value is not None}
    try:
        command = model.model_validate(given)
    except ValidationError as error:
        problems = [_problem(model, item, where) for item in error.errors()]
        raise MalformedInput("; ".join(problems), details=problems) from None
    return command  # type: ignore[return-value]  # COMMANDS holds only the members of Command


def _at(where: str, field: str) -> str:
    path = ".".join(part for part in (where, field) if part)
    return f"{path}: " if path else ""


def _problem(model: type[BaseCommand], item: Any, where: str) -> str:
    field = ".".join(str(part) for part in item["loc"])
    kind = item["type"]
    if kind == "extra_forbidden" and field == "actor":
        text = "not accepted: the actor is always the authenticated API key; use 'note' to add context"
    elif kind == "extra_forbidden":
        text = f"unknown field; {model.action} takes: {', '.join(model.model_fields) or 'no fields'}"
    elif kind == "missing":
        text = "required" + _allowed(model, field, "; one of: ")
    elif kind == "enum":
        text = "must be" + _allowed(model, field, " one of: ")
    else:
        text = str(item["msg"])
    return f"{_at(where, field)}{text}"


def _allowed(model: type[BaseCommand], field: str, lead_in: str) -> str:
    info = model.model_fields.get(field)
    kind = info.annotation if info is not None else None
    if isinstance(kind, type) and issubclass(kind, Enum):
        return lead_in + ", ".join(str(member.value) for member in kind)
    return ""

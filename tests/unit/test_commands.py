"""Typed sales and CRM commands: each command valid and invalid, the limits shared with the domain, unknown
fields and a body-supplied actor refused with a message naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from chalicelib.commands import (
    COMMANDS,
    SALES_ACTIONS,
    Accept,
    Disqualify,
    Lost,
    Opportunity,
    Reassign,
    Recycle,
    Won,
    parse_command,
)
from chalicelib.domain.decisions import InvalidCommand
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import (
    MAX_AMOUNT,
    MAX_OWNER_CHARS,
    MAX_REVISIT_DAYS,
    RECYCLE_REASONS,
    State,
    Trigger,
)
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.rules import parse_rules
from chalicelib.domain.sales_actions import apply_command
from chalicelib.errors import MalformedInput
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES = parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))


@pytest.mark.parametrize(
    ("action", "body", "expected"),
    [
        ("accept", {}, Accept()),
        ("accept", {"owner": " sam@x.example ", "note": "hi"}, Accept(owner="sam@x.example", note="hi")),
        ("accept", {"owner": None, "note": None}, Accept()),  # null means not given
        ("recycle", {"reason": "bad_timing"}, Recycle(reason="bad_timing")),  # type: ignore[arg-type]
        (
            "recycle",
            {"reason": "no_budget", "note": "FY27", "revisit_in_days": MAX_REVISIT_DAYS},
            Recycle(reason="no_budget", note="FY27", revisit_in_days=MAX_REVISIT_DAYS),  # type: ignore[arg-type]
        ),
        ("recycle", {"reason": "other", "revisit_in_days": 0}, Recycle(reason="other", revisit_in_days=0)),  # type: ignore[arg-type]
        ("disqualify", {"reason": "student"}, Disqualify(reason="student")),
        ("opportunity", {}, Opportunity()),
        ("opportunity", {"amount": 0}, Opportunity(amount=0.0)),
        ("won", {"amount": 12000.5}, Won(amount=12000.5)),
        ("lost", {"reason": "went with a competitor"}, Lost(reason="went with a competitor")),
        ("reassign", {"owner": "zoe", "note": "holiday"}, Reassign(owner="zoe", note="holiday")),
    ],
)  # fmt: skip
def test_valid_bodies_become_their_command(action: str, body: dict[str, Any], expected: object) -> None:
    assert parse_command(action, body) == expected


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("accept", {"owner": ""}, r"^owner: String should have at least 1 character"),
        ("accept", {"owner": "x" * 255}, r"^owner: String should have at most 254 characters"),
        ("accept", {"owner": 42}, r"^owner: Input should be a valid string"),
        ("accept", {"note": "x" * 1001}, r"^note: String should have at most 1000 characters"),
        ("accept", {"amount": 5}, r"^amount: unknown field; accept takes: note, owner"),
        ("recycle", {}, r"^reason: required; one of: not_ready, no_budget, .*, other$"),
        ("recycle", {"reason": "too_busy"}, r"^reason: must be one of: not_ready, no_budget"),
        ("recycle", {"reason": "other", "revisit_in_days": 731}, r"^revisit_in_days: .*or equal to 730"),
        ("recycle", {"reason": "other", "revisit_in_days": 3650}, r"^revisit_in_days: .*or equal to 730"),
        ("recycle", {"reason": "other", "revisit_in_days": -1}, r"^revisit_in_days: .*or equal to 0"),
        ("recycle", {"reason": "other", "revisit_in_days": 1.5}, r"^revisit_in_days: .*valid integer"),
        ("recycle", {"reason": "other", "revisit_in_days": "60"}, r"^revisit_in_days: .*valid integer"),
        ("recycle", {"reason": "other", "revisit_in_days": True}, r"^revisit_in_days: .*valid integer"),
        ("disqualify", {}, r"^reason: required$"),
        ("disqualify", {"reason": "  "}, r"^reason: String should have at least 1 character"),
        ("disqualify", {"reason": "x" * 201}, r"^reason: String should have at most 200 characters"),
        ("opportunity", {"amount": -1}, r"^amount: Input should be greater than or equal to 0"),
        ("won", {"amount": 1e13}, r"^amount: Input should be less than or equal to"),
        ("won", {"amount": float("inf")}, r"^amount: Input should be a finite number"),
        ("won", {"amount": "12"}, r"^amount: Input should be a valid number"),
        ("won", {"amount": True}, r"^amount: Input should be a valid number"),
        ("lost", {}, r"^reason: required$"),
        ("reassign", {}, r"^owner: required$"),
        ("reassign", {"owner": " "}, r"^owner: String should have at least 1 character"),
        ("reassign", {"owner": "zoe", "team": "x"}, r"^team: unknown field; reassign takes: note, owner$"),
        ("promote", {}, r"^action: unknown action 'promote'; one of: accept, recycle"),
    ],
)  # fmt: skip
def test_invalid_bodies_are_refused_naming_the_field(action: str, body: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedInput, match=message) as caught:
        parse_command(action, body)
    assert caught.value.status == 400


@pytest.mark.parametrize("action", sorted(COMMANDS))
def test_an_actor_in_the_body_is_refused_for_every_command(action: str) -> None:
    with pytest.raises(MalformedInput, match=r"actor: not accepted: the actor is always the authenticated"):
        parse_command(action, {"actor": "the-ceo"})


def test_every_problem_is_reported_at_once_with_its_place() -> None:
    body = {"reason": "too_busy", "revisit_in_days": 3650, "actor": "x"}
    with pytest.raises(MalformedInput) as caught:
        parse_command("recycle", body, where="events[3]")
    problems = caught.value.details
    assert isinstance(problems, list) and len(problems) == 3
    assert all(str(problem).startswith("events[3].") for problem in problems)


def test_properties_are_plain_json_values_without_nulls() -> None:
    command = parse_command("recycle", {"reason": "bad_timing", "revisit_in_days": 60})
    assert command.properties() == {"reason": "bad_timing", "revisit_in_days": 60}
    assert type(command.properties()["reason"]) is str


def test_the_commands_cover_the_lifecycle_actions_and_its_reasons() -> None:
    assert set(SALES_ACTIONS) <= {trigger.value for trigger in Trigger}
    assert set(COMMANDS) == {*SALES_ACTIONS, "reassign"}
    assert RECYCLE_REASONS == tuple(member.value for member in Recycle.model_fields["reason"].annotation)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("recycle", {"reason": "bad_timing", "revisit_in_days": MAX_REVISIT_DAYS}),
        ("recycle", {"reason": "bad_timing", "revisit_in_days": MAX_REVISIT_DAYS + 1}),
        ("recycle", {"reason": "bad_timing", "revisit_in_days": 3650}),
        ("recycle", {"reason": "too_busy"}),
        ("won", {"amount": MAX_AMOUNT}),
        ("won", {"amount": MAX_AMOUNT * 10}),
        ("disqualify", {"reason": "student"}),
        ("lost", {}),
        ("reassign", {"owner": "x" * MAX_OWNER_CHARS}),
        ("reassign", {"owner": "x" * (MAX_OWNER_CHARS + 1)}),
    ],
)
def test_the_edge_and_the_domain_agree_on_what_is_valid(action: str, body: dict[str, Any]) -> None:
    """One set of limits: a command the edge accepts the domain applies, and one it refuses the domain refuses
    too (the domain's check guards events that reach it another way, such as a replayed dead letter)."""
    try:
        parse_command(action, body)
        edge_accepts = True
    except MalformedInput:
        edge_accepts = False
    state = {"reassign": State.ACCEPTED, "won": State.OPPORTUNITY}.get(action, State.ACCEPTED)
    p = Prospect(lead_id="L1", created_at=NOW, state=state)
    command = Event(
        message_id="api:1", kind=EventKind.SALES, at=NOW, source="sales-api", name=action, lead_id="L1",
        properties={**body, "actor": "dev-sales"},
    )  # fmt: skip
    try:
        apply_command(p, command, RULES)
        domain_accepts = True
    except InvalidCommand:
        domain_accepts = False
    assert edge_accepts == domain_accepts

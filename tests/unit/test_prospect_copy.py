"""copy_prospect: the shadow's working copy of a profile is equal to it and independent of it in every field.

The properties are checked by walking the dataclass fields (of the profile and of every record it holds), not
by naming them, so a field added later is covered: the fixture must give every field a value other than its
default (a test says which one it misses), and then no mutable object is shared, and changing anything in
the copy (any list, dict or record at any depth) leaves the original as it was.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import MISSING, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from chalicelib.domain.apply import apply_event
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.lifecycle import State, Trigger
from chalicelib.domain.prospect import (
    AccountLink,
    KeyMoment,
    OtherEvent,
    PageVisit,
    Prospect,
    Recycle,
    SentMessage,
    SlaTimer,
    Suppression,
    Touch,
    Transition,
)
from chalicelib.domain.prospect_copy import copy_prospect
from chalicelib.domain.prospect_document import prospect_from_doc, prospect_to_doc
from chalicelib.domain.reassess import reassess
from chalicelib.domain.rules import parse_rules
from chalicelib.domain.seen import SeenChunk, SeenWindow
from chalicelib.wiring import DEFAULT_RULES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
Path = tuple[Any, ...]


def rich_prospect() -> Prospect:
    """Every field of the profile and of each record it holds set to something other than its default."""
    at = NOW - timedelta(days=3)
    return Prospect(
        lead_id="L1",
        created_at=at,
        source="website",
        anonymous_ids=["anon-1", "anon-2"],
        user_id="u-1",
        email="ada@bigco.example",
        crm_ids=["crm-1"],
        traits={"company": "BigCo", "employees": 250, "trial": True, "arr": 1.5},
        engagement={"pricing_page": {739000: 5.0, 739001: 10.0}},
        interests={"pricing": {739001: 2.0}},
        state=State.NURTURING,
        owner="rep@leadloop.example",
        history=[
            Transition(at, State.SALES_READY, State.NURTURING, Trigger.RECYCLE, "rep", "not_ready", "call")
        ],
        suppression=Suppression("unsubscribed", at),
        messages=[
            SentMessage(
                "s-1",
                "welcome",
                2,
                at,
                "new lead",
                {"opened": 1},
                "claimed",
                2,
                "timeout",
                "pricing/decision",
                ["opened"],
            )
        ],  # fmt: skip
        key_moments=[KeyMoment(at, "hand_raise", "asked for a demo")],
        other_events=[OtherEvent(at, "video played", [("title", "Intro")])],
        pages=[PageVisit(at, "/pricing", "Pricing")],
        recycles=[Recycle("not_ready", at, "rep", "q3", at + timedelta(days=90), 2)],
        sla=SlaTimer(at, at + timedelta(hours=4), "escalated", "token", at, at),
        next_touch_at=at + timedelta(days=1),
        nurture_waiting="no template fits",
        seen=SeenWindow(
            {"00ff00ff00ff00ff": 490000, "0123456789abcdef": None},
            True,
            [SeenChunk("0011223344556677", 489990, 30, bytes(range(30)))],
            {"ffeeddccbbaa9988"},
        ),
        last_activity_at=at,
        amount=1200.0,
        rules_version=3,
        pending_hand_raise="demo",
        first_touch=Touch(at, "google", "cpc", "brand", "leadloop", "ad-1", "https://g.co", "/"),
        last_touch=Touch(at, "news", "email", "nov", "scoring", "cta", "https://n.example", "/blog"),
        accounts=[AccountLink("acme", at, {"name": "Acme", "employees": 40}, 739000)],
        trimmed={"pages": 3},
    )


def _default_of(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def fields_left_at_default(obj: Any, path: Path = ()) -> Iterator[Path]:
    """The path of every dataclass field (at any depth) whose value is still its default."""
    if is_dataclass(obj):
        for f in fields(obj):
            value = getattr(obj, f.name)
            default = _default_of(f)
            if default is not MISSING and value == default:
                yield (*path, f.name)
            yield from fields_left_at_default(value, (*path, f.name))
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from fields_left_at_default(item, (*path, i))
    elif isinstance(obj, dict):
        for key, item in obj.items():
            yield from fields_left_at_default(item, (*path, key))


def mutables(obj: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every mutable object reachable from `obj` (records, lists, dicts, sets), with its path."""
    if is_dataclass(obj):
        if not type(obj).__dataclass_params__.frozen:  # type: ignore[attr-defined]  # a frozen one may be shared
            yield path, obj
        for f in fields(obj):
            yield from mutables(getattr(obj, f.name), (*path, f.name))
    elif isinstance(obj, list):
        yield path, obj
        for i, item in enumerate(obj):
            yield from mutables(item, (*path, i))
    elif isinstance(obj, dict):
        yield path, obj
        for key, item in obj.items():
            yield from mutables(item, (*path, key))
    elif isinstance(obj, set):
        yield path, obj
    elif isinstance(obj, tuple):
        for i, item in enumerate(obj):
            yield from mutables(item, (*path, i))


def at_path(obj: Any, path: Path) -> Any:
    for step in path:
        obj = getattr(obj, step) if is_dataclass(obj) else obj[step]
    return obj


def mutations(obj: Any) -> Iterator[str]:
    """Change `obj` in each way it can be changed, one at a time; yields what was changed."""
    marker = object()
    if is_dataclass(obj):
        for f in fields(obj):
            before = getattr(obj, f.name)
            setattr(obj, f.name, marker)
            yield f"set .{f.name}"
            setattr(obj, f.name, before)
    elif isinstance(obj, list):
        obj.append(marker)
        yield "append"
        obj.pop()
        if obj:
            first = obj[0]
            obj[0] = marker
            yield "replace [0]"
            obj[0] = first
    elif isinstance(obj, dict):
        obj[marker] = marker
        yield "add a key"
        del obj[marker]
        if obj:
            key = next(iter(obj))
            value = obj[key]
            obj[key] = marker
            yield f"replace [{key!r}]"
            obj[key] = value
    elif isinstance(obj, set):
        obj.add(marker)
        yield "add"
        obj.discard(marker)


def test_the_fixture_sets_every_field_so_none_is_left_unchecked() -> None:
    # A field added to the profile or to one of its records must be given a value here (any but its default);
    # the tests below then check that copy_prospect copies it, and copies it apart.
    assert list(fields_left_at_default(rich_prospect())) == []


def test_the_copy_equals_the_original() -> None:
    p = rich_prospect()
    assert copy_prospect(p) == p


def test_the_copy_shares_no_mutable_object_with_the_original() -> None:
    p = rich_prospect()
    c = copy_prospect(p)
    originals = {id(obj): path for path, obj in mutables(p)}
    shared = [(path, originals[id(obj)]) for path, obj in mutables(c) if id(obj) in originals]
    assert shared == []


def test_changing_anything_in_the_copy_leaves_the_original_as_it_was() -> None:
    p = rich_prospect()
    snapshot = copy.deepcopy(p)
    c = copy_prospect(p)
    checked = 0
    for path, _ in list(mutables(c)):
        for change in mutations(at_path(c, path)):
            assert p == snapshot, f"{'.'.join(map(str, path))}: {change} in the copy changed the original"
            checked += 1
    assert checked > 100  # every list, dict and record, at every depth


def test_changing_the_original_leaves_the_copy_as_it_was() -> None:
    p = rich_prospect()
    c = copy_prospect(p)
    snapshot = copy.deepcopy(c)
    for path, _ in list(mutables(p)):
        for change in mutations(at_path(p, path)):
            assert c == snapshot, f"{'.'.join(map(str, path))}: {change} in the original changed the copy"


def test_a_stored_profile_and_one_the_domain_built_copy_as_deepcopy_does() -> None:
    rules = parse_rules(yaml.safe_load(DEFAULT_RULES.read_text()))
    p = Prospect(lead_id="L2", created_at=NOW, source="website")
    events = [
        Event(
            f"m{i}",
            EventKind.PAGE,
            NOW + timedelta(minutes=i),
            "website",
            anonymous_id="a-2",
            properties={"path": path, "title": path},
        )
        for i, path in enumerate(["/", "/pricing", "/docs", "/pricing"])
    ]
    events.append(
        Event("m9", EventKind.IDENTIFY, NOW + timedelta(minutes=9), "website", anonymous_id="a-2",
              email="bo@bigco.example", traits={"company": "BigCo", "employees": 900})
    )  # fmt: skip
    for event in events:
        apply_event(p, event, rules, NOW + timedelta(minutes=10))
    reassess(p, rules, NOW + timedelta(minutes=10))
    assert p.email and p.pages and p.engagement and p.seen  # a profile with something in it
    stored = prospect_from_doc(json.loads(json.dumps(prospect_to_doc(rich_prospect()))))
    for profile in (p, stored):
        assert copy_prospect(profile) == copy.deepcopy(profile)


@pytest.mark.parametrize("value", [["a", "list"], {"a": "dict"}])
def test_a_trait_value_that_is_not_plain_is_copied_apart_too(value: Any) -> None:
    # The bounds keep trait values plain; a profile stored before them might not be: still independent.
    p = rich_prospect()
    p.traits["odd"] = value
    p.accounts[0].traits["odd"] = copy.deepcopy(value)
    c = copy_prospect(p)
    assert c == p
    assert c.traits["odd"] is not p.traits["odd"]
    assert c.accounts[0].traits["odd"] is not p.accounts[0].traits["odd"]

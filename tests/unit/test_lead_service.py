"""The lead use cases over in-memory storage (no moto, no database): what a unit of work decides is saved
with it and done exactly once, one prospect's failure stays its own, merged ids forward, repeated clicks
count once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.memory import (
    InMemoryActivity,
    InMemoryCounters,
    InMemoryIdentities,
    InMemoryMarks,
    InMemoryProspects,
    as_stream_record,
)
from chalicelib.adapters.notify import Delivery
from chalicelib.domain.events import Event, EventKind
from chalicelib.domain.prospect import Prospect
from chalicelib.effects.dispatch import Dispatcher, perform_streamed
from chalicelib.effects.outbox import NotifyOwner, StartSlaClock
from chalicelib.errors import RecordRefused
from chalicelib.usecases.leads import LeadService
from chalicelib.usecases.ports import SeenChunks
from chalicelib.wiring import load_default_rules

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES = load_default_rules()


class Notifier:
    def __init__(self, fail_times: int = 0) -> None:
        self.sent: list[str] = []
        self.fail_times = fail_times

    def notify(self, summary: dict[str, Any], why: str, lead_url: str, at: datetime) -> list[Delivery]:
        if self.fail_times:
            self.fail_times -= 1
            raise ValueError("Header values may not contain linefeed or carriage return characters")
        self.sent.append(summary["id"])
        return [Delivery("outbox", True, "held")]


class Workflow:
    def __init__(self) -> None:
        self.started: set[str] = set()
        self.calls = 0

    def start(self, lead_id: str, run: int, accept_seconds: int, escalate_seconds: int) -> str:
        self.calls += 1
        self.started.add(f"{lead_id}-{run}")  # named per routing: a second start finds the first
        return f"sla-{lead_id}-{run}"

    def resolve(self, task_token: str, outcome: str) -> bool:
        return True


class Store:
    def __init__(
        self,
        notifier: Notifier | None = None,
        *,
        count_in_stream: bool = False,
        clock: Callable[[], datetime] = lambda: NOW,
        seen_chunks: SeenChunks | None = None,
    ) -> None:
        self.prospects = InMemoryProspects()
        self.identities = InMemoryIdentities()
        self.activity = InMemoryActivity()
        self.counters = InMemoryCounters()
        self.marks = InMemoryMarks()
        self.notifier = notifier or Notifier()
        self.workflow = Workflow()
        self.dispatcher = Dispatcher(
            activity=self.activity,
            counters=self.counters,
            ledger=self.marks,
            notifier=self.notifier,  # type: ignore[arg-type]
            workflow=self.workflow,  # type: ignore[arg-type]
            rules=lambda: RULES,
            lead_url=lambda lead_id: f"https://leads.example.test/leads/{lead_id}",
        )
        self.ids = iter(f"L{n:03d}" for n in range(1000))
        self.leads = LeadService(
            prospects=self.prospects,
            identities=self.identities,
            activity=self.activity,
            counters=self.counters,
            rules=lambda: RULES,
            effects=self.dispatcher,
            public_url="https://leads.example.test",
            clock=clock,
            new_id=lambda: next(self.ids),
            pause=lambda seconds: None,
            count_in_stream=count_in_stream,
            seen_chunks=seen_chunks,
        )

    def replay_stream(self) -> int:
        return perform_streamed(self.dispatcher, [as_stream_record(w) for w in self.prospects.writes])


def event(n: int, email: str, name: str = "", kind: EventKind = EventKind.IDENTIFY) -> Event:
    return Event(
        message_id=f"seg:{email}:{n}",
        kind=EventKind.TRACK if name else kind,
        at=NOW - timedelta(minutes=10 - n),
        source="website",
        name=name,
        anonymous_id=f"anon-{email}",
        email=email,
        traits={"title": "VP Engineering", "company": "BigCo"},
    )


def hand_raise(email: str) -> list[Event]:
    return [event(1, email), event(2, email, "Demo Requested")]


def test_a_routing_is_saved_with_its_effects_and_they_are_done_once() -> None:
    store = Store()

    store.leads.apply_events(hand_raise("ada@bigco.example"))

    routing = next(w for w in store.prospects.writes if any(isinstance(e, NotifyOwner) for e in w.effects))
    assert routing.prospect.state.value == "sales_ready"  # decided and stored in the same write
    assert any(isinstance(e, StartSlaClock) for e in routing.effects)
    assert store.notifier.sent == [routing.lead_id]
    assert store.counters.read("all")["entered:sales_ready"] == 1

    store.replay_stream()  # the stream hands every write over again: nothing happens twice
    assert store.notifier.sent == [routing.lead_id]
    assert store.counters.read("all")["entered:sales_ready"] == 1
    kinds = Counter(e.kind for e in store.activity.for_lead(routing.lead_id))
    assert kinds["notified"] == 1 and kinds["sla_started"] == 1


def test_an_effect_that_fails_after_the_write_is_done_by_the_stream_exactly_once() -> None:
    store = Store(Notifier(fail_times=1))

    store.leads.apply_events(hand_raise("ada@bigco.example"))
    assert store.notifier.sent == []  # the owner email raised right after the routing was saved

    assert store.replay_stream() >= 1
    store.replay_stream()

    (lead_id,) = store.prospects.ids()
    assert store.notifier.sent == [lead_id]
    assert store.counters.read("all")["routed:hand_raise"] == 1
    assert store.workflow.started == {f"{lead_id}-{len(store.leads.prospect(lead_id).history)}"}
    kinds = Counter(e.kind for e in store.activity.for_lead(lead_id))
    assert kinds["notified"] == 1 and kinds["assigned"] == 1 and kinds["transition"] == 2


class RefusingProspects(InMemoryProspects):
    """Storage that will never take one prospect (its record would pass DynamoDB's 400 KB)."""

    def save(self, prospect: Prospect, **kwargs: Any) -> int:
        if prospect.email == "poison@bigco.example":
            raise RecordRefused(
                "DynamoDB refuses this record: Item size has exceeded the maximum allowed size"
            )
        return super().save(prospect, **kwargs)


def test_one_prospect_that_cannot_be_written_does_not_stop_the_others() -> None:
    store = Store()
    store.prospects = RefusingProspects()
    store.leads._prospects = store.prospects  # type: ignore[assignment]

    outcome = store.leads.apply_events(hand_raise("poison@bigco.example") + hand_raise("ada@bigco.example"))

    assert outcome.written == 1
    (failed,) = outcome.failed
    assert not failed.retryable and {e.email for e in failed.events} == {"poison@bigco.example"}
    assert store.leads.prospect("ada@bigco.example").state.value == "sales_ready"


def test_a_merged_lead_id_still_finds_the_survivor() -> None:
    store = Store()
    store.leads.apply_events([Event("seg:p1", EventKind.PAGE, NOW, "website", anonymous_id="anon-x")])
    store.leads.apply_events([event(1, "ada@bigco.example")])
    (old,) = [lead for lead in store.prospects.ids() if store.leads.prospect(lead).email is None]

    joined = Event(
        "seg:i9", EventKind.IDENTIFY, NOW, "website", anonymous_id="anon-x", email="ada@bigco.example"
    )
    store.leads.apply_events([joined])

    survivor = store.leads.find("ada@bigco.example").lead_id
    assert store.prospects.get(old) is None
    assert store.leads.find(old).lead_id == survivor


@pytest.mark.parametrize("clicks", [1, 2, 5])
def test_a_link_clicked_again_within_the_window_counts_once(clicks: int) -> None:
    store = Store()
    store.leads.apply_events([event(1, "ada@bigco.example")])
    lead_id = store.leads.find("ada@bigco.example").lead_id
    link = {"u": "https://bigco.example/pricing", "t": ["pricing"], "l": lead_id, "m": "pricing-guide"}

    for _ in range(clicks):
        store.leads.record_click(link)

    moments = [m for m in store.leads.prospect(lead_id).key_moments if m.kind == "email_click"]
    assert len(moments) == 1
    assert store.counters.read("all")["template:pricing-guide:clicked"] == 1

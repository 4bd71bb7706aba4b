"""Nurture under faults: one poisoned prospect never stalls everyone else's email, and a touch is sent once
however sweeps overlap or crash (claim the touch, send, mark it sent)."""

from __future__ import annotations

import email
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.adapters.dynamo import ProspectRow
from chalicelib.adapters.templates import RenderContext, TemplateRenderer
from chalicelib.domain.prospect import Prospect, SentMessage
from chalicelib.domain.prospect_document import prospect_to_doc
from chalicelib.errors import InvalidContent, StorageUnavailable
from chalicelib.usecases.nurture import NurtureService
from tests.e2e.conftest import Loop
from tests.e2e.test_lead_loop import journey

POISON = "poison@bigco.example"


class Crash(BaseException):
    """The process dies here (a Lambda timeout, an OOM kill): nothing below it runs, nothing catches it."""


def nurtured(loop: Loop, *emails: str) -> dict[str, str]:
    """Known prospects who have not raised a hand (nurture emails them), by email -> lead id."""
    for address in emails:
        batch = journey(email=address, anon=f"anon-{address.split('@')[0]}")
        batch["batch"] = batch["batch"][:4]
        assert loop.track("/v1/batch", batch).status_code == 200
    loop.drain()
    leads = loop.sales("GET", "/leads?limit=100").json_body["leads"]
    return {lead["email"]: lead["id"] for lead in leads if lead["email"] in emails}


def edit(lead_id: str, change: Callable[[Prospect], None]) -> None:
    """Change a stored profile behind the API's back (a profile written before today's checks existed)."""
    stored = wiring.prospects().get(lead_id)
    assert stored is not None
    p = wiring.lead_service().prospect(lead_id)
    change(p)
    row = ProspectRow(lead_id, p.state.value, p.owner, 0.0, p.email, p.name, p.company, "")
    wiring.prospects().save(
        lead_id, prospect_to_doc(p), row, next_touch_at=p.next_touch_at, expected_version=stored.version
    )


def outbox(loop: Loop) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted(loop.outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, email.message.EmailMessage)
        found.append(message)
    return found


def recipients(loop: Loop) -> list[str]:
    return sorted(str(message["To"]) for message in outbox(loop))


def prospect(lead_id: str) -> Prospect:
    return wiring.lead_service().prospect(lead_id)


@pytest.fixture
def service() -> NurtureService:
    return wiring.nurture_service()


@pytest.fixture
def later(service: NurtureService, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[timedelta], None]]:
    """Move the scheduler's clock forward."""
    start = wiring.utc_now()

    def move(by: timedelta) -> None:
        monkeypatch.setattr(service, "_clock", lambda: start + by)

    yield move


# --- one prospect's failure is its own ----------------------------------------------------------------------


def test_a_poisoned_prospect_is_isolated_recorded_and_parked_while_everyone_else_is_sent(
    loop: Loop,
    service: NurtureService,
    later: Callable[[timedelta], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    leads = nurtured(loop, POISON, "bob@bigco.example", "cy@bigco.example")
    poisoned = leads[POISON]
    for lead_id in leads.values():
        loop.make_due(lead_id)

    def first_due(p: Prospect) -> None:
        p.next_touch_at = wiring.utc_now() - timedelta(hours=1)  # first in the due index

    edit(poisoned, first_due)
    # This prospect's email can never be rendered (the issue's case was a 31,000-`&` first name expanding
    # past the output limit; the profile bounds now cut such a name at 1,024 characters, so the failure is
    # injected here).
    real_render = TemplateRenderer.render

    def render(self: TemplateRenderer, template: Any, context: RenderContext) -> Any:
        if context.prospect.email == POISON:
            raise InvalidContent("rendered html would be longer than 200000 characters")
        return real_render(self, template, context)

    monkeypatch.setattr(TemplateRenderer, "render", render)

    counts = loop.sweep()
    assert (counts["sent"], counts["failed"]) == (2, 1)
    assert recipients(loop) == ["bob@bigco.example", "cy@bigco.example"]

    summary = loop.sales("GET", f"/leads/{poisoned}").json_body
    [attempt] = summary["messages"]  # the touch stays claimed: its retry sends this same message
    assert (attempt["status"], attempt["tries"]) == ("claimed", 1)
    assert "did not render" in attempt["error"] and "&&&" not in attempt["error"]  # why, without the data
    retry_at = datetime.fromisoformat(summary["next_touch_at"])
    assert retry_at > wiring.utc_now()  # rescheduled with a backoff, not due again on the next tick
    [failed] = [entry for entry in summary["activity"] if entry["kind"] == "email_failed"]
    assert failed["send_id"] == attempt["send_id"] and failed["error"] == attempt["error"]
    assert "&&&" not in str(summary["activity"])

    # The next sweep still reaches new due prospects; the poisoned one waits for its backoff.
    dan = nurtured(loop, "dan@bigco.example")["dan@bigco.example"]
    loop.make_due(dan)
    counts = loop.sweep()
    assert (counts["sent"], counts["failed"]) == (1, 0)
    assert "dan@bigco.example" in recipients(loop)

    # It keeps failing: after a few tries it is parked, with a reason a person can read.
    elapsed = timedelta()
    for _ in range(10):
        elapsed += timedelta(days=1)
        later(elapsed)
        service.send_due()
        if prospect(poisoned).next_touch_at is None:
            break
    p = prospect(poisoned)
    assert p.next_touch_at is None
    [touch] = p.messages  # one record of the failing touch, not one per try
    assert (touch.status, touch.tries) == ("failed", 4)
    [parked] = [k for k in p.key_moments if k.kind == "nurture_parked"]
    assert "failed" in parked.text and "&&&" not in parked.text
    assert service.choose(p, wiring.utc_now() + elapsed) is None
    assert recipients(loop) == ["bob@bigco.example", "cy@bigco.example", "dan@bigco.example"]


def test_a_stored_profile_that_cannot_be_read_does_not_stop_the_sweep(loop: Loop) -> None:
    leads = nurtured(loop, "bob@bigco.example", "cy@bigco.example")
    for lead_id in leads.values():
        loop.make_due(lead_id)
    broken = leads["bob@bigco.example"]
    stored = wiring.prospects().get(broken)
    assert stored is not None
    doc = {**stored.doc, "created": "not a time"}
    row = ProspectRow(broken, "nurturing", None, 0.0, "bob@bigco.example", "", "", "")
    wiring.prospects().save(
        broken, doc, row, next_touch_at=wiring.utc_now() - timedelta(hours=1), expected_version=stored.version
    )

    counts = loop.sweep()
    assert (counts["sent"], counts["failed"]) == (1, 1)
    assert recipients(loop) == ["cy@bigco.example"]


def test_the_issues_31000_ampersand_first_name_no_longer_stalls_nurture(loop: Loop) -> None:
    """The reproduction from the issue, through the tracking API: the name is cut to the trait bound when it
    is stored, so the email renders and goes out, and so do everyone else's."""
    leads = nurtured(loop, "amp@bigco.example", "bob@bigco.example")
    identify = {"type": "identify", "messageId": "amp-2", "userId": "user-anon-amp",
                "traits": {"email": "amp@bigco.example", "firstName": "&" * 31_000}}  # fmt: skip
    assert loop.track("/v1/identify", identify).status_code == 200
    loop.drain()
    for lead_id in leads.values():
        loop.make_due(lead_id)

    counts = loop.sweep()

    assert (counts["sent"], counts["failed"]) == (2, 0)
    assert recipients(loop) == ["amp@bigco.example", "bob@bigco.example"]
    assert len(str(prospect(leads["amp@bigco.example"]).traits["first_name"])) <= 1_024


# --- one touch, one email ----------------------------------------------------------------------------------


def test_two_overlapping_sweeps_send_one_email(loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    lead_id = nurtured(loop, "bob@bigco.example")["bob@bigco.example"]
    loop.make_due(lead_id)
    store = wiring.prospects()
    real_get = store.get
    overlapping: list[dict[str, int]] = []

    def get(lead: str, **kwargs: Any) -> Any:
        stored = real_get(lead, **kwargs)
        if not overlapping:
            # A second scheduler invocation reads the same due prospect and sends while this one holds
            # its (now stale) read.
            overlapping.append({})
            overlapping[0] = wiring.nurture_service().send_due()
        return stored

    monkeypatch.setattr(store, "get", get)
    first = loop.sweep()

    assert overlapping[0]["sent"] + first["sent"] == 1
    assert recipients(loop) == ["bob@bigco.example"]
    [message] = prospect(lead_id).messages
    assert message.status == "sent"


def crashed_after_claim(
    loop: Loop, service: NurtureService, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, SentMessage]:
    """A due lead whose touch was claimed, then the mailer crashed before sending: (lead id, the claim)."""
    lead_id = nurtured(loop, "bob@bigco.example")["bob@bigco.example"]
    loop.make_due(lead_id)
    mailer = service._mailer
    real_send = mailer.send
    crashes = [Crash()]

    def send(message: Any, at: datetime) -> str:
        if crashes:
            raise crashes.pop()
        return real_send(message, at)

    monkeypatch.setattr(mailer, "send", send)
    with pytest.raises(Crash):
        service.send_due()
    [claimed] = prospect(lead_id).messages
    return lead_id, claimed


def test_a_crash_between_claim_and_send_sends_the_claimed_email_once_after_the_lease(
    loop: Loop, service: NurtureService, later: Callable[[timedelta], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_id, claimed = crashed_after_claim(loop, service, monkeypatch)
    assert claimed.status == "claimed"
    assert recipients(loop) == []

    later(timedelta(minutes=2))  # the lease still holds: another sweep leaves the touch alone
    assert service.send_due()["sent"] == 0

    later(timedelta(minutes=30))
    assert service.send_due()["sent"] == 1
    [sent] = outbox(loop)
    assert sent["X-Leadloop-Send-Id"] == claimed.send_id
    [message] = prospect(lead_id).messages
    assert (message.send_id, message.status) == (claimed.send_id, "sent")

    later(timedelta(hours=2))
    assert service.send_due()["sent"] == 0
    assert len(outbox(loop)) == 1


def test_a_crash_after_sending_before_marking_does_not_send_twice(
    loop: Loop, service: NurtureService, later: Callable[[timedelta], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    lead_id = nurtured(loop, "bob@bigco.example")["bob@bigco.example"]
    loop.make_due(lead_id)
    mailer = service._mailer
    real_send = mailer.send

    def send_then_die(message: Any, at: datetime) -> str:
        real_send(message, at)
        raise Crash()

    monkeypatch.setattr(mailer, "send", send_then_die)
    with pytest.raises(Crash):
        service.send_due()
    monkeypatch.setattr(mailer, "send", real_send)
    assert len(outbox(loop)) == 1

    later(timedelta(minutes=30))
    service.send_due()
    [sent] = outbox(loop)  # the outbox knows this send_id: the retry does not make a second email
    [message] = prospect(lead_id).messages
    assert message.status == "sent" and sent["X-Leadloop-Send-Id"] == message.send_id


def test_a_mailer_that_fails_once_is_retried_with_the_same_message_and_others_go_on(
    loop: Loop, service: NurtureService, later: Callable[[timedelta], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    leads = nurtured(loop, "bob@bigco.example", "cy@bigco.example")
    for lead_id in leads.values():
        loop.make_due(lead_id)
    bob = leads["bob@bigco.example"]
    mailer = service._mailer
    real_send = mailer.send

    def send(message: Any, at: datetime) -> str:
        if message.to == "bob@bigco.example" and not getattr(send, "failed", False):
            send.failed = True  # type: ignore[attr-defined]
            raise StorageUnavailable("SES did not accept the email")
        return real_send(message, at)

    monkeypatch.setattr(mailer, "send", send)
    counts = service.send_due()
    assert (counts["sent"], counts["failed"]) == (1, 1)
    assert recipients(loop) == ["cy@bigco.example"]
    [claimed] = prospect(bob).messages
    assert (claimed.status, claimed.tries) == ("claimed", 1) and claimed.error

    later(timedelta(days=1))
    assert service.send_due()["sent"] == 1
    assert recipients(loop) == ["bob@bigco.example", "cy@bigco.example"]
    [message] = prospect(bob).messages
    assert (message.send_id, message.status, message.tries) == (claimed.send_id, "sent", 2)


def test_the_outbox_writes_one_file_per_send_id(tmp_path: Path) -> None:
    from chalicelib.adapters.mail import OutboxMailer, OutgoingEmail

    mailer = OutboxMailer(tmp_path)
    message = OutgoingEmail(
        "a@b.example", "me@c.example", "Hi", "<p>hi</p>", "hi", tags={"send_id": "L1-1-1"}
    )
    now = wiring.utc_now()
    first = mailer.send(message, now)
    second = mailer.send(message, now + timedelta(minutes=20))
    assert first == second
    assert len(list(tmp_path.glob("*.eml"))) == 1


def test_a_claimed_touch_whose_template_is_paused_before_its_retry_is_not_sent(
    loop: Loop, service: NurtureService, later: Callable[[timedelta], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.e2e.test_template_lifecycle import set_status

    lead_id, claimed = crashed_after_claim(loop, service, monkeypatch)
    assert set_status(loop, claimed.template, "paused").status_code == 200

    later(timedelta(minutes=30))  # the lease is over: the retry finds the template paused
    service.send_due()
    messages = prospect(lead_id).messages
    assert messages[0].status == "failed" and "paused" in (messages[0].error or "")
    assert all(m.template != claimed.template for m in messages if m.status == "sent")
    assert all(sent["X-Leadloop-Send-Id"] != claimed.send_id for sent in outbox(loop))

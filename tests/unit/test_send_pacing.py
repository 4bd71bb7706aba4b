"""Pacing the nurture send workers to SES's sending rate (adapters/mail.py, usecases/nurture_fanout.py).

Time is a fake clock advanced only by the pacer's own sleeps, so what is asserted is the spacing the pacer
asks for, never how long the test took."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.mail import OutgoingEmail, PacedMailer, SendPacer, SendThrottled, SesMailer
from chalicelib.usecases.nurture_fanout import UNPACED_SWEEP, TouchFanout, sweep_limit

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
EMAIL = OutgoingEmail(
    to="ann@bigco.example", sender="hi@acme.example", subject="s", html="<p>h</p>", text="h"
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sends: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


class Recording:
    def __init__(self, time: FakeTime, throttle_first: int = 0) -> None:
        self.time = time
        self.throttle = throttle_first

    def send(self, email: OutgoingEmail, at: datetime) -> str:
        if self.throttle:
            self.throttle -= 1
            raise SendThrottled("throttled")
        self.time.sends.append(self.time.now)
        return "ok"


def test_a_worker_sends_no_faster_than_its_share_of_the_ses_rate() -> None:
    time = FakeTime()
    mailer = PacedMailer(Recording(time), SendPacer(2.0, clock=time.clock, sleep=time.sleep))
    for _ in range(7):
        mailer.send(EMAIL, AT)
    gaps = [b - a for a, b in zip(time.sends, time.sends[1:], strict=False)]
    assert gaps == pytest.approx([0.5] * 6)  # 2 per second, the first one at once


def test_throttling_halves_the_pace_and_sends_that_go_through_win_it_back() -> None:
    time = FakeTime()
    pacer = SendPacer(4.0, clock=time.clock, sleep=time.sleep)
    mailer = PacedMailer(Recording(time, throttle_first=2), pacer)
    for _ in range(2):
        with pytest.raises(SendThrottled):
            mailer.send(EMAIL, AT)
    assert pacer.rate == pytest.approx(1.0)  # 4 -> 2 -> 1 per second
    for _ in range(40):
        mailer.send(EMAIL, AT)
    assert 3.9 < (pacer.rate or 0) <= 4.0  # recovered, never above the share


def test_throttling_never_stops_a_worker_altogether() -> None:
    time = FakeTime()
    pacer = SendPacer(16.0, clock=time.clock, sleep=time.sleep)
    for _ in range(50):
        pacer.slow_down()
    assert pacer.rate == pytest.approx(1.0)  # 1/16 of its share


def test_no_rate_means_no_pacing() -> None:
    time = FakeTime()
    mailer = PacedMailer(Recording(time), SendPacer(None, clock=time.clock, sleep=time.sleep))
    for _ in range(100):
        mailer.send(EMAIL, AT)
    assert time.now == 0.0


def test_ses_throttling_is_told_apart_from_other_refusals() -> None:
    class Ses:
        def __init__(self, code: str) -> None:
            self.code = code

        def send_raw_email(self, **_: object) -> dict[str, str]:
            raise ClientError(
                {"Error": {"Code": self.code, "Message": "Maximum sending rate exceeded."}}, "Send"
            )

    with pytest.raises(SendThrottled):
        SesMailer(Ses("Throttling"), None).send(EMAIL, AT)
    with pytest.raises(Exception) as refused:
        SesMailer(Ses("MessageRejected"), None).send(EMAIL, AT)
    assert not isinstance(refused.value, SendThrottled)


class Due:
    def __init__(self, leads: list[str]) -> None:
        self.leads = leads
        self.limits: list[int] = []

    def due(self, now: datetime, limit: int) -> list[str]:
        self.limits.append(limit)
        return self.leads[:limit]


class Queue:
    def __init__(self) -> None:
        self.enqueued: list[list[str]] = []

    def enqueue(self, lead_ids: list[str]) -> int:
        self.enqueued.append(list(lead_ids))
        return 1


def test_a_tick_enqueues_what_the_workers_can_send_before_the_next_tick() -> None:
    assert sweep_limit(14.0) == 840  # SES's usual starting rate: 14/s for 60 s
    assert sweep_limit(None) == UNPACED_SWEEP
    due = Due([f"L{n}" for n in range(2_000)])
    queue = Queue()
    counts = TouchFanout(due=due, queue=queue, send_rate=lambda: 14.0, clock=lambda: AT).sweep()
    assert counts["enqueued"] == 840 and due.limits == [840]
    assert queue.enqueued == [[f"L{n}" for n in range(840)]]  # earliest due first, each once


def test_a_tick_with_nobody_due_enqueues_nothing() -> None:
    queue = Queue()
    counts = TouchFanout(due=Due([]), queue=queue, send_rate=lambda: 14.0, clock=lambda: AT).sweep()
    assert counts["due"] == 0 and queue.enqueued == []

"""The nurture sweep fanned out: the scheduler finds who is due and enqueues them; send workers send.

One function sending one touch after another reaches 500 a minute: a 100,000-lead import would wait hours
for its first emails. Instead the sweep (`TouchFanout.sweep`, every minute) reads the due index, as much as
the send workers can send before the next tick at the SES rate, and puts those lead ids on the touches
queue; the send workers (`send_touches`, one SQS message of lead ids each, several at once) call
`NurtureService.touch` for each. Sending stays exactly-once-or-retried as before: `touch` claims a touch with
a version-checked write before sending and sends only what is due, so a lead enqueued twice (a redelivery,
or a sweep that ran before the last one's messages were taken) is sent once.

SES sets the pace (`adapters.mail.SendPacer`, around the workers' mailer): each worker sends at its share of
the account's rate. When SES throttles anyway, `touch` releases the try (nothing was sent; due again at once)
and `SendThrottled` reaches the queue handler, which fails that message and the rest of its batch: SQS
redelivers them after the visibility timeout, and the next sweep finds the leads still due if not.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from chalicelib.adapters.mail import SendThrottled
from chalicelib.domain.messaging import FAILED
from chalicelib.errors import StorageUnavailable
from chalicelib.usecases.nurture import NurtureService

log = logging.getLogger("leadloop.nurture")

TICK_SECONDS = 60  # the sweep's schedule (app.send_due_touches)
UNPACED_SWEEP = 5_000  # leads enqueued per tick when no SES rate is known (the local outbox)
MAX_SWEEP = 100_000  # one tick's enqueueing must end well within the scheduler's 60 s timeout


class DueIndex(Protocol):
    def due(self, now: datetime, limit: int) -> list[str]: ...


class TouchQueue(Protocol):
    def enqueue(self, lead_ids: Sequence[str]) -> int:
        """Returns the calls made; raises StorageUnavailable when the queue did not take them all."""
        ...


def sweep_limit(send_rate: float | None) -> int:
    """Leads one tick enqueues: what the workers can send at `send_rate` (per second, all workers) before
    the next tick. Enqueueing more would only have the next sweep read, and enqueue again, leads still
    waiting in the queue."""
    if send_rate is None:
        return UNPACED_SWEEP
    return max(1, min(MAX_SWEEP, math.ceil(send_rate * TICK_SECONDS)))


class TouchFanout:
    def __init__(
        self,
        *,
        due: DueIndex,
        queue: TouchQueue,
        send_rate: Callable[[], float | None],
        clock: Callable[[], datetime],
    ) -> None:
        """`send_rate`: emails per second all send workers together may send (SES's rate, or a setting)."""
        self._due = due
        self._queue = queue
        self._send_rate = send_rate
        self._clock = clock

    def sweep(self) -> dict[str, int]:
        """Enqueue each lead due now, once, earliest due first; reads grow with the number due."""
        limit = sweep_limit(self._send_rate())
        due = list(dict.fromkeys(self._due.due(self._clock(), limit)))
        calls = self._queue.enqueue(due) if due else 0
        return {"due": len(due), "enqueued": len(due), "limit": limit, "calls": calls}


def send_touches(nurture: NurtureService, lead_ids: Sequence[str]) -> dict[str, int]:
    """Send each lead's touch if it is due. One lead's failure is recorded on it and the rest go on;
    storage trouble and SES throttling (`SendThrottled`) stop the message, which SQS then redelivers."""
    counts = {"sent": 0, "skipped": 0, "failed": 0}
    evidence = nurture.evidence() if lead_ids else {}  # once per message, as the sweep does once per tick
    for lead_id in lead_ids:
        try:
            outcome = nurture.touch(lead_id, evidence)
        except (SendThrottled, StorageUnavailable):
            raise
        except Exception:
            # The edge of one prospect's unit of work: a bug must not stall the others in the message. A
            # claim it made is retried after its lease and counts as a try (so it is parked in the end).
            log.exception("nurture touch of %s failed; the others go on", lead_id)
            outcome = FAILED
        counts[outcome] += 1
    return counts

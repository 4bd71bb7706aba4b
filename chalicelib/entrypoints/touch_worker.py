"""The send workers' queue handler: an SQS batch of touches messages (due lead ids), each sent in turn.

A message fails alone (`batchItemFailures`) when storage fails under it; when SES throttles, that message and
the rest of the batch fail, so they wait out the visibility timeout (the back-off) before SQS redelivers
them. Leads a failed message already sent are skipped on redelivery (no longer due). A message that is not a
touches message is logged and dropped: the due index, not the queue, is the record of who is due, so the
next sweep enqueues its leads again if they are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from chalicelib.adapters.mail import SendThrottled
from chalicelib.adapters.queue import leads_from_body
from chalicelib.errors import StorageUnavailable
from chalicelib.usecases.nurture import NurtureService
from chalicelib.usecases.nurture_fanout import send_touches

log = logging.getLogger("leadloop.touches")


def handle_touch_batch(raw: Mapping[str, Any], nurture: NurtureService) -> dict[str, Any]:
    records = list(raw.get("Records", []))
    failures: list[str] = []
    totals = {"sent": 0, "skipped": 0, "failed": 0}
    for index, record in enumerate(records):
        message_id = record["messageId"]
        try:
            lead_ids = leads_from_body(record.get("body", ""))
        except ValueError as error:
            log.error("dropping touches message %s: %s", message_id, error)
            continue
        try:
            counts = send_touches(nurture, lead_ids)
        except SendThrottled:
            left = [r["messageId"] for r in records[index:]]
            log.warning("SES throttled; %d message(s) come back after the visibility timeout", len(left))
            failures.extend(left)
            break
        except StorageUnavailable as error:
            log.warning("touches message %s failed (%s); SQS redelivers it", message_id, error)
            failures.append(message_id)
            continue
        for outcome, n in counts.items():
            totals[outcome] += n
    if totals["sent"] or totals["failed"]:
        log.info("send worker: %s", json.dumps(totals))
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}

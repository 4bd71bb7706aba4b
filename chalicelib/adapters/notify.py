"""Sales notifications: the routed lead's summary, to the outbox folder, to its owner by email, and when
configured to a Slack-compatible incoming webhook and to generic HTTPS webhooks signed with HMAC-SHA256.

The summary is emailed only to a configured sales address: an owner on a team of the assignment rules (the
summary's `owner_team`, set by `domain.summary`) or one of `sales_addresses`. Any other owner (one a CRM
named, or sales typed) is refused, and the refusal is a delivery like any other: it shows on the lead.

Each delivery is tried a few times with backoff; a delivery that still fails is reported back to the
caller (which records it on the lead's activity), never swallowed.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from chalicelib.adapters.mail import Mailer, OutgoingEmail
from chalicelib.errors import LeadloopError

Post = Callable[[str, bytes, dict[str, str]], int]


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - configured https URLs only
        return int(response.status)


REFUSED_OWNER = (
    "refused: the owner is not a team member (only addresses on a team of the assignment rules, "
    "or configured sales addresses, are sent a lead's summary)"
)


@dataclass(frozen=True)
class Delivery:
    channel: str
    ok: bool
    detail: str


def console_url(lead_url: str) -> str:
    """The lead's page in the console (what a person opens), from its API URL `<public url>/leads/<id>`."""
    base, found, lead_id = lead_url.rpartition("/leads/")
    return f"{base}/console/leads/{lead_id}" if found else lead_url


def slack_text(summary: dict[str, Any], why: str, lead_url: str) -> str:
    identity = summary["identity"]
    who = identity.get("name") or identity.get("email") or summary["id"]
    company = f" at {identity['company']}" if identity.get("company") else ""
    interests = ", ".join(item["topic"] for item in summary.get("interests", [])[:3]) or "none yet"
    scores = summary["scores"]
    # Plain words for the salesperson, the points beside them (the rule id where a line has no text).
    top = "; ".join(
        f"{line.get('text') or line['rule']} ({line['points']:+g})" for line in scores["breakdown"][:5]
    )
    return (
        f"*New sales-ready lead: {who}{company}*\nWhy now: {why}\n"
        f"Score: fit {scores['fit']:g}, engagement {scores['engagement']:g} ({top})\n"
        f"Interests: {interests}\n<{console_url(lead_url)}|Open the lead in the console>"
    )


class SalesNotifier:
    def __init__(
        self,
        outbox: Path,
        *,
        slack_url: str | None = None,
        webhook_urls: Sequence[str] = (),
        webhook_secret: str = "",
        post: Post = http_post,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        mailer: Mailer | None = None,
        sender: str = "",
        sales_addresses: Sequence[str] = (),
    ) -> None:
        self._mailer = mailer
        self._sender = sender
        self._sales_addresses = frozenset(address.strip().casefold() for address in sales_addresses)
        self._outbox = outbox
        self._slack_url = slack_url
        self._webhook_urls = tuple(webhook_urls)
        self._secret = webhook_secret
        self._post = post
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    def notify(self, summary: dict[str, Any], why: str, lead_url: str, at: datetime) -> list[Delivery]:
        payload = {
            "type": "lead.routed",
            "at": at.isoformat(),
            "why": why,
            "lead_url": lead_url,
            "console_url": console_url(lead_url),  # for a person; lead_url is the API's JSON summary
            "lead": summary,
        }
        body = json.dumps(payload, default=str, indent=2).encode()
        deliveries = [self._to_outbox(summary["id"], body, at)]
        if self._slack_url:
            text = slack_text(summary, why, lead_url)
            deliveries.append(
                self._deliver("slack", self._slack_url, json.dumps({"text": text}).encode(), {})
            )
        owner = str(summary.get("owner") or "")
        if self._mailer is not None and "@" in owner:
            if self._may_mail(owner, summary):
                deliveries.append(self._email_owner(owner, summary, why, lead_url, at))
            else:
                deliveries.append(Delivery("owner_email", False, REFUSED_OWNER))
        for url in self._webhook_urls:
            timestamp = str(int(at.timestamp()))
            mac = hmac.new(self._secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
            headers = {"X-Leadloop-Signature": f"t={timestamp},v1={mac}"}
            deliveries.append(self._deliver("webhook", url, body, headers))
        return deliveries

    def _may_mail(self, owner: str, summary: dict[str, Any]) -> bool:
        return bool(summary.get("owner_team")) or owner.strip().casefold() in self._sales_addresses

    def _email_owner(
        self, owner: str, summary: dict[str, Any], why: str, lead_url: str, at: datetime
    ) -> Delivery:
        """The owner hears by email too, with the same summary sales reads in Slack."""
        text = slack_text(summary, why, lead_url).replace("*", "")
        identity = summary["identity"]
        who = identity.get("name") or identity.get("email") or summary["id"]
        message = OutgoingEmail(
            to=owner,
            sender=self._sender,
            subject=f"New sales-ready lead for you: {who}",
            html=f"<pre>{html.escape(text)}</pre><p><a href=\"{html.escape(console_url(lead_url))}\">"
            "Open the lead in the console</a></p>",
            text=text,
            tags={"lead_id": summary["id"], "kind": "sales_notification"},
        )
        try:
            return Delivery("owner_email", True, self._mailer.send(message, at) if self._mailer else "")
        except LeadloopError as error:  # SES refused: visible on the lead, never a lost routing
            return Delivery("owner_email", False, error.message)

    def _to_outbox(self, lead_id: str, body: bytes, at: datetime) -> Delivery:
        folder = self._outbox / "notifications"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{at:%Y%m%dT%H%M%S%f}-{lead_id}.json"
        path.write_bytes(body)
        return Delivery("outbox", True, str(path))

    def _deliver(self, channel: str, url: str, body: bytes, headers: dict[str, str]) -> Delivery:
        headers = {"Content-Type": "application/json", **headers}
        problem = ""
        for attempt in range(self._attempts):
            try:
                status = self._post(url, body, headers)
                if 200 <= status < 300:
                    return Delivery(channel, True, f"HTTP {status}")
                problem = f"HTTP {status}"
            except OSError as error:  # URLError, timeouts, refused connections
                problem = type(error).__name__
            if attempt + 1 < self._attempts:
                self._sleep(self._backoff * 2**attempt)
        return Delivery(channel, False, f"failed after {self._attempts} attempts: {problem}")

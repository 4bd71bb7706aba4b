"""Outgoing email: Amazon SES when configured, otherwise `.eml` files in an outbox folder a person can open.

Both transports receive the same fully built MIME message (subject, html and plain-text parts, the RFC 8058
List-Unsubscribe headers, Leadloop's own ids in X- headers), so what lands in the outbox is what SES sends.

Leadloop's ids (`tags`: lead_id, send_id, template) travel with every message so that each provider's event
webhook can be tied back to the prospect and to the template: always as generic `X-Leadloop-*` headers, as
SES message tags on the SES API, and, for a message handed to another provider's SMTP relay, in the header
that provider echoes back in its events (`relay_headers`: SendGrid custom args, Mailgun user-variables,
Postmark Metadata, SES message tags). docs/webhooks.md lists the mapping.

A nurture touch may be handed to the mailer twice with the same send id (a sweep that died after sending
but before marking the touch sent is retried after its lease). The outbox names each file by its send id and
writes it once, so a retry makes no second email. SES cannot deduplicate: a crash after SES accepted the
message and before the touch was marked sent leaves a window in which the retry sends it again (narrow: the
mark is the next write, and the retry waits for the claim's lease).

SES limits how fast an account sends (its maximum send rate, per second). `SendPacer` spaces one worker's
sends so that all the concurrent send workers together stay under it, and slows down when SES answers
`Throttling` anyway (another sender shares the account); `SesMailer` raises `SendThrottled` then, which says
that nothing was sent and the same message may be sent again later.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StorageUnavailable

RELAYS = ("sendgrid", "mailgun", "postmark", "ses")
# SES accepts only ASCII letters, digits, "_" and "-" in a message tag's name or value (at most 256).
SES_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
FILE_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# What SES (v1 and v2) answers when a sending rate or the daily quota is exceeded: nothing was sent.
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException"})


class SendThrottled(StorageUnavailable):
    """SES refused the message for the account's sending rate or daily quota: it was not sent, and may be
    sent again (same send id) after a back-off."""

    code = "throttled"


def leadloop_headers(tags: Mapping[str, str]) -> dict[str, str]:
    """`{"lead_id": "L1", "send_id": "S1"}` -> `{"X-Leadloop-Lead-Id": "L1", "X-Leadloop-Send-Id": "S1"}`:
    readable in any mail client and in any provider's raw-message view."""
    return {"X-Leadloop-" + "-".join(part.capitalize() for part in key.split("_")): value
            for key, value in tags.items()}  # fmt: skip


def relay_headers(relay: str, tags: Mapping[str, str]) -> dict[str, str]:
    """The header through which `relay`'s SMTP service attaches `tags` to the message, so that its event
    webhooks carry them back (where Leadloop's ingest reads them)."""
    if not tags:
        return {}
    if relay == "sendgrid":  # arrive as top-level keys of every event ("unique_args" is SMTP's custom_args)
        return {"X-SMTPAPI": json.dumps({"unique_args": dict(tags)}, separators=(",", ":"))}
    if relay == "mailgun":  # arrive as event-data."user-variables"
        return {"X-Mailgun-Variables": json.dumps(dict(tags), separators=(",", ":"))}
    if relay == "postmark":  # arrive as "Metadata"
        return {f"X-PM-Metadata-{key}": value for key, value in tags.items()}
    if relay == "ses":  # arrive as mail.tags
        return {"X-SES-MESSAGE-TAGS": ", ".join(f"{key}={ses_tag(value)}" for key, value in tags.items())}
    raise ValueError(f"unknown relay {relay!r}; known: {', '.join(RELAYS)}")


def ses_tag(value: str) -> str:
    return SES_TAG_UNSAFE.sub("_", value)[:256]


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    sender: str
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # echoed back by the provider's event webhooks

    def mime(self, at: datetime, *, relay: str | None = None) -> EmailMessage:
        """The message as sent; `relay` names the provider whose SMTP service will carry it (its id header
        is added)."""
        # Long URL headers (List-Unsubscribe) must stay plain: folding would RFC 2047-encode them.
        message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
        message["From"] = self.sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = format_datetime(at)
        message["Message-ID"] = make_msgid(domain="leadloop.local")
        extra = leadloop_headers(self.tags) | (relay_headers(relay, self.tags) if relay else {})
        given = {name.lower() for name in self.headers}
        for name, value in {
            **self.headers,
            **{k: v for k, v in extra.items() if k.lower() not in given},
        }.items():
            message[name] = value
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


class Mailer(Protocol):
    def send(self, email: OutgoingEmail, at: datetime) -> str:
        """Hand the message over; the answer identifies it. Idempotent per `tags["send_id"]` where the
        transport allows it."""
        ...


class OutboxMailer:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def send(self, email: OutgoingEmail, at: datetime) -> str:
        """Write `<send id>.eml` once: the same send id again returns the file already there."""
        self._directory.mkdir(parents=True, exist_ok=True)
        send_id = email.tags.get("send_id") or f"{at:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
        path = self._directory / f"{FILE_UNSAFE.sub('_', send_id)}.eml"
        if path.exists():
            return str(path)
        # Written aside, then linked into place: a reader never sees half a file, a crash mid-write leaves
        # no file to block the retry, and of two concurrent senders exactly one link succeeds.
        draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        draft.write_bytes(bytes(email.mime(at)))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
        return str(path)


class SesMailer:
    def __init__(self, client: Any, configuration_set: str | None) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, email: OutgoingEmail, at: datetime) -> str:
        request: dict[str, Any] = {
            "RawMessage": {"Data": bytes(email.mime(at))},
            "Tags": [{"Name": ses_tag(key), "Value": ses_tag(value)} for key, value in email.tags.items()],
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            return str(self._client.send_raw_email(**request)["MessageId"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in THROTTLING_CODES:
                raise SendThrottled("SES throttled the send (sending rate or daily quota)") from error
            raise StorageUnavailable("SES did not accept the email") from error
        except BotoCoreError as error:
            raise StorageUnavailable("SES did not accept the email") from error


def ses_max_send_rate(client: Any) -> float | None:
    """The account's maximum send rate (emails per second) from GetSendQuota; None when SES cannot say
    (no permission, an outage): the caller falls back to its setting."""
    try:
        rate = float(client.get_send_quota()["MaxSendRate"])
    except (BotoCoreError, ClientError, KeyError, TypeError, ValueError):
        return None
    return rate if rate > 0 else None


MIN_RATE_SHARE = 1 / 16  # how far throttling may slow a worker below its share, before it recovers


class SendPacer:
    """Spaces one worker's sends to `rate` per second (its share of the account's SES rate).

    `wait()` before each send sleeps until the next send is allowed; `slow_down()` after SES throttled halves
    the pace (down to 1/16 of the share), and each send that went through wins back a tenth of what is
    missing. Thread-safe: a worker's threads share one pacer. A `rate` of None means no pacing (the local
    outbox)."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._share = rate
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    @property
    def rate(self) -> float | None:
        return self._rate

    def wait(self) -> None:
        if self._rate is None:
            return
        with self._lock:
            now = self._clock()
            at = max(now, self._next)
            self._next = at + 1.0 / self._rate
        if at > now:
            self._sleep(at - now)

    def sent(self) -> None:
        if self._rate is None or self._share is None:
            return
        with self._lock:
            self._rate = min(self._share, self._rate + (self._share - self._rate) / 10)

    def slow_down(self) -> None:
        if self._rate is None or self._share is None:
            return
        with self._lock:
            self._rate = max(self._share * MIN_RATE_SHARE, self._rate / 2)
            self._next = max(self._next, self._clock()) + 1.0 / self._rate


class PacedMailer:
    """A mailer whose sends are spaced by `pacer`; SES's throttling slows the pacer before it is raised."""

    def __init__(self, mailer: Mailer, pacer: SendPacer) -> None:
        self._mailer = mailer
        self.pacer = pacer

    def send(self, email: OutgoingEmail, at: datetime) -> str:
        self.pacer.wait()
        try:
            answer = self._mailer.send(email, at)
        except SendThrottled:
            self.pacer.slow_down()
            raise
        self.pacer.sent()
        return answer

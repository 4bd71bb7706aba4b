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
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
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
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable("SES did not accept the email") from error

"""Outgoing email: Amazon SES when configured, otherwise `.eml` files in an outbox folder a person can open.

Both transports receive the same fully built MIME message (subject, html and plain-text parts, the RFC 8058
List-Unsubscribe headers, Leadloop's own ids in X- headers), so what lands in the outbox is what SES sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StorageUnavailable


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    sender: str
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # echoed back by the provider's event webhooks

    def mime(self, at: datetime) -> EmailMessage:
        # Long URL headers (List-Unsubscribe) must stay plain: folding would RFC 2047-encode them.
        message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
        message["From"] = self.sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = format_datetime(at)
        message["Message-ID"] = make_msgid(domain="leadloop.local")
        for name, value in self.headers.items():
            message[name] = value
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


class Mailer(Protocol):
    def send(self, email: OutgoingEmail, at: datetime) -> str: ...


class OutboxMailer:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def send(self, email: OutgoingEmail, at: datetime) -> str:
        self._directory.mkdir(parents=True, exist_ok=True)
        send_id = email.tags.get("send_id", "message")
        path = self._directory / f"{at:%Y%m%dT%H%M%S}-{send_id}.eml"
        path.write_bytes(bytes(email.mime(at)))
        return str(path)


class SesMailer:
    def __init__(self, client: Any, configuration_set: str | None) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, email: OutgoingEmail, at: datetime) -> str:
        request: dict[str, Any] = {
            "RawMessage": {"Data": bytes(email.mime(at))},
            "Tags": [{"Name": key, "Value": value} for key, value in email.tags.items()],
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            return str(self._client.send_raw_email(**request)["MessageId"])
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable("SES did not accept the email") from error

"""Amazon SES events delivered by SNS: verifies the SNS message signature (SignatureVersion 1 = SHA1withRSA,
2 = SHA256withRSA, over SNS's canonical string) with the certificate at SigningCertURL — refused before any
fetch unless it is https on `sns.<region>.amazonaws.com[.cn]` — accepts only configured TopicArns, and turns
the SES event inside a Notification into a normalised email `Event` keyed by the SNS MessageId. Leadloop's
identity keys arrive as SES message tags (`mail.tags`). A SubscriptionConfirmation yields no event; the
caller confirms it by GETting `subscription_to_confirm(raw)`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import EmailEventName, Event, plausible_time
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest import json_numbers
from chalicelib.ingest.webhooks import (
    REPLAY_WINDOW,
    check_fresh,
    check_size,
    email_event,
    load_json,
    looks_machine_open,
    parse_iso,
)

PROVIDER = "ses"

# Given a SigningCertURL already checked to be on an SNS host, answers the certificate's PEM bytes.
FetchCertificate = Callable[[str], bytes]

# The keys SNS signs, in the order it signs them; a key absent from the message is left out.
SIGNED_KEYS: Mapping[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
HASHES: Mapping[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
CERT_PATH = re.compile(r"^/SimpleNotificationService-[A-Za-z0-9]+\.pem$")

# SES eventType (event publishing) or notificationType (identity notifications) -> Leadloop email event.
# Send, Rendering Failure and anything new are skipped.
EVENT_NAMES: Mapping[str, EmailEventName] = {
    "Delivery": EmailEventName.DELIVERED,
    "Open": EmailEventName.OPENED,
    "Click": EmailEventName.CLICKED,
    "Bounce": EmailEventName.BOUNCED,
    "Complaint": EmailEventName.COMPLAINED,
    "Subscription": EmailEventName.UNSUBSCRIBED,
    "DeliveryDelay": EmailEventName.DEFERRED,
    "Reject": EmailEventName.DROPPED,
}
# The SES object holding each event's details (and its timestamp).
DETAIL_KEYS: Mapping[str, str] = {
    "Delivery": "delivery",
    "Open": "open",
    "Click": "click",
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Subscription": "subscription",
    "DeliveryDelay": "deliveryDelay",
    "Reject": "reject",
}


def is_sns_certificate_url(url: str) -> bool:
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and parts.port is None
        and bool(SNS_HOST.match(parts.hostname or ""))
        and bool(CERT_PATH.match(parts.path))
        and not parts.query
        and not parts.username
    )


def verify(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    secrets: WebhookSecrets,
    now: datetime,
    fetch_certificate: FetchCertificate,
    max_age: timedelta = REPLAY_WINDOW,
) -> None:
    """`max_age` bounds how old the SNS Timestamp may be; widen it only for a topic whose delivery policy
    retries for longer than the default 5-minute window."""
    check_size(raw)
    if not secrets.ses_topic_arns:
        raise Unauthenticated("ses webhook is not configured")
    message = _envelope(raw)
    signed_keys = SIGNED_KEYS.get(str(message.get("Type")))
    if signed_keys is None:
        raise Unauthenticated(f"unknown SNS message Type {str(message.get('Type'))[:60]!r}")
    if message.get("TopicArn") not in secrets.ses_topic_arns:
        raise Unauthenticated(f"SNS TopicArn {str(message.get('TopicArn'))[:200]!r} is not an accepted topic")
    cert_url = str(message.get("SigningCertURL") or "")
    if not is_sns_certificate_url(cert_url):
        raise Unauthenticated(
            "SigningCertURL is not an https URL on an SNS host (sns.<region>.amazonaws.com)"
        )
    check_fresh(parse_iso_or_refuse(message.get("Timestamp")), now, window=max_age)
    algorithm = HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise Unauthenticated(
            f"unsupported SNS SignatureVersion {str(message.get('SignatureVersion'))[:10]!r}"
        )
    key = _public_key(fetch_certificate(cert_url), now)
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
        key.verify(signature, canonical_string(message, signed_keys), padding.PKCS1v15(), algorithm())
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unauthenticated("bad SNS message Signature") from None


def canonical_string(message: Mapping[str, Any], signed_keys: tuple[str, ...]) -> bytes:
    lines = [f"{key}\n{message[key]}\n" for key in signed_keys if message.get(key) is not None]
    return "".join(lines).encode()


def parse_iso_or_refuse(value: object) -> datetime:
    try:
        return parse_iso(value, "SNS Timestamp")
    except MalformedInput as error:
        raise Unauthenticated(error.message) from None


def _envelope(raw: bytes) -> dict[str, Any]:
    message = load_json(raw, PROVIDER)
    if not isinstance(message, dict):
        raise MalformedInput("ses webhook body must be an SNS message (a JSON object)")
    return message


def _public_key(pem: bytes, now: datetime) -> rsa.RSAPublicKey:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise Unauthenticated("SNS signing certificate could not be read") from None
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Unauthenticated("SNS signing certificate is not valid at the message time")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Unauthenticated("SNS signing certificate does not hold an RSA key")
    return key


def subscription_to_confirm(raw: bytes) -> str | None:
    """The SubscribeURL of a (verified) SubscriptionConfirmation, which the caller GETs; None otherwise."""
    message = _envelope(raw)
    if message.get("Type") != "SubscriptionConfirmation":
        return None
    url = str(message.get("SubscribeURL") or "")
    parts = urlsplit(url)
    # The caller will GET this URL: never let it point anywhere but SNS itself.
    if parts.scheme != "https" or not SNS_HOST.match(parts.hostname or "") or parts.port is not None:
        raise MalformedInput("SNS SubscribeURL is not an https URL on an SNS host")
    return url


def parse(raw: bytes, *, received_at: datetime) -> list[Event]:
    check_size(raw)
    message = _envelope(raw)
    if message.get("Type") != "Notification":
        return []
    message_id = message.get("MessageId")
    if not isinstance(message_id, str) or not message_id:
        raise MalformedInput("SNS notification has no MessageId")
    ses_event = _ses_event(message.get("Message"))
    kind = str(ses_event.get("eventType") or ses_event.get("notificationType"))
    name = EVENT_NAMES.get(kind)
    if name is None:
        return []
    mail: dict[str, Any] = ses_event["mail"] if isinstance(ses_event.get("mail"), dict) else {}
    detail = ses_event.get(DETAIL_KEYS[kind])
    detail = detail if isinstance(detail, dict) else {}
    stamp = detail.get("timestamp") or mail.get("timestamp")
    at = plausible_time(parse_iso(stamp, f"SES {kind} timestamp") if stamp else None, received_at)
    return [
        email_event(
            PROVIDER,
            message_id,
            name,
            at,
            email=_recipient(kind, detail, mail),
            identity=_tags(mail),
            **_details(name, detail),
        )
    ]


def _ses_event(text: object) -> dict[str, Any]:
    try:
        event = json_numbers.loads(text) if isinstance(text, str) else None
    except (json.JSONDecodeError, RecursionError):
        event = None
    if not isinstance(event, dict):
        raise MalformedInput("SNS notification Message is not an SES event (a JSON object)")
    return event


def _recipient(kind: str, detail: Mapping[str, Any], mail: Mapping[str, Any]) -> object:
    listed = {"Bounce": "bouncedRecipients", "Complaint": "complainedRecipients"}.get(kind)
    if listed and isinstance(detail.get(listed), list) and detail[listed]:
        first = detail[listed][0]
        return first.get("emailAddress") if isinstance(first, dict) else None
    destination = mail.get("destination")
    return destination[0] if isinstance(destination, list) and destination else None


def _tags(mail: Mapping[str, Any]) -> dict[str, Any]:
    # SES tags are lists of values; Leadloop sets one value per key.
    tags: dict[str, Any] = mail["tags"] if isinstance(mail.get("tags"), dict) else {}
    return {key: values[0] for key, values in tags.items() if isinstance(values, list) and values}


def _details(name: EmailEventName, detail: Mapping[str, Any]) -> dict[str, Any]:
    if name is EmailEventName.CLICKED:
        return {"url": detail.get("link")}
    if name is EmailEventName.OPENED:
        return {"machine_open": looks_machine_open(detail.get("userAgent"))}
    if name is EmailEventName.BOUNCED:
        return {"bounce": "hard" if detail.get("bounceType") == "Permanent" else "soft"}
    return {}


def verify_and_parse(
    raw: bytes,
    headers: Mapping[str, str],
    *,
    secrets: WebhookSecrets,
    now: datetime,
    fetch_certificate: FetchCertificate,
    max_age: timedelta = REPLAY_WINDOW,
) -> list[Event]:
    verify(raw, headers, secrets=secrets, now=now, fetch_certificate=fetch_certificate, max_age=max_age)
    return parse(raw, received_at=now)

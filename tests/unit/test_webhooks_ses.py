"""SES via SNS: every signed fixture (SignatureVersion 1 and 2) verifies with the injected certificate and
normalises; tampering, staleness, foreign certificate hosts and unknown topics are refused, the foreign host
before anything is fetched."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chalicelib.adapters.certificates import CachedCertificateFetcher
from chalicelib.config import WebhookSecrets
from chalicelib.errors import MalformedInput, Unauthenticated
from chalicelib.ingest import ses
from tests.conftest import FIXTURES

FIXTURE_DIR = FIXTURES / "webhooks" / "ses_sns"
KEYS = FIXTURES / "webhooks" / "_test_keys"
CERT = (KEYS / "sns_test_signing_cert.pem").read_bytes()
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
SECRETS = WebhookSecrets(ses_topic_arns=(TOPIC,))

# fixture -> (event name, extra properties, event time); None = no event
EXPECTED: dict[str, tuple[str, dict[str, object], str] | None] = {
    "notification_bounce_signed.json": ("bounced", {"bounce": "hard"}, "2024-05-01T12:30:41.669Z"),
    "notification_click_signed.json": (
        "clicked",
        {"url": "https://example.com/pricing"},
        "2024-05-01T12:41:00Z",
    ),
    "notification_complaint_signed.json": ("complained", {}, "2024-05-01T12:35:00Z"),
    "notification_delivery_signed.json": ("delivered", {}, "2024-05-01T12:30:41Z"),
    "notification_open_signed.json": ("opened", {"machine_open": False}, "2024-05-01T12:40:00Z"),
    "notification_send_signed.json": None,
    "subscription_confirmation_signed.json": None,
}


class Fetcher:
    def __init__(self, pem: bytes = CERT) -> None:
        self.pem = pem
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.pem


def _load(name: str) -> tuple[bytes, dict[str, str], datetime]:
    fixture = json.loads((FIXTURE_DIR / name).read_text())
    signed_at = datetime.fromisoformat(json.loads(fixture["body"])["Timestamp"])
    return fixture["body"].encode(), fixture["headers"], signed_at


def _resigned(message: dict[str, str], version: str = "2") -> bytes:
    """Sign `message` as SNS would, with the test key standing in for SNS's."""
    key = serialization.load_pem_private_key((KEYS / "sns_test_signing_key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    message = {**message, "SignatureVersion": version}
    algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
    canonical = ses.canonical_string(message, ses.SIGNED_KEYS[message["Type"]])
    message["Signature"] = base64.b64encode(key.sign(canonical, padding.PKCS1v15(), algorithm)).decode()
    return json.dumps(message).encode()


def _message(name: str, at: datetime, **changes: str) -> dict[str, str]:
    message = json.loads(_load(name)[0])
    message.update(Timestamp=at.isoformat().replace("+00:00", "Z"), **changes)
    return message


def _flip(raw: bytes, marker: bytes) -> bytes:
    index = raw.index(marker)
    return raw[:index] + bytes([raw[index] ^ 1]) + raw[index + 1 :]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_verifies_and_normalises(name: str) -> None:
    raw, headers, signed_at = _load(name)
    events = ses.verify_and_parse(raw, headers, secrets=SECRETS, now=signed_at, fetch_certificate=Fetcher())

    expected = EXPECTED[name]
    if expected is None:
        assert events == []
        return
    [event] = events
    event_name, extra, at = expected
    assert event.message_id == f"ses:{json.loads(raw)['MessageId']}"
    assert event.name == event_name
    assert event.lead_id == "L-42" and event.email == "lead@example.com"
    assert event.at == datetime.fromisoformat(at)
    assert dict(event.properties) == {"provider": "ses", **extra}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_changed_signed_byte_is_refused(name: str) -> None:
    raw, headers, signed_at = _load(name)
    marker = b"lead@example.com" if b"lead@example.com" in raw else b"To confirm"
    with pytest.raises(Unauthenticated, match="bad SNS message Signature"):
        ses.verify(_flip(raw, marker), headers, secrets=SECRETS, now=signed_at, fetch_certificate=Fetcher())


@pytest.mark.parametrize("version", ["1", "2"])
def test_resigned_now_verifies_with_either_signature_version(version: str, now: datetime) -> None:
    raw = _resigned(_message("notification_delivery_signed.json", now), version)
    [event] = ses.verify_and_parse(raw, {}, secrets=SECRETS, now=now, fetch_certificate=Fetcher())
    assert event.name == "delivered"


def test_a_stale_message_is_refused(now: datetime) -> None:
    raw = _resigned(_message("notification_delivery_signed.json", now - timedelta(minutes=6)))
    with pytest.raises(Unauthenticated, match="replay window"):
        ses.verify(raw, {}, secrets=SECRETS, now=now, fetch_certificate=Fetcher())


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example.com/SimpleNotificationService-abc.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/other/path.pem",
    ],
)
def test_a_certificate_url_off_sns_is_refused_before_fetching(url: str, now: datetime) -> None:
    raw = _resigned(_message("notification_delivery_signed.json", now, SigningCertURL=url))
    fetcher = Fetcher()
    with pytest.raises(Unauthenticated, match="SigningCertURL"):
        ses.verify(raw, {}, secrets=SECRETS, now=now, fetch_certificate=fetcher)
    assert fetcher.urls == []


def test_china_region_certificate_host_is_accepted(now: datetime) -> None:
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem"
    raw = _resigned(_message("notification_delivery_signed.json", now, SigningCertURL=url))
    fetcher = Fetcher()
    ses.verify(raw, {}, secrets=SECRETS, now=now, fetch_certificate=fetcher)
    assert fetcher.urls == [url]


def test_an_unknown_topic_is_refused_before_fetching(now: datetime) -> None:
    other = "arn:aws:sns:us-east-1:999999999999:someone-elses-topic"
    raw = _resigned(_message("notification_delivery_signed.json", now, TopicArn=other))
    fetcher = Fetcher()
    with pytest.raises(Unauthenticated, match="not an accepted topic"):
        ses.verify(raw, {}, secrets=SECRETS, now=now, fetch_certificate=fetcher)
    assert fetcher.urls == []


def test_a_certificate_that_did_not_sign_is_refused(now: datetime) -> None:
    real_aws_cert = (
        FIXTURES / "public-vectors" / "sns_cert_7ff5318490ec183fbaddaa2a969abfda.pem"
    ).read_bytes()
    raw = _resigned(_message("notification_delivery_signed.json", datetime(2022, 7, 1, tzinfo=UTC)))
    with pytest.raises(Unauthenticated, match="bad SNS message Signature"):
        ses.verify(
            raw,
            {},
            secrets=SECRETS,
            now=datetime(2022, 7, 1, tzinfo=UTC),
            fetch_certificate=Fetcher(real_aws_cert),
        )


def test_unconfigured_topics_refuse(now: datetime) -> None:
    raw = _resigned(_message("notification_delivery_signed.json", now))
    with pytest.raises(Unauthenticated, match="ses webhook is not configured"):
        ses.verify(raw, {}, secrets=WebhookSecrets(), now=now, fetch_certificate=Fetcher())


def test_subscription_confirmation_gives_the_url_to_get() -> None:
    raw, _, _ = _load("subscription_confirmation_signed.json")
    assert ses.subscription_to_confirm(raw) == json.loads(raw)["SubscribeURL"]
    assert ses.subscription_to_confirm(_load("notification_open_signed.json")[0]) is None


def test_a_subscribe_url_off_sns_is_never_returned(now: datetime) -> None:
    message = _message(
        "subscription_confirmation_signed.json", now, SubscribeURL="https://evil.example.com/x"
    )
    with pytest.raises(MalformedInput, match="SubscribeURL"):
        ses.subscription_to_confirm(json.dumps(message).encode())


def test_soft_bounce_and_recipient_fallback(now: datetime) -> None:
    ses_event = {
        "eventType": "Bounce",
        "mail": {"timestamp": "2024-05-01T12:30:40Z", "destination": ["Someone@Example.com"], "tags": {}},
        "bounce": {"bounceType": "Transient", "bouncedRecipients": [{"emailAddress": "Someone@Example.com"}]},
    }
    raw = json.dumps({"Type": "Notification", "MessageId": "m-1", "Message": json.dumps(ses_event)}).encode()
    [event] = ses.parse(raw, received_at=now)
    assert (event.properties["bounce"], event.email, event.lead_id) == ("soft", "someone@example.com", None)


def test_a_message_that_is_not_an_ses_event_is_malformed(now: datetime) -> None:
    raw = json.dumps({"Type": "Notification", "MessageId": "m-1", "Message": "Hello world"}).encode()
    with pytest.raises(MalformedInput, match="not an SES event"):
        ses.parse(raw, received_at=now)


def test_cached_fetcher_fetches_each_certificate_once_and_only_from_sns() -> None:
    calls: list[str] = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        return CERT

    fetcher = CachedCertificateFetcher(fetch)
    url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"
    assert fetcher(url) == CERT and fetcher(url) == CERT
    assert calls == [url]
    with pytest.raises(Unauthenticated):
        fetcher("https://evil.example.com/SimpleNotificationService-abc.pem")
    assert calls == [url]


def test_fixture_files_are_all_covered() -> None:
    assert {p.name for p in Path(FIXTURE_DIR).glob("*.json")} == set(EXPECTED)

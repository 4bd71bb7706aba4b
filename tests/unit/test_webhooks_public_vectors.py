"""Vectors published in the providers' own SDK test suites (and real AWS-signed SNS messages) verify with
the same code that checks live traffic; a wrong key or a changed byte does not."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.config import WebhookSecrets
from chalicelib.errors import Unauthenticated
from chalicelib.ingest import hubspot, mailgun, resend, sendgrid, ses
from tests.conftest import FIXTURES

VECTORS = FIXTURES / "public-vectors"
SNS_VECTORS = sorted(p.name for p in VECTORS.glob("sns_real_*.json"))
REAL_SNS_CERT = (VECTORS / "sns_cert_7ff5318490ec183fbaddaa2a969abfda.pem").read_bytes()


def _vector(name: str) -> dict[str, object]:
    return json.loads((VECTORS / name).read_text())


def test_sendgrid_vector_verifies_with_its_key_only() -> None:
    vector = _vector("sendgrid_public_vector.json")
    raw = (VECTORS / "sendgrid_public_vector.body.bin").read_bytes()
    assert raw == base64.b64decode(str(vector["raw_body_b64"]))
    headers = dict(vector["headers"])  # type: ignore[call-overload]
    at = datetime.fromtimestamp(int(str(vector["timestamp"])), UTC)
    sendgrid.verify(
        raw, headers, secrets=WebhookSecrets(sendgrid_public_key_b64=str(vector["public_key"])), now=at
    )
    other = WebhookSecrets(sendgrid_public_key_b64=str(vector["other_public_key"]))
    with pytest.raises(Unauthenticated, match="bad signature"):
        sendgrid.verify(raw, headers, secrets=other, now=at)


def test_mailgun_vector_verifies_and_its_bad_token_does_not() -> None:
    vector = _vector("mailgun_public_vector.json")
    block = {
        "timestamp": str(vector["timestamp"]),
        "token": vector["token"],
        "signature": vector["signature"],
    }
    at = datetime.fromtimestamp(int(str(vector["timestamp"])), UTC)
    secrets = WebhookSecrets(mailgun_signing_key=str(vector["signing_key"]))
    raw = json.dumps({"signature": block, "event-data": {}}).encode()
    mailgun.verify(raw, {}, secrets=secrets, now=at, remember_token=lambda token, at: True)
    forged = json.dumps({"signature": {**block, "token": vector["bad_token"]}, "event-data": {}}).encode()
    with pytest.raises(Unauthenticated, match="bad signature"):
        mailgun.verify(forged, {}, secrets=secrets, now=at, remember_token=lambda token, at: True)


def test_svix_vector_verifies_and_a_changed_payload_does_not() -> None:
    vector = _vector("svix_public_vector.json")
    headers = {name: str(vector[name]) for name in ("svix-id", "svix-timestamp", "svix-signature")}
    at = datetime.fromtimestamp(int(headers["svix-timestamp"]), UTC)
    secrets = WebhookSecrets(resend_secret=str(vector["secret"]))
    raw = str(vector["payload"]).encode()
    resend.verify(raw, headers, secrets=secrets, now=at)
    with pytest.raises(Unauthenticated):
        resend.verify(raw.replace(b"2432232314", b"2432232315"), headers, secrets=secrets, now=at)


def test_hubspot_v3_vector_verifies() -> None:
    vector = _vector("hubspot_v3_public_vector.json")
    timestamp = str(vector["timestamp"])
    headers = {hubspot.SIGNATURE_HEADER: str(vector["signature"]), hubspot.TIMESTAMP_HEADER: timestamp}
    secrets = WebhookSecrets(hubspot_client_secret=str(vector["client_secret"]))
    at = datetime.fromtimestamp(int(timestamp) / 1000, UTC)
    raw = str(vector["request_body"]).encode()
    hubspot.verify(
        raw, headers, secrets=secrets, now=at, method=str(vector["http_method"]), url=str(vector["url"])
    )
    with pytest.raises(Unauthenticated):
        hubspot.verify(raw, headers, secrets=secrets, now=at, method="GET", url=str(vector["url"]))


def _sns(name: str) -> tuple[bytes, WebhookSecrets, datetime]:
    raw = (VECTORS / name).read_bytes()
    message = json.loads(raw)
    return (
        raw,
        WebhookSecrets(ses_topic_arns=(message["TopicArn"],)),
        datetime.fromisoformat(message["Timestamp"]),
    )


@pytest.mark.parametrize("name", SNS_VECTORS)
def test_real_aws_signed_sns_messages_verify(name: str) -> None:
    raw, secrets, at = _sns(name)
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return REAL_SNS_CERT

    ses.verify(raw, {}, secrets=secrets, now=at, fetch_certificate=fetch)
    assert fetched == [json.loads(raw)["SigningCertURL"]]


@pytest.mark.parametrize("name", SNS_VECTORS)
def test_real_sns_messages_with_a_changed_byte_do_not_verify(name: str) -> None:
    raw, secrets, at = _sns(name)
    tampered = raw.replace(b"Hello world", b"Hello World", 1)
    with pytest.raises(Unauthenticated, match="bad SNS message Signature"):
        ses.verify(tampered, {}, secrets=secrets, now=at, fetch_certificate=lambda url: REAL_SNS_CERT)


def test_an_expired_signing_certificate_is_refused() -> None:
    raw, secrets, at = _sns(SNS_VECTORS[0])
    later = at + timedelta(days=400)  # the certificate expired in August 2022
    with pytest.raises(Unauthenticated, match="certificate is not valid"):
        ses.verify(
            raw, {}, secrets=secrets, now=later, fetch_certificate=lambda url: REAL_SNS_CERT,
            max_age=timedelta(days=401),
        )  # fmt: skip


def test_there_are_four_real_sns_vectors() -> None:
    assert len(SNS_VECTORS) == 4

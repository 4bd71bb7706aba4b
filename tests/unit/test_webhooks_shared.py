"""What every provider webhook shares: secrets never shown, headers found whatever their case, the 1 MB
limit, the replay window in both directions, and timestamps as providers really write them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.config import WebhookSecrets
from chalicelib.errors import MalformedInput, TooLarge, Unauthenticated
from chalicelib.ingest import crm, hubspot, mailgun, postmark, resend, sendgrid, ses
from chalicelib.ingest.headers import header
from chalicelib.ingest.webhooks import (
    MAX_BODY_BYTES,
    check_fresh,
    parse_iso,
)

ALL_SECRETS = WebhookSecrets(
    sendgrid_public_key_b64="sg-key-value",
    mailgun_signing_key="mg-key-value",
    postmark_username="pm-user-value",
    postmark_password="pm-password-value",
    resend_secret="whsec_cmVzZW5kLXZhbHVl",
    hubspot_client_secret="hs-secret-value",
    crm_secret="crm-secret-value",
    ses_topic_arns=("arn:aws:sns:us-east-1:1:t",),
)

VERIFIERS: dict[str, Callable[..., None]] = {
    "sendgrid": sendgrid.verify,
    "mailgun": lambda raw, headers, **kw: mailgun.verify(
        raw, headers, remember_token=lambda t, at: True, **kw
    ),
    "postmark": postmark.verify,
    "ses": lambda raw, headers, **kw: ses.verify(raw, headers, fetch_certificate=lambda url: b"", **kw),
    "resend": resend.verify,
    "hubspot": lambda raw, headers, **kw: hubspot.verify(raw, headers, method="POST", url="https://x/", **kw),
    "crm": crm.verify,
}
PARSERS = [sendgrid.parse, mailgun.parse, postmark.parse, ses.parse, resend.parse, hubspot.parse, crm.parse]


def test_secrets_repr_names_what_is_configured_but_never_a_value() -> None:
    shown = repr(ALL_SECRETS) + str(ALL_SECRETS)
    assert "mailgun_signing_key" in shown and "arn:aws:sns:us-east-1:1:t" in shown
    for value in ("sg-key-value", "mg-key-value", "pm-user-value", "pm-password-value", "cmVzZW5kLXZhbHVl",
                  "hs-secret-value", "crm-secret-value"):  # fmt: skip
        assert value not in shown


@pytest.mark.parametrize("provider", sorted(VERIFIERS))
def test_an_unconfigured_provider_refuses_and_says_so(provider: str, now: datetime) -> None:
    with pytest.raises(Unauthenticated, match=f"^{provider} webhook is not configured$"):
        VERIFIERS[provider](b"{}", {}, secrets=WebhookSecrets(), now=now)


@pytest.mark.parametrize("provider", sorted(VERIFIERS))
def test_a_body_over_one_megabyte_is_refused_before_anything_else(provider: str, now: datetime) -> None:
    with pytest.raises(TooLarge, match="limit is 1048576"):
        VERIFIERS[provider](b"x" * (MAX_BODY_BYTES + 1), {}, secrets=ALL_SECRETS, now=now)


@pytest.mark.parametrize("parse", PARSERS)
def test_parsers_refuse_oversized_and_non_json_bodies(parse: Callable[..., object], now: datetime) -> None:
    with pytest.raises(TooLarge):
        parse(b"x" * (MAX_BODY_BYTES + 1), received_at=now)
    with pytest.raises(MalformedInput, match="not JSON"):
        parse(b"\xff not json", received_at=now)


@pytest.mark.parametrize("provider", sorted(VERIFIERS))
def test_refusals_never_echo_a_secret(provider: str, now: datetime) -> None:
    headers = {
        "Authorization": "Basic cG0tdXNlci12YWx1ZTpub3Bl",
        "svix-id": "m", "svix-timestamp": str(int(now.timestamp())), "svix-signature": "v1,AAAA",
        sendgrid.SIGNATURE_HEADER: "AAAA", sendgrid.TIMESTAMP_HEADER: str(int(now.timestamp())),
        hubspot.SIGNATURE_HEADER: "AAAA", hubspot.TIMESTAMP_HEADER: str(int(now.timestamp() * 1000)),
        crm.SIGNATURE_HEADER: f"t={int(now.timestamp())},v1=00",
    }  # fmt: skip
    body = b'{"signature": {"timestamp": "%d", "token": "t", "signature": "00"}}' % int(now.timestamp())
    with pytest.raises(Unauthenticated) as caught:
        VERIFIERS[provider](body, headers, secrets=ALL_SECRETS, now=now)
    for value in ("sg-key-value", "mg-key-value", "pm-password-value", "hs-secret-value", "crm-secret-value"):
        assert value not in caught.value.message


def test_headers_are_found_whatever_their_case() -> None:
    assert header({"X-HubSpot-Signature-v3": "a"}, "x-hubspot-signature-V3") == "a"
    assert header({"svix-id": "b"}, "Svix-Id") == "b"
    assert header({}, "svix-id") is None


@pytest.mark.parametrize("offset", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)])
def test_the_replay_window_refuses_the_past_and_the_future(offset: timedelta, now: datetime) -> None:
    with pytest.raises(Unauthenticated, match="outside the 5-minute replay window"):
        check_fresh(now + offset, now)
    check_fresh(now + offset * 0.99, now)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:30:45.1234567Z", datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)),
        ("2024-05-01T12:30:45Z", datetime(2024, 5, 1, 12, 30, 45, tzinfo=UTC)),
        ("2024-05-01T14:30:45.5+02:00", datetime(2024, 5, 1, 12, 30, 45, 500000, tzinfo=UTC)),
        ("2024-05-01T12:30:45", datetime(2024, 5, 1, 12, 30, 45, tzinfo=UTC)),
    ],
)
def test_provider_timestamps_are_read(text: str, expected: datetime) -> None:
    assert parse_iso(text, "t") == expected


def test_an_unreadable_timestamp_is_malformed() -> None:
    with pytest.raises(MalformedInput, match="not an ISO 8601 timestamp"):
        parse_iso("yesterday", "BouncedAt")

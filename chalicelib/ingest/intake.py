"""The ingest use case: authenticate or verify, validate and normalise, enqueue, answer.

Nothing here touches a profile: a request is answered only after its events are on the queue, so a 2xx
never loses an event, and the worker stays the only writer of prospects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.adapters.dynamo import NonceStore
from chalicelib.adapters.queue import EventQueue
from chalicelib.auth import Authenticator
from chalicelib.domain.events import Event
from chalicelib.ingest import crm, hubspot, mailgun, postmark, resend, segment, sendgrid, ses
from chalicelib.ingest.webhooks import WebhookSecrets
from chalicelib.errors import NotFound

PROVIDERS = ("sendgrid", "mailgun", "postmark", "ses", "resend", "hubspot", "crm")


@dataclass(frozen=True)
class WebhookResult:
    events: int
    confirmed_subscription: bool = False


class IntakeService:
    def __init__(
        self,
        *,
        auth: Authenticator,
        queue: EventQueue,
        nonces: NonceStore,
        secrets: WebhookSecrets,
        fetch_certificate: Callable[[str], bytes],
        confirm_subscription: Callable[[str], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._auth = auth
        self._queue = queue
        self._nonces = nonces
        self._secrets = secrets
        self._fetch_certificate = fetch_certificate
        self._confirm = confirm_subscription
        self._clock = clock

    def track(self, call: str, raw: bytes, headers: Mapping[str, str]) -> int:
        """A Segment-spec tracking call. Returns the number of events queued."""
        if call not in segment.CALLS:
            raise NotFound(f"unknown tracking call {call!r}; use one of {', '.join(sorted(segment.CALLS))}")
        body = segment.decode_body(raw, headers)
        source = self._auth.write_key(segment.write_key_from(headers, body))
        events = segment.parse_call(segment.CALLS[call], body, source=source.name, received_at=self._clock())
        self._queue.send(events)
        return len(events)

    def webhook(self, provider: str, raw: bytes, headers: Mapping[str, str], *, method: str, url: str) -> WebhookResult:
        now = self._clock()
        events = self._verify_and_parse(provider, raw, headers, now=now, method=method, url=url)
        if provider == "ses":
            subscribe_url = ses.subscription_to_confirm(raw)
            if subscribe_url:
                self._confirm(subscribe_url)
                return WebhookResult(events=0, confirmed_subscription=True)
        if events:
            self._queue.send(events)
        return WebhookResult(events=len(events))

    def _remember_token(self, token: str, signed_at: datetime) -> bool:
        return self._nonces.remember(f"mailgun:{token}", expires_at=signed_at + timedelta(days=1))

    def _verify_and_parse(
        self, provider: str, raw: bytes, headers: Mapping[str, str], *, now: datetime, method: str, url: str
    ) -> list[Event]:
        secrets = self._secrets
        if provider == "sendgrid":
            return sendgrid.verify_and_parse(raw, headers, secrets=secrets, now=now)
        if provider == "mailgun":
            return mailgun.verify_and_parse(raw, headers, secrets=secrets, now=now, remember_token=self._remember_token)
        if provider == "postmark":
            return postmark.verify_and_parse(raw, headers, secrets=secrets, now=now)
        if provider == "ses":
            return ses.verify_and_parse(raw, headers, secrets=secrets, now=now, fetch_certificate=self._fetch_certificate)
        if provider == "resend":
            return resend.verify_and_parse(raw, headers, secrets=secrets, now=now)
        if provider == "hubspot":
            return hubspot.verify_and_parse(raw, headers, secrets=secrets, now=now, method=method, url=url)
        if provider == "crm":
            return crm.verify_and_parse(raw, headers, secrets=secrets, now=now)
        raise NotFound(f"unknown webhook provider {provider!r}; known: {', '.join(PROVIDERS)}")

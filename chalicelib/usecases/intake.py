"""The ingest use case: authenticate or verify, validate and normalise, enqueue, answer.

Nothing here touches a profile: a request is answered only after its events are on the queue, so a 2xx
never loses an event, and the worker stays the only writer of prospects (which also applies each event once,
keyed on the provider's event id, however often a provider retries it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from chalicelib.adapters.dynamo import NonceStore
from chalicelib.adapters.queue import EventQueue
from chalicelib.config import WebhookSecrets
from chalicelib.domain.events import Event
from chalicelib.errors import NotFound, StorageUnavailable, Unauthenticated
from chalicelib.ingest import crm, hubspot, mailgun, postmark, resend, segment, segment_request, sendgrid, ses
from chalicelib.usecases.auth import Authenticator

log = logging.getLogger("leadloop.intake")

PROVIDERS = ("sendgrid", "mailgun", "postmark", "ses", "resend", "hubspot", "crm")
MAILGUN_TOKEN_MEMORY = timedelta(days=1)


@dataclass(frozen=True)
class WebhookResult:
    events: int
    confirmed_subscription: bool = False


def public_request_url(public_url: str, path: str, query: Mapping[str, str] | None = None) -> str:
    """The URL a provider called, as it signed it (HubSpot signs scheme, host, path and query).

    `path` is the request path API Gateway reports: behind the default execute-api host it already starts with
    the stage (`/api/webhooks/...`), so when `public_url` ends with that same prefix only its origin is kept.
    """
    parts = urlsplit(public_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    prefix = parts.path.rstrip("/")
    base = origin if not prefix or path == prefix or path.startswith(prefix + "/") else origin + prefix
    url = base + (path if path.startswith("/") else f"/{path}")
    return f"{url}?{urlencode(query)}" if query else url


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
        body = segment_request.decode_body(raw, headers)
        source = self._auth.write_key(segment_request.write_key_from(headers, body))
        events = segment.parse_call(segment.CALLS[call], body, source=source.name, received_at=self._clock())
        self._queue.send(events)
        return len(events)

    def webhook(
        self, provider: str, raw: bytes, headers: Mapping[str, str], *, method: str, url: str
    ) -> WebhookResult:
        """Verify a provider's delivery, queue its events, then answer. Raises Unauthenticated (401) on a bad,
        missing or stale signature, MalformedInput (400), TooLarge (413), NotFound (404) for an unknown
        provider, StorageUnavailable (503) when the queue did not take the events (the provider retries)."""
        if provider not in PROVIDERS:
            raise NotFound(f"unknown webhook provider {provider!r}; known: {', '.join(PROVIDERS)}")
        now = self._clock()
        try:
            events = self._verify_and_parse(provider, raw, headers, now=now, method=method, url=url)
        except Unauthenticated as error:
            # The reason is safe to log: refusals never contain a secret (tests/unit/test_webhooks_shared.py).
            log.info("refused %s webhook: %s", provider, error.message)
            raise
        if provider == "ses":
            subscribe_url = ses.subscription_to_confirm(raw)
            if subscribe_url:
                self._confirm_subscription(subscribe_url)
                return WebhookResult(events=0, confirmed_subscription=True)
        if events:
            self._queue.send(events)
        return WebhookResult(events=len(events))

    def _confirm_subscription(self, url: str) -> None:
        try:
            self._confirm(url)
        except OSError as error:  # SNS resends the confirmation; a 503 asks it to
            raise StorageUnavailable("could not confirm the SNS subscription; retry") from error

    def _spend_mailgun_token(self, token: str, now: datetime) -> bool:
        # Mailgun signs timestamp + token, not the body: a captured signature fits any body for as long as the
        # replay window lasts. So the token is spent before anything is queued, and only once the signature
        # is known to be genuine (mailgun.verify asks last); a replay is refused with nothing queued. Mailgun
        # signs each retry afresh (a new token and timestamp), so a genuine retry after a failed enqueue is
        # still accepted.
        return self._nonces.remember(f"mailgun:{token}", expires_at=now + MAILGUN_TOKEN_MEMORY)

    def _verify_and_parse(
        self,
        provider: str,
        raw: bytes,
        headers: Mapping[str, str],
        *,
        now: datetime,
        method: str,
        url: str,
    ) -> list[Event]:
        secrets = self._secrets
        if provider == "sendgrid":
            return sendgrid.verify_and_parse(raw, headers, secrets=secrets, now=now)
        if provider == "mailgun":
            return mailgun.verify_and_parse(
                raw, headers, secrets=secrets, now=now, remember_token=self._spend_mailgun_token
            )
        if provider == "postmark":
            return postmark.verify_and_parse(raw, headers, secrets=secrets, now=now)
        if provider == "ses":
            try:
                return ses.verify_and_parse(
                    raw, headers, secrets=secrets, now=now, fetch_certificate=self._fetch_certificate
                )
            except OSError as error:  # the signing certificate could not be fetched; SNS retries a 503
                raise StorageUnavailable("could not fetch the SNS signing certificate; retry") from error
        if provider == "resend":
            return resend.verify_and_parse(raw, headers, secrets=secrets, now=now)
        if provider == "hubspot":
            return hubspot.verify_and_parse(raw, headers, secrets=secrets, now=now, method=method, url=url)
        return crm.verify_and_parse(raw, headers, secrets=secrets, now=now)

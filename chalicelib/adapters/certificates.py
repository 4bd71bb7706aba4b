"""SNS signing certificates, fetched over HTTPS once per Lambda container (the SES webhook verifies each SNS
message against the certificate it names; the parser in `chalicelib.ingest.ses` never does I/O itself)."""

from __future__ import annotations

import urllib.request

from chalicelib.errors import Unauthenticated
from chalicelib.ingest.ses import FetchCertificate, is_sns_certificate_url


class CachedCertificateFetcher:
    """Production `fetch_certificate`: fetches each signing certificate once per Lambda container.

    SNS rotates its certificate rarely and every message names it, so a small per-URL cache removes the
    fetch from nearly every request. Only URLs that pass `is_sns_certificate_url` are ever fetched.
    """

    def __init__(
        self, fetch: FetchCertificate | None = None, *, timeout: float = 5.0, max_entries: int = 16
    ) -> None:
        self._fetch = fetch or self._download
        self._timeout = timeout
        self._max_entries = max_entries
        self._cache: dict[str, bytes] = {}

    def __call__(self, url: str) -> bytes:
        if url not in self._cache:
            if not is_sns_certificate_url(url):
                raise Unauthenticated("SigningCertURL is not an https URL on an SNS host")
            if len(self._cache) >= self._max_entries:
                self._cache.pop(next(iter(self._cache)))
            self._cache[url] = self._fetch(url)
        return self._cache[url]

    def _download(self, url: str) -> bytes:
        # Only reached for URLs that passed is_sns_certificate_url; a certificate is ~2 KB, so cap the read.
        with urllib.request.urlopen(url, timeout=self._timeout) as answer:
            return bytes(answer.read(64 * 1024))

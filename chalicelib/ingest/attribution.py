"""Source attribution from a Segment-spec call: the campaign (`context.campaign`, else the page's `utm_*`
parameters), the external referrer and the landing page of the visit. Pure, like the parser that calls it."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.events import Attribution, EventKind

# Segment's `context.campaign` keys (analytics.js fills it from the page's utm_* parameters) and the UTM
# parameters themselves, each to the touch field it names.
_CAMPAIGN_KEYS = {
    "source": "source",
    "medium": "medium",
    "name": "campaign",
    "term": "term",
    "content": "content",
}
_UTM_KEYS = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "campaign",
    "utm_term": "term",
    "utm_content": "content",
}


def attribution_of(
    kind: EventKind, context: Mapping[str, Any], properties: Mapping[str, Any]
) -> Attribution | None:
    """Where the call's visit came from, or None when it carries no campaign, no UTM parameter and no
    external referrer. `context.campaign` wins over the URL's UTM parameters, field by field; a referrer
    alone names its host as the source (medium "referral"). A page or screen call's own properties (url,
    search, referrer) describe the page; other calls have only `context.page` (a track call's `url` property
    can be any link). Lenient: a value of the wrong type is left out rather than refusing a good event."""
    page = _lenient_object(context, "page")
    if kind in (EventKind.PAGE, EventKind.SCREEN):
        own = {key: properties[key] for key in ("url", "search", "referrer") if key in properties}
        page = {**page, **own}
    url = _text(page.get("url"))
    found: dict[str, str] = {}
    for query in (_text(page.get("search")), _query(url)):
        for key, value in urllib.parse.parse_qsl((query or "").lstrip("?")):
            field = _UTM_KEYS.get(key.lower())
            if field and value.strip():
                found.setdefault(field, value.strip())
    campaign = _lenient_object(context, "campaign")
    for key, field in _CAMPAIGN_KEYS.items():
        given = _text(campaign.get(key))
        if given:
            found[field] = given
    referrer = _external_referrer(_text(page.get("referrer")), url)
    if not found and referrer is None:
        return None
    if "source" not in found and referrer is not None:
        found["source"] = _host(referrer) or referrer
        found.setdefault("medium", "referral")
    landing_page = url.partition("#")[0] if url else _text(page.get("path"))
    return Attribution(**found, referrer=referrer, landing_page=landing_page or None)


def _lenient_object(container: Mapping[str, Any], field: str) -> dict[str, Any]:
    value = container.get(field)
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text or None


def _query(url: str | None) -> str | None:
    try:
        return urllib.parse.urlsplit(url).query if url else None
    except ValueError:  # a malformed authority ("http://[x"): no parameters to read
        return None


def _host(url: str | None) -> str | None:
    try:
        host = urllib.parse.urlsplit(url or "").hostname
    except ValueError:  # a malformed authority ("http://[x") names no host
        return None
    return host.removeprefix("www.") if host else None


def _external_referrer(referrer: str | None, url: str | None) -> str | None:
    """The referrer when it is another site (a link followed from elsewhere), never the site's own pages."""
    host = _host(referrer)
    if host is None or host == _host(url):
        return None
    return referrer

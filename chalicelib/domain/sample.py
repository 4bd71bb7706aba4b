"""A sample prospect from a preview request, so a template can be previewed without a real lead."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain.lifecycle import State
from chalicelib.domain.prospect import Prospect
from chalicelib.domain.scoring import day_of
from chalicelib.errors import MalformedInput

SAMPLE_FIELDS = ("email", "first_name", "last_name", "company", "title", "interests")


def sample_prospect(sample: Mapping[str, Any], now: datetime) -> Prospect:
    unknown = sorted(set(sample) - set(SAMPLE_FIELDS))
    if unknown:
        raise MalformedInput(f"unknown sample field(s) {unknown}; known: {', '.join(SAMPLE_FIELDS)}")
    email = sample.get("email") or "sample@example.com"
    if not isinstance(email, str) or "@" not in email:
        raise MalformedInput("sample.email must be an email address")
    interests = sample.get("interests") or []
    if not isinstance(interests, list) or not all(isinstance(topic, str) for topic in interests):
        raise MalformedInput("sample.interests must be a list of topic names")
    traits = {
        key: str(sample[key]) for key in ("first_name", "last_name", "company", "title") if sample.get(key)
    }
    today = day_of(now)
    return Prospect(
        lead_id="sample",
        created_at=now,
        source="preview",
        email=email.lower(),
        traits=traits,
        interests={topic: {today: float(len(interests) - rank)} for rank, topic in enumerate(interests)},
        state=State.NURTURING,
    )

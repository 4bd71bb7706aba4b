"""Request headers by name, whatever their case: the one place that looks a header up.

At the edge the routes hand over Chalice's `request.headers`, which is already case-insensitive, so the
lookup is a single `get`; a plain dict (a test, a replayed request) is searched without regard to case.
"""

from __future__ import annotations

from collections.abc import Mapping


def header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)

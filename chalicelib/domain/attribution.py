"""Source attribution on the profile: which attributed visit brought the lead first, and which came last.

A touch is recorded only for a tracking event that carries attribution (the parser sets `Event.attribution`
for a campaign, UTM parameters or an external referrer; chalicelib.ingest.segment). The first touch never
changes once set: the scoreboard counts a lead's outcomes under it (chalicelib.domain.scoreboard), so moving
it would move counts already made. A merge keeps the earlier first touch and the later last touch.
"""

from __future__ import annotations

from chalicelib.domain.bounds import clip_optional
from chalicelib.domain.events import Event
from chalicelib.domain.prospect import MAX_PATH_CHARS, MAX_TOUCH_CHARS, TOUCH_FIELDS, Prospect, Touch

_URL_FIELDS = frozenset({"referrer", "landing_page"})


def record_touch(p: Prospect, event: Event) -> None:
    """Keep the event's attribution as the lead's first touch (when it has none) and as its latest touch
    (unless a later one is already kept: events of a batch may arrive out of order)."""
    if event.attribution is None:
        return
    values = {
        name: clip_optional(
            p,
            "attribution",
            getattr(event.attribution, name),
            MAX_PATH_CHARS if name in _URL_FIELDS else MAX_TOUCH_CHARS,
        )
        for name in TOUCH_FIELDS
    }
    if p.first_touch is None:
        p.first_touch = Touch(at=event.at, **values)
    if p.last_touch is None or event.at >= p.last_touch.at:
        p.last_touch = Touch(at=event.at, **values)


def absorb_touches(p: Prospect, other: Prospect) -> None:
    """The touches of a merged-away profile: the earlier first touch, the later last touch."""
    if other.first_touch is not None and (p.first_touch is None or other.first_touch.at < p.first_touch.at):
        p.first_touch = other.first_touch
    if other.last_touch is not None and (p.last_touch is None or other.last_touch.at > p.last_touch.at):
        p.last_touch = other.last_touch


def touch_as_dict(touch: Touch | None) -> dict[str, str | None] | None:
    """A touch as the lead summary shows it."""
    if touch is None:
        return None
    return {**{name: getattr(touch, name) for name in TOUCH_FIELDS}, "at": touch.at.isoformat()}

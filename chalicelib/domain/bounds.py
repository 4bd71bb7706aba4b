"""The profile's bounds, enforced: whatever its sources send, a stored profile stays under MAX_PROFILE_BYTES.

The limits live beside the profile (`chalicelib.domain.prospect`, listed in README "Profile bounds"). Values
are bounded where they enter (`set_trait`, `admit_topic`, `remember_recent`, `clip`); `keep_within_budget`,
run once per fold before the profile is stored, clips every string and list again and then, only when the
stored JSON is still over budget (non-ASCII text takes up to 12 bytes a character there), sheds the least
useful data first until it fits. Whatever is cut is counted in `Prospect.trimmed`, by field, so sales can
see that a profile was fed more than it keeps; a cut string ends with TRUNCATED.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable
from typing import Any

from chalicelib.domain.lifecycle import MAX_NOTE_CHARS, MAX_OWNER_CHARS, MAX_REASON_CHARS
from chalicelib.domain.prospect import (
    MAX_ACCOUNT_TEXT_CHARS,
    MAX_ACCOUNT_TRAITS,
    MAX_ACCOUNTS,
    MAX_ANONYMOUS_IDS,
    MAX_BUCKET_DAYS,
    MAX_CRM_IDS,
    MAX_EVENT_PROPERTIES,
    MAX_HISTORY,
    MAX_ID_CHARS,
    MAX_INTEREST_TOPICS,
    MAX_KEY_MOMENTS,
    MAX_LABEL_CHARS,
    MAX_MESSAGES,
    MAX_MOMENT_CHARS,
    MAX_OTHER_EVENTS,
    MAX_PAGES,
    MAX_PATH_CHARS,
    MAX_PROFILE_BYTES,
    MAX_PROPERTY_CHARS,
    MAX_RECYCLES,
    MAX_TITLE_CHARS,
    MAX_TOPIC_CHARS,
    MAX_TRAIT_KEY_CHARS,
    MAX_TRAIT_NUMBER,
    MAX_TRAIT_TEXT_CHARS,
    MAX_TRAITS,
    TOUCH_FIELDS,
    TRUNCATED,
    DayBuckets,
    Prospect,
    Recycle,
    Transition,
)
from chalicelib.domain.prospect_document import prospect_to_doc
from chalicelib.domain.rules import Rules
from chalicelib.domain.seen import MAX_SEEN_EVENTS

# Traits that are never evicted to make room: who the person is, and what the CRM said.
CORE_TRAITS = frozenset(
    {"first_name", "last_name", "name", "title", "company", "company_size", "industry", "country", "phone"}
)
CRM_OWNED_TRAITS = frozenset({"crm_owner"})  # written by the CRM path only (see prospect.is_reserved_trait)


def note(p: Prospect, what: str, count: int = 1) -> None:
    if count:
        p.trimmed[what] = p.trimmed.get(what, 0) + count


def clip(p: Prospect, what: str, text: str, limit: int) -> str:
    """`text` cut to `limit` characters (ending with TRUNCATED), counted under `what` when cut."""
    if len(text) <= limit:
        return text
    note(p, what)
    return text[: max(limit - len(TRUNCATED), 0)] + TRUNCATED


def clip_optional(p: Prospect, what: str, text: str | None, limit: int) -> str | None:
    return None if text is None else clip(p, what, text, limit)


def remember_recent(items: list[str], item: str, limit: int) -> None:
    """Keep `item` as the newest of at most `limit` distinct values (an id seen again is fresh again)."""
    if items and items[-1] == item:
        return
    if item in items:
        items.remove(item)
    items.append(item)
    del items[: max(len(items) - limit, 0)]


def fits_id(value: str | None) -> bool:
    return bool(value) and len(value or "") <= MAX_ID_CHARS


# --- traits ---


def _plain(value: Any) -> str | int | float | bool | None:
    """A trait value as stored, or None when it cannot be one (nested, not finite, absurdly large)."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value if abs(value) <= MAX_TRAIT_NUMBER else None
    return None


def set_trait(p: Prospect, name: str, value: Any, keep: Collection[str] = ()) -> None:
    """Store one proposed trait within the bounds: a plain value, a bounded name and text, at most
    MAX_TRAITS names (the oldest other than CORE_TRAITS, CRM_OWNED_TRAITS and `keep` makes room)."""
    plain = _plain(value)
    if plain is None or len(name) > MAX_TRAIT_KEY_CHARS:
        note(p, "traits")
        return
    if isinstance(plain, str):
        plain = clip(p, "traits", plain, MAX_TRAIT_TEXT_CHARS)
    traits = p.traits
    if name not in traits and len(traits) >= MAX_TRAITS:
        evictable = next((key for key in traits if not _kept(key, keep)), None)
        if evictable is None:
            note(p, "traits")
            return
        del traits[evictable]
        note(p, "traits")
    traits.pop(name, None)
    traits[name] = plain  # last set is newest: the oldest proposals make room first


def _kept(name: str, keep: Collection[str]) -> bool:
    return name in CORE_TRAITS or name in CRM_OWNED_TRAITS or name in keep


# --- accounts (chalicelib.domain.accounts decides; these keep the snapshot within bounds) ---

ACCOUNT_CORE_TRAITS = ("name", "domain", "employees", "industry", "plan", "country")


def account_value(p: Prospect, value: Any) -> str | int | float | bool | None:
    """An account trait value as stored (plain, text clipped), or None when it cannot be one."""
    plain = _plain(value)
    if plain is None:
        note(p, "accounts")
    elif isinstance(plain, str):
        plain = clip(p, "accounts", plain, MAX_ACCOUNT_TEXT_CHARS)
    return plain


def _bound_accounts(p: Prospect) -> None:
    fitting = [link for link in p.accounts if fits_id(link.account_id)]
    note(p, "accounts", len(p.accounts) - len(fitting))
    p.accounts[:] = fitting[-MAX_ACCOUNTS:]
    note(p, "accounts", len(fitting) - len(p.accounts))
    for link in p.accounts:
        for name, value in list(link.traits.items()):
            if len(name) > MAX_TRAIT_KEY_CHARS or _plain(value) is None:
                del link.traits[name]
                note(p, "accounts")
            elif isinstance(value, str):
                link.traits[name] = clip(p, "accounts", value, MAX_ACCOUNT_TEXT_CHARS)
        while len(link.traits) > MAX_ACCOUNT_TRAITS:
            del link.traits[next(iter(link.traits))]
            note(p, "accounts")


def _shed_account_traits(keep: Collection[str]) -> Shed:
    def shed(p: Prospect) -> int:
        dropped = 0
        for link in p.accounts:
            others = [k for k in link.traits if k not in ACCOUNT_CORE_TRAITS and f"account.{k}" not in keep]
            for key in others[: (len(others) + 1) // 2]:
                del link.traits[key]
                dropped += 1
        return dropped

    return shed


# --- engagement and interests ---


def admit_topic(p: Prospect, topic: str) -> bool:
    """Whether points for `topic` may be stored: a bounded name, and room among MAX_INTEREST_TOPICS (the
    topic shown least recently makes room)."""
    if len(topic) > MAX_TOPIC_CHARS:
        note(p, "interests")
        return False
    if topic not in p.interests and len(p.interests) >= MAX_INTEREST_TOPICS:
        _evict_stalest_topic(p)
    return True


def _evict_stalest_topic(p: Prospect) -> None:
    stalest = min(p.interests, key=lambda key: max(p.interests[key], default=0))
    del p.interests[stalest]
    note(p, "interests")


def _cap_days(groups: dict[str, DayBuckets], days: int) -> int:
    dropped = 0
    for key in list(groups):
        buckets = groups[key]
        if len(buckets) > days:
            for day in sorted(buckets)[: len(buckets) - days]:
                del buckets[day]
                dropped += 1
        if not buckets:
            del groups[key]
    return dropped


# --- the whole profile ---


def enforce_limits(p: Prospect) -> None:
    """Every list and string of the profile within its own limit (cheap: no serialisation)."""
    p.source = clip(p, "source", p.source, MAX_LABEL_CHARS)
    p.owner = clip_optional(p, "owner", p.owner, MAX_OWNER_CHARS)
    p.pending_hand_raise = clip_optional(p, "key_moments", p.pending_hand_raise, MAX_LABEL_CHARS)
    for name, ids, limit in (
        ("anonymous_ids", p.anonymous_ids, MAX_ANONYMOUS_IDS),
        ("crm_ids", p.crm_ids, MAX_CRM_IDS),
    ):
        fitting = [value for value in ids if fits_id(value)]
        note(p, name, len(ids) - len(fitting))
        ids[:] = fitting[-limit:]
    for name, value in list(p.traits.items()):
        if len(name) > MAX_TRAIT_KEY_CHARS or _plain(value) is None:
            del p.traits[name]
            note(p, "traits")
        elif isinstance(value, str):
            p.traits[name] = clip(p, "traits", value, MAX_TRAIT_TEXT_CHARS)
    while len(p.traits) > MAX_TRAITS:
        del p.traits[next(iter(p.traits))]
        note(p, "traits")
    _bound_accounts(p)
    _cap_days(p.engagement, MAX_BUCKET_DAYS)
    _cap_days(p.interests, MAX_BUCKET_DAYS)
    while len(p.interests) > MAX_INTEREST_TOPICS:
        _evict_stalest_topic(p)
    for page in p.pages:
        page.path = clip(p, "pages", page.path, MAX_PATH_CHARS)
        page.title = clip(p, "pages", page.title, MAX_TITLE_CHARS)
    for moment in p.key_moments:
        moment.kind = clip(p, "key_moments", moment.kind, MAX_LABEL_CHARS)
        moment.text = clip(p, "key_moments", moment.text, MAX_MOMENT_CHARS)
    for other in p.other_events:
        other.name = clip(p, "other_events", other.name, MAX_LABEL_CHARS)
        if len(other.properties) > MAX_EVENT_PROPERTIES:
            note(p, "other_events", len(other.properties) - MAX_EVENT_PROPERTIES)
            del other.properties[MAX_EVENT_PROPERTIES:]
        other.properties = [
            (
                clip(p, "other_events", key, MAX_LABEL_CHARS),
                clip(p, "other_events", value, MAX_PROPERTY_CHARS),
            )
            for key, value in other.properties
        ]
    for change in p.history:
        change.actor = clip(p, "history", change.actor, MAX_OWNER_CHARS)
        change.reason = clip_optional(p, "history", change.reason, MAX_LABEL_CHARS)
        change.note = clip_optional(p, "history", change.note, MAX_NOTE_CHARS)
    for recycle in p.recycles:
        recycle.actor = clip(p, "recycles", recycle.actor, MAX_OWNER_CHARS)
        recycle.reason = clip(p, "recycles", recycle.reason, MAX_REASON_CHARS)
        recycle.note = clip_optional(p, "recycles", recycle.note, MAX_NOTE_CHARS)
    for message in p.messages:
        message.template = clip(p, "messages", message.template, MAX_LABEL_CHARS)
        message.reason = clip(p, "messages", message.reason, MAX_LABEL_CHARS)
    for name, items, limit in (
        ("pages", p.pages, MAX_PAGES),
        ("key_moments", p.key_moments, MAX_KEY_MOMENTS),
        ("other_events", p.other_events, MAX_OTHER_EVENTS),
        ("history", p.history, MAX_HISTORY),
        ("recycles", p.recycles, MAX_RECYCLES),
        ("messages", p.messages, MAX_MESSAGES),
    ):
        if len(items) > limit:
            note(p, name, len(items) - limit)
            del items[: len(items) - limit]
    note(p, "seen", p.seen.bound(MAX_SEEN_EVENTS))


def stored_size(p: Prospect) -> int:
    """Bytes of the profile's stored JSON before compression (as the prospect store serialises it)."""
    doc = prospect_to_doc(p)
    return len(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode())


# JSON takes at most 12 bytes for one character of a string (a character outside the BMP is written as two
# \uXXXX escapes), so 12 bytes a character bounds any text without looking at it.
_WORST_BYTES_PER_CHAR = 12


def _chars(texts: Iterable[str | None]) -> int:
    return sum(len(text) + 2 for text in texts if text)


def size_upper_bound(p: Prospect) -> int:
    """A bound on the stored JSON's size that is cheap to compute (lengths only, no serialisation): the
    budget check serialises the profile only when this says it might be too big."""
    chars = _chars((p.lead_id, p.source, p.user_id, p.email, p.owner, p.pending_hand_raise))
    chars += _chars(p.anonymous_ids) + _chars(p.crm_ids) + _chars(p.seen) + _chars(p.trimmed)
    chars += sum(2 * (14 + len(chunk.bloom)) for chunk in p.seen.chunks)  # packed, then base64 (4/3 < 2)
    chars += _chars(p.traits) + _chars(str(v) for v in p.traits.values())
    chars += _chars(p.engagement) + _chars(p.interests)
    chars += _chars(t.actor for t in p.history) + _chars(t.reason for t in p.history)
    chars += _chars(t.note for t in p.history)
    chars += _chars(m.send_id for m in p.messages) + _chars(m.template for m in p.messages)
    chars += _chars(m.reason for m in p.messages) + _chars(m.error for m in p.messages)
    chars += sum(_chars(m.outcomes) for m in p.messages)
    chars += _chars(k.kind for k in p.key_moments) + _chars(k.text for k in p.key_moments)
    chars += _chars(e.name for e in p.other_events)
    chars += sum(_chars(text for pair in e.properties for text in pair) for e in p.other_events)
    chars += _chars(v.path for v in p.pages) + _chars(v.title for v in p.pages)
    chars += _chars(r.actor for r in p.recycles) + _chars(r.reason for r in p.recycles)
    chars += _chars(r.note for r in p.recycles)
    if p.sla is not None:
        chars += _chars((p.sla.task_token, p.sla.status))
    if p.suppression is not None:
        chars += _chars((p.suppression.reason,))
    for touch in (p.first_touch, p.last_touch):
        if touch is not None:
            chars += _chars(getattr(touch, name) for name in TOUCH_FIELDS)
    for link in p.accounts:
        chars += _chars((link.account_id,)) + _chars(link.traits)
        chars += _chars(str(value) for value in link.traits.values())
    # Everything else is keys, numbers and timestamps: at most this many bytes per item that holds them.
    items = len(p.history) + len(p.messages) + len(p.key_moments) + len(p.pages) + len(p.recycles) + 2
    items += len(p.accounts) + len(p.other_events) + sum(len(e.properties) for e in p.other_events)
    days = sum(map(len, p.engagement.values())) + sum(map(len, p.interests.values()))
    counts = sum(len(m.outcomes) for m in p.messages)
    return 2048 + _WORST_BYTES_PER_CHAR * chars + 200 * items + 40 * days + 24 * counts


def fit_traits(rules: Rules) -> set[str]:
    """The traits the fit rules score on (`account.<name>` for an account's): kept as long as anything
    else can go."""
    return {rule.trait for rule in rules.fit} | {rule.fallback for rule in rules.fit if rule.fallback}


def keep_within_budget(p: Prospect, keep: Collection[str] = ()) -> None:
    """Bound every value, then shed the least useful data (halving, oldest first) until the stored profile
    fits MAX_PROFILE_BYTES. `keep`: traits the rules score on, kept as long as anything else can go."""
    enforce_limits(p)
    if size_upper_bound(p) <= MAX_PROFILE_BYTES:
        return  # the common case: no need to serialise the profile to know it fits
    for what, shed in _shedders(keep):
        while stored_size(p) > MAX_PROFILE_BYTES:
            dropped = shed(p)
            if not dropped:
                break
            note(p, what, dropped)
        else:
            return


Shed = Callable[[Prospect], int]


def _halve(items: list[Any], floor: int = 0) -> int:
    drop = max(min(len(items) - floor, (len(items) + 1) // 2), 0)
    del items[:drop]
    return drop


def _shed_traits(keep: Collection[str]) -> Shed:
    def shed(p: Prospect) -> int:
        others = [key for key in p.traits if not _kept(key, keep)]
        for key in others[: (len(others) + 1) // 2]:
            del p.traits[key]
        return (len(others) + 1) // 2

    return shed


def _shorten_traits(p: Prospect) -> int:
    texts = [key for key, value in p.traits.items() if isinstance(value, str) and len(value) > 16]
    limit = max(max((len(p.traits[key]) for key in texts), default=0) // 2, 16)
    cut = [key for key in texts if len(p.traits[key]) > limit]
    for key in cut:
        p.traits[key] = p.traits[key][: limit - len(TRUNCATED)] + TRUNCATED
    return len(cut)


def _drop_notes(p: Prospect) -> int:
    items: list[Transition | Recycle] = [*p.history, *p.recycles]
    noted = [item for item in items if item.note]
    for item in noted:
        item.note = None
    return len(noted)


def _halve_days(groups: Callable[[Prospect], dict[str, DayBuckets]]) -> Shed:
    def shed(p: Prospect) -> int:
        most = max((len(days) for days in groups(p).values()), default=0)
        return _cap_days(groups(p), most // 2)

    return shed


def _shedders(keep: Collection[str]) -> list[tuple[str, Shed]]:
    """Least useful first: descriptive extras, then what explains a lead, then what scores it."""
    return [
        ("traits", _shed_traits(keep)),
        ("accounts", _shed_account_traits(keep)),
        ("pages", lambda p: _halve(p.pages)),
        ("other_events", lambda p: _halve(p.other_events)),
        ("key_moments", lambda p: _halve(p.key_moments)),
        ("anonymous_ids", lambda p: _halve(p.anonymous_ids, floor=1)),
        ("crm_ids", lambda p: _halve(p.crm_ids, floor=1)),
        ("history", _drop_notes),
        ("interests", _halve_days(lambda p: p.interests)),
        ("engagement", _halve_days(lambda p: p.engagement)),
        ("traits", _shed_traits(())),
        ("traits", _shorten_traits),
        ("history", lambda p: _halve(p.history, floor=1)),
        ("recycles", lambda p: _halve(p.recycles, floor=1)),
        ("accounts", lambda p: _halve(p.accounts, floor=1)),
    ]

"""The prospect profile's storage form: the compact JSON document a Prospect is stored as, and back.

prospect_to_doc encodes a profile (chalicelib.domain.prospect) with short keys, leaving out empty values and
defaults, to keep the item small (DynamoDB bills writes per KB); prospect_from_doc reads it back, filling
the defaults for fields that profiles stored earlier lack. The key mapping is private to this module and
reversible. The idempotency window is packed (`_window_out`): its random fingerprints do not compress, so
each costs its 8 bytes and the 2 of its hour, not a JSON string of hex digits.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from chalicelib.domain.lifecycle import State, Trigger
from chalicelib.domain.prospect import (
    TOUCH_FIELDS,
    AccountLink,
    DayBuckets,
    KeyMoment,
    OtherEvent,
    PageVisit,
    Prospect,
    Recycle,
    SentMessage,
    SlaTimer,
    Suppression,
    Touch,
    Transition,
)
from chalicelib.domain.seen import SeenChunk, SeenWindow, bloom_size


def _t(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _buckets_out(groups: dict[str, DayBuckets]) -> dict[str, dict[str, float]]:
    return {key: {str(day): round(points, 4) for day, points in days.items()} for key, days in groups.items()}


def _buckets_in(groups: dict[str, dict[str, float]]) -> dict[str, DayBuckets]:
    return {key: {int(day): points for day, points in days.items()} for key, days in groups.items()}


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if value not in (None, [], {}, "")}


def _touch_out(touch: Touch | None) -> dict[str, Any] | None:
    if touch is None:
        return None
    return _drop_none({"at": _t(touch.at), **{name: getattr(touch, name) for name in TOUCH_FIELDS}})


def _touch_in(doc: dict[str, Any] | None) -> Touch | None:
    if not doc:
        return None
    return Touch(at=datetime.fromisoformat(doc["at"]), **{name: doc.get(name) for name in TOUCH_FIELDS})


# One window entry packed: the fingerprint's 8 bytes, then how many hours before the window's newest hour it
# was applied (1 byte; the window spans SEEN_HORIZON_HOURS, and an entry older than 255 hours, only possible
# after a merge, reads as 255 hours old: younger than it is, so kept longer, never shorter).
_ENTRY_BYTES = 9
_MAX_AGE = 0xFF


def _window_out(window: SeenWindow) -> dict[str, Any] | None:
    """{"h": newest hour, "w": base64 of the packed entries, oldest first}, plus "old": fingerprints stored
    before the window kept hours and not stamped since (a profile saved without applying an event), and "c":
    the chunks the older ids moved to (`_chunks_out`)."""
    stamped = [(key, hour) for key, hour in window.hours.items() if hour is not None]
    old = [key for key, hour in window.hours.items() if hour is None]
    if not stamped and not old and not window.chunks:
        return None
    newest = max((hour for _, hour in stamped), default=0)
    packed = b"".join(bytes.fromhex(key) + bytes((min(newest - hour, _MAX_AGE),)) for key, hour in stamped)
    return _drop_none(
        {
            "h": newest if stamped else None,
            "w": base64.b64encode(packed).decode() if stamped else None,
            "old": old,
            "c": _chunks_out(window.chunks),
        }
    )


# One chunk packed: its id (8 bytes), the hour of its newest id (4), its count of ids (2), then its filter,
# whose length follows from the count (chalicelib.domain.seen.bloom_of).
_CHUNK_HEAD = 14


def _chunks_out(chunks: list[SeenChunk]) -> str | None:
    if not chunks:
        return None
    packed = b"".join(
        bytes.fromhex(c.chunk_id) + c.newest.to_bytes(4, "big") + c.count.to_bytes(2, "big") + c.bloom
        for c in chunks
    )
    return base64.b64encode(packed).decode()


def _chunks_in(text: str | None) -> list[SeenChunk]:
    """The chunks back. Damaged bytes (cut short, padded, not base64) raise ValueError, which the store
    reports as an unreadable record: a filter read at the wrong length would miss ids it holds, and a
    redelivery of them would be applied again without a word."""
    raw = base64.b64decode(text or "", validate=True)
    chunks: list[SeenChunk] = []
    at = 0
    while at < len(raw):
        if at + _CHUNK_HEAD > len(raw):
            raise ValueError(f"idempotency chunk list cut short at byte {at} of {len(raw)}")
        count = int.from_bytes(raw[at + 12 : at + 14], "big")
        end = at + _CHUNK_HEAD + bloom_size(count)
        if not count or end > len(raw):
            raise ValueError(f"idempotency chunk at byte {at} holds {count} ids and a filter cut short")
        chunks.append(
            SeenChunk(
                raw[at : at + 8].hex(),
                int.from_bytes(raw[at + 8 : at + 12], "big"),
                count,
                raw[at + _CHUNK_HEAD : end],
            )
        )
        at = end
    return chunks


def _window_in(doc: dict[str, Any]) -> SeenWindow:
    """The window back; a profile stored before the window kept hours has a plain list under "seen"."""
    legacy = doc.get("seen", [])
    packed = doc.get("sw") or {}
    old: list[str] = [*legacy, *packed.get("old", [])]
    hours: dict[str, int | None] = dict.fromkeys(old)
    newest = packed.get("h", 0)
    raw = base64.b64decode(packed.get("w", ""), validate=True).hex()
    step = 2 * _ENTRY_BYTES
    for at in range(0, len(raw), step):
        hours[raw[at : at + 16]] = newest - int(raw[at + 16 : at + step], 16)
    return SeenWindow(hours, unstamped=bool(old), chunks=_chunks_in(packed.get("c")))


def prospect_to_doc(p: Prospect) -> dict[str, Any]:
    return _drop_none(
        {
            "id": p.lead_id,
            "created": _t(p.created_at),
            "src": p.source,
            "anon": p.anonymous_ids,
            "uid": p.user_id,
            "email": p.email,
            "crm": p.crm_ids,
            "traits": p.traits,
            "eng": _buckets_out(p.engagement),
            "int": _buckets_out(p.interests),
            "state": p.state.value,
            "owner": p.owner,
            "hist": [
                _drop_none(
                    {
                        "at": _t(t.at),
                        "from": t.from_state.value,
                        "to": t.to_state.value,
                        "trigger": t.trigger.value,
                        "actor": t.actor,
                        "reason": t.reason,
                        "note": t.note,
                    }
                )
                for t in p.history
            ],
            "sup": {"reason": p.suppression.reason, "at": _t(p.suppression.at)} if p.suppression else None,
            "msgs": [
                {
                    "id": m.send_id,
                    "tpl": m.template,
                    "v": m.version,
                    "at": _t(m.at),
                    "why": m.reason,
                    "out": m.outcomes,
                    **({"st": m.status} if m.status != "sent" else {}),
                    **({"n": m.tries} if m.tries != 1 else {}),
                    **({"err": m.error} if m.error else {}),
                    **({"ctx": m.context} if m.context else {}),
                    **({"lrn": m.learned} if m.learned else {}),
                }
                for m in p.messages
            ],
            "km": [{"at": _t(k.at), "kind": k.kind, "text": k.text} for k in p.key_moments],
            # Properties as pairs, not an object: the store sorts object keys, and the picking order matters.
            "oev": [
                _drop_none({"at": _t(e.at), "n": e.name, "p": [list(pair) for pair in e.properties]})
                for e in p.other_events
            ],
            "pages": [{"at": _t(v.at), "path": v.path, "title": v.title} for v in p.pages],
            "recycles": [
                _drop_none(
                    {
                        "reason": r.reason,
                        "at": _t(r.at),
                        "actor": r.actor,
                        "note": r.note,
                        "revisit": _t(r.revisit_at),
                        "count": r.count,
                    }
                )
                for r in p.recycles
            ],
            "sla": _drop_none(
                {
                    "start": _t(p.sla.started_at),
                    "due": _t(p.sla.due_at),
                    "status": p.sla.status,
                    "token": p.sla.task_token,
                    "esc": _t(p.sla.escalated_at),
                    "done": _t(p.sla.resolved_at),
                }
            )
            if p.sla
            else None,
            "next": _t(p.next_touch_at),
            "wait": p.nurture_waiting,
            "sw": _window_out(p.seen),
            "last": _t(p.last_activity_at),
            "amount": p.amount,
            "rv": p.rules_version or None,
            "hr": p.pending_hand_raise,
            "t1": _touch_out(p.first_touch),
            "tn": _touch_out(p.last_touch),
            "acct": [
                _drop_none({"id": a.account_id, "at": _t(a.at), "tr": a.traits, "sd": a.synced_day})
                for a in p.accounts
            ],
            "trim": p.trimmed,
        }
    )


def prospect_from_doc(doc: dict[str, Any]) -> Prospect:
    sup, sla = doc.get("sup"), doc.get("sla")
    return Prospect(
        lead_id=doc["id"],
        created_at=datetime.fromisoformat(doc["created"]),
        source=doc.get("src", ""),
        anonymous_ids=list(doc.get("anon", [])),
        user_id=doc.get("uid"),
        email=doc.get("email"),
        crm_ids=list(doc.get("crm", [])),
        traits=dict(doc.get("traits", {})),
        engagement=_buckets_in(doc.get("eng", {})),
        interests=_buckets_in(doc.get("int", {})),
        state=State(doc.get("state", State.ANONYMOUS.value)),
        owner=doc.get("owner"),
        history=[
            Transition(
                at=datetime.fromisoformat(t["at"]),
                from_state=State(t["from"]),
                to_state=State(t["to"]),
                trigger=Trigger(t["trigger"]),
                actor=t["actor"],
                reason=t.get("reason"),
                note=t.get("note"),
            )
            for t in doc.get("hist", [])
        ],
        suppression=Suppression(reason=sup["reason"], at=datetime.fromisoformat(sup["at"])) if sup else None,
        messages=[
            SentMessage(
                send_id=m["id"],
                template=m["tpl"],
                version=m.get("v", 0),
                at=datetime.fromisoformat(m["at"]),
                reason=m.get("why", ""),
                outcomes=dict(m.get("out", {})),
                status=m.get("st", "sent"),
                tries=m.get("n", 1),
                error=m.get("err"),
                context=m.get("ctx"),
                learned=list(m.get("lrn", [])),
            )
            for m in doc.get("msgs", [])
        ],
        key_moments=[
            KeyMoment(at=datetime.fromisoformat(k["at"]), kind=k["kind"], text=k["text"])
            for k in doc.get("km", [])
        ],
        other_events=[
            OtherEvent(
                at=datetime.fromisoformat(e["at"]),
                name=e["n"],
                properties=[(str(k), str(v)) for k, v in e.get("p", [])],
            )
            for e in doc.get("oev", [])
        ],
        pages=[
            PageVisit(at=datetime.fromisoformat(v["at"]), path=v["path"], title=v.get("title", ""))
            for v in doc.get("pages", [])
        ],
        recycles=[
            Recycle(
                reason=r["reason"],
                at=datetime.fromisoformat(r["at"]),
                actor=r.get("actor", ""),
                note=r.get("note"),
                revisit_at=_dt(r.get("revisit")),
                count=r.get("count", 1),
            )
            for r in doc.get("recycles", [])
        ],
        sla=SlaTimer(
            started_at=datetime.fromisoformat(sla["start"]),
            due_at=datetime.fromisoformat(sla["due"]),
            status=sla.get("status", "waiting"),
            task_token=sla.get("token"),
            escalated_at=_dt(sla.get("esc")),
            resolved_at=_dt(sla.get("done")),
        )
        if sla
        else None,
        next_touch_at=_dt(doc.get("next")),
        nurture_waiting=doc.get("wait"),
        seen=_window_in(doc),
        last_activity_at=_dt(doc.get("last")),
        amount=doc.get("amount"),
        rules_version=doc.get("rv", 0),
        pending_hand_raise=doc.get("hr"),
        first_touch=_touch_in(doc.get("t1")),
        last_touch=_touch_in(doc.get("tn")),
        accounts=[
            AccountLink(
                account_id=a["id"],
                at=datetime.fromisoformat(a["at"]),
                traits=dict(a.get("tr", {})),
                synced_day=a.get("sd"),
            )
            for a in doc.get("acct", [])
        ],
        trimmed=dict(doc.get("trim", {})),
    )

"""The shadow's comparison rows on DynamoDB (chalicelib/adapters/shadow_rows.py): the first routing of each
rule set stays, the scores and the next-template choices are those of the latest batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamo import Tables
from chalicelib.adapters.shadow_rows import DynamoShadowRows

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _row(score: float, **extra: Any) -> dict[str, Any]:
    return {"first_touch": AT.isoformat(), "live_score": 10.0, "shadow_score": score, "at": AT.isoformat(),
            "live": None, "shadow": None, **extra}  # fmt: skip


def test_the_latest_choices_replace_the_earlier_ones_and_the_first_routing_stays(moto_tables: Tables) -> None:
    rows = DynamoShadowRows(moto_tables)
    routed = {"routed_at": AT.isoformat(), "reason": "hand_raise", "why": "asked for a demo"}
    changed = {"next": {"live": "security-pack", "shadow": "pricing-guide"},
               "next_why": {"live": "interest security", "shadow": "interest pricing"}}  # fmt: skip
    ends = AT + timedelta(days=7)
    rows.record("sh-1", "L1", _row(20.0, shadow=routed, **changed), expires_at=ends)
    assert rows.all("sh-1")["L1"]["next_why"] == changed["next_why"]

    later = {"next": {"live": "security-pack", "shadow": "security-pack"}}
    rows.record("sh-1", "L1", _row(30.0, **later), expires_at=ends)

    row = rows.all("sh-1")["L1"]
    assert row["shadow"] == routed and row["shadow_score"] == 30.0
    assert row["next"] == later["next"] and row["next_why"] is None
    rows.record("sh-1", "L2", _row(5.0), expires_at=ends)  # a worker without templates: no choices
    assert "next" not in rows.all("sh-1")["L2"]

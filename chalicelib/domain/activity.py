"""An entry on the activity feed: who did what to which lead, when (the audit trail both teams read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ActivityEntry:
    lead_id: str
    at: datetime
    kind: str
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    ttl_days: int = 400

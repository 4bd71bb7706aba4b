"""A try the mail service throttled: nothing was sent, so it neither counts as a try nor waits out a lease.

Kept apart from `domain.messaging` (the claim's lifecycle) because only the fanned-out sender meets it: SES
answers `Throttling` before it takes the message, so the same message (same send id) may go again at once.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.domain.messaging import retry_at
from chalicelib.domain.prospect import SentMessage


def release_try(claim: SentMessage, now: datetime) -> None:
    """Undo the try in flight: one try fewer, and the claim retryable from `now` (retry_at == now)."""
    claim.tries = max(0, claim.tries - 1)
    claim.at = now - (retry_at(claim) - claim.at)

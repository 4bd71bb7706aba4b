"""The suppression list of erased people: what Leadloop keeps of an address after erasing its person.

Only a keyed hash is kept (HMAC-SHA256 under a secret salt held with the other secrets), so the list can
answer "was this address erased?" for an address someone gives us again, and can never be read back into
addresses. A fresh profile that arrives with such an address is suppressed with the reason ERASED.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

ERASED = "erased"  # the Suppression.reason of a profile whose address belongs to an erased person


@dataclass(frozen=True)
class SuppressedAddress:
    """One entry of the list: the keyed hash of an address, why it is there and since when."""

    digest: str
    reason: str
    at: datetime


def normalised_address(email: str) -> str:
    """The form an address is hashed in: the tracking path and the import store addresses lower-cased."""
    return email.strip().lower()


def address_digest(email: str, salt: str) -> str:
    """HMAC-SHA256 of the normalised address under `salt` (hex). Without the salt a digest cannot be tested
    against a list of guessed addresses, which a plain hash of an address could."""
    if not salt:
        raise ValueError("the suppression salt is empty; it must be a secret")
    return hmac.new(salt.encode(), normalised_address(email).encode(), hashlib.sha256).hexdigest()

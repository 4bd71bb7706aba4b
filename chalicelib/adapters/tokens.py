"""Signed, unguessable tokens for links Leadloop puts in emails: one-click unsubscribe and tracked redirects.

A token is `base64url(json payload).base64url(HMAC-SHA256(secret, purpose + payload))`: the purpose is bound
into the MAC so an unsubscribe token can never be replayed as a redirect token and vice versa.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from chalicelib.errors import NotFound

UNSUBSCRIBE = "unsubscribe"
REDIRECT = "redirect"
MAX_TOKEN_CHARS = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}.{payload}".encode(), hashlib.sha256).digest()
    return _b64(digest)


def sign(purpose: str, payload: dict[str, Any], secret: str) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, purpose, body)}"


def verify(purpose: str, token: str, secret: str) -> dict[str, Any]:
    """The payload of a genuine token; NotFound for anything else (no hint of why, to an attacker)."""
    # Tokens are base64url and a dot; anything else (raw non-ASCII bytes from a mangled link) is not one, and
    # hmac.compare_digest refuses to compare non-ASCII text at all.
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 1:
        raise NotFound("unknown or invalid link")
    body, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(secret, purpose, body)):
        raise NotFound("unknown or invalid link")
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        raise NotFound("unknown or invalid link") from None
    if not isinstance(payload, dict):
        raise NotFound("unknown or invalid link")
    return payload

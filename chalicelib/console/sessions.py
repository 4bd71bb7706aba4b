"""Console sessions: a signed cookie that names an API key by its hash, and the CSRF token every form carries.

The cookie holds no key and no state of its own worth stealing beyond the session itself: the SHA-256 of
the key (what the keys table is keyed by), a random CSRF token and an expiry, signed with HMAC-SHA256 under
a key derived from the stage's signing secret. Every request reads the key's record again (one GetItem, as
the API's Bearer check does), so a revoked key ends its sessions at once. A visitor who has not signed in
gets an anonymous session (no key, only a CSRF token), so the sign-in form is CSRF-checked too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookies import CookieError, SimpleCookie

from chalicelib.adapters.dynamo import KeyStore
from chalicelib.errors import Forbidden, Unauthenticated
from chalicelib.usecases.auth import Principal, hash_key

COOKIE = "leadloop_console"
SESSION_HOURS = 8
ANONYMOUS_MINUTES = 60
SIGNABLE_ROLES = ("sales", "marketing", "admin")


@dataclass(frozen=True)
class Session:
    csrf: str
    expires: int  # epoch seconds
    key_hash: str | None = None  # None: not signed in (the sign-in form's session)


class CsrfRefused(Forbidden):
    code = "csrf"


def _mac_key(secret: str) -> bytes:
    # A key of its own: a console cookie can never pass as an unsubscribe or redirect token, nor the reverse.
    return hmac.new(secret.encode(), b"leadloop console session v1", hashlib.sha256).digest()


def encode(session: Session, secret: str) -> str:
    payload = json.dumps(
        {"c": session.csrf, "e": session.expires, "k": session.key_hash}, separators=(",", ":")
    ).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    mac = hmac.new(_mac_key(secret), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def decode(value: str, secret: str, now: datetime) -> Session | None:
    """The session a cookie value carries, or None when it is forged, damaged or expired."""
    body, _, mac = value.partition(".")
    expected = hmac.new(_mac_key(secret), body.encode(), hashlib.sha256).hexdigest()
    if not mac or not hmac.compare_digest(mac, expected):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        session = Session(csrf=str(data["c"]), expires=int(data["e"]), key_hash=data.get("k"))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return session if session.expires > now.timestamp() else None


def anonymous(now: datetime) -> Session:
    return Session(csrf=secrets.token_urlsafe(24), expires=_epoch(now + timedelta(minutes=ANONYMOUS_MINUTES)))


def signed_in(key_hash: str, now: datetime) -> Session:
    # A fresh CSRF token at sign-in: a token seen before signing in never authorises a signed-in action.
    return Session(
        csrf=secrets.token_urlsafe(24),
        expires=_epoch(now + timedelta(hours=SESSION_HOURS)),
        key_hash=key_hash,
    )


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def from_cookies(header: str | None, secret: str, now: datetime) -> Session | None:
    if not header:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(COOKIE)
    return decode(morsel.value, secret, now) if morsel is not None else None


def cookie_header(value: str | None, *, max_age: int, secure: bool) -> str:
    """HttpOnly and SameSite=Strict always; Secure when the console is served over https. Path /console: the
    JSON API never sees the cookie (it authenticates by Bearer key only)."""
    parts = [f"{COOKIE}={value or ''}", "Path=/console", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def check_csrf(session: Session | None, given: str | None) -> None:
    if session is None or not given or not hmac.compare_digest(session.csrf, given):
        raise CsrfRefused("this form has expired or did not come from the console; reload the page and retry")


def principal(keys: KeyStore, session: Session | None, allowed: Iterable[str]) -> Principal:
    """Who the session is, read from the keys table now (never cached): revoked or unknown -> Unauthenticated,
    a role not in `allowed` -> Forbidden."""
    if session is None or session.key_hash is None:
        raise Unauthenticated("sign in with your API key")
    record = keys.get(session.key_hash)
    if record is None or record.revoked_at is not None or record.role not in SIGNABLE_ROLES:
        raise Unauthenticated("your API key was revoked or is unknown; sign in with a current key")
    allowed = tuple(allowed)
    if record.role not in allowed:
        raise Forbidden(f"your role ({record.role}) may not use this page or action")
    return Principal(role=record.role, name=record.name)


def sign_in(keys: KeyStore, key: str) -> tuple[str, Principal]:
    """The key's hash and who it is, when it is a current console key (sales, marketing or admin)."""
    key = key.strip()
    key_hash = hash_key(key) if key else ""
    record = keys.get(key_hash) if key_hash else None
    if record is None or record.revoked_at is not None:
        raise Unauthenticated("that API key is unknown or revoked")
    if record.role not in SIGNABLE_ROLES:
        raise Forbidden(f"a {record.role} key cannot sign in to the console; use a sales or marketing key")
    return key_hash, Principal(role=record.role, name=record.name)


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value if isinstance(value, str) else None

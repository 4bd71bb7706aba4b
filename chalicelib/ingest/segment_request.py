"""The request side of Segment-compatible tracking ingest: the bytes a client posted, as a JSON object.

Owns the envelope of `POST /v1/...` calls: body decoding (gzip members, gzip bombs, size limits, JSON
whatever the Content-Type) and the source's write key (HTTP Basic username, else `writeKey`). What the
messages inside mean is `segment.py`. Pure: no HTTP framework, no AWS.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from typing import Any

from chalicelib.errors import MalformedInput, TooLarge
from chalicelib.ingest import json_numbers
from chalicelib.ingest.headers import header

MAX_REQUEST_BYTES = 500 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


# ---------------------------------------------------------------------------------------------------------
# Request body


def decode_body(raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The request body as a JSON object: gunzipped when needed, size-limited, parsed whatever the type."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise TooLarge(f"request body is {len(raw)} bytes; the limit is {MAX_REQUEST_BYTES} bytes")
    if _is_gzip(raw, headers):
        raw = _gunzip(raw)
    if not raw.strip():
        raise MalformedInput("request body is empty; send a JSON object")
    body = _parse_json(raw)
    if not isinstance(body, dict):
        raise MalformedInput(f"request body must be a JSON object, got {json_type(body)}")
    return body


def _is_gzip(raw: bytes, headers: Mapping[str, str]) -> bool:
    codings = [c.strip().lower() for c in (header(headers, "Content-Encoding") or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        # Clients that forget the header still get understood: JSON never starts with the gzip magic.
        return raw.startswith(_GZIP_MAGIC)
    if codings not in (["gzip"], ["x-gzip"]):
        raise MalformedInput(f"Content-Encoding {', '.join(codings)!r} is not supported; send gzip or none")
    if raw.startswith(_GZIP_MAGIC):
        return True
    if raw.lstrip()[:1] in (b"{", b"["):
        return False  # an intermediary already inflated it and left the header behind
    raise MalformedInput("Content-Encoding is gzip but the body is not gzip data")


def _gunzip(raw: bytes) -> bytes:
    """Inflate every gzip member, stopping as soon as the output passes the limit (gzip bombs)."""
    out = bytearray()
    data = raw
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # max_length is never 0 (which would mean unlimited): out never exceeds the limit here.
            out += inflater.decompress(data, MAX_REQUEST_BYTES + 1 - len(out))
        except zlib.error as exc:
            raise MalformedInput(f"request body is not valid gzip data: {exc}") from exc
        if len(out) > MAX_REQUEST_BYTES:
            raise TooLarge(f"request body inflates to more than the {MAX_REQUEST_BYTES} byte limit")
        if not inflater.eof:
            raise MalformedInput("request body is truncated gzip data")
        data = inflater.unused_data.lstrip(b"\0")  # some writers pad the stream with zero bytes
    return bytes(out)


def _parse_json(raw: bytes) -> Any:
    try:
        return json_numbers.loads(raw)
    except UnicodeDecodeError as exc:
        raise MalformedInput("request body is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise MalformedInput(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise MalformedInput("request body is not valid JSON: nested too deeply") from exc


def json_type(value: Any) -> str:
    """A JSON value's type as an error names it to a person ("an array", "null"); messages use it too."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


# ---------------------------------------------------------------------------------------------------------
# Write key


def write_key_from(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """The source's write key: the HTTP Basic username (password ignored), else `writeKey` in the body."""
    from_header = _basic_username(header(headers, "Authorization"))
    if from_header:
        return from_header
    in_body = body.get("writeKey")
    if isinstance(in_body, str) and in_body.strip():
        return in_body.strip()
    return None


def _basic_username(authorization: str | None) -> str | None:
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic" or not credentials.strip():
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error and non-ASCII text are ValueErrors
        return None  # unreadable credentials are treated as absent; the body may still carry the key
    return decoded.partition(":")[0] or None

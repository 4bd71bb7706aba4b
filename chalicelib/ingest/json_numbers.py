"""The one JSON reader for untrusted bodies: numbers must be finite and of a size something can hold.

Python's `json` accepts `NaN`, `Infinity`, `1e400` (read as infinity) and integers of any length up to the
interpreter's digit limit (beyond which it raises a bare ValueError). None of these can be stored in
DynamoDB, compared, scored or written back out as JSON, so every body parser reads through `loads`, which
refuses them with MalformedInput (400) naming the problem. Syntax, encoding and nesting errors still surface
as `json.JSONDecodeError`, `UnicodeDecodeError` and `RecursionError`, for each caller to word its own way.
"""

from __future__ import annotations

import json
import math
from typing import Any

from chalicelib.errors import MalformedInput

# Far beyond any real id or amount (a UUID as an integer has 39 digits, a float's range ends near 1e308),
# and far below Python's 4,300-digit conversion limit; every integer this lets through converts to a float.
MAX_INTEGER_DIGITS = 100


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise MalformedInput(
            f"the body is not valid JSON for Leadloop: an integer of {digits} digits "
            f"(at most {MAX_INTEGER_DIGITS} digits)"
        )
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedInput(
            f"the body is not valid JSON for Leadloop: {text[:40]} is too large for a number "
            "(at most ~1.8e308)"
        )
    return value


def _constant(name: str) -> Any:
    raise MalformedInput(f"the body is not valid JSON: {name} is not a JSON number")


def loads(raw: bytes | str) -> Any:
    """`json.loads`, refusing non-finite numbers and over-long integers with MalformedInput."""
    return json.loads(raw, parse_int=_integer, parse_float=_finite, parse_constant=_constant)

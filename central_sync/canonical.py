"""The one canonical encoding lobbypay hashes and signs.

Canonical JSON: UTF-8, keys sorted by code point, no insignificant whitespace,
integers only (no floats, NaN or infinities — money is integer minor units),
strings, booleans, null, lists and objects with string keys. ``bytes`` are not
JSON values; callers put them in as lowercase hex strings.

The encoder refuses anything outside that set with :class:`CanonicalError`, and
:func:`decode` refuses input that is not already in canonical form, so a value
has exactly one encoding and a signature over it means one thing.
"""

from __future__ import annotations

import json
from typing import Any

# Bounds for what we accept from outside; our own entries are far smaller.
DEPTH_MAX = 32
INT_ABS_MAX = 2**63 - 1


class CanonicalError(ValueError):
    """A value cannot be encoded canonically, or bytes are not canonical JSON."""


_SCALARS = (str, bool, type(None))


def _check(value: Any, depth: int) -> None:
    if depth > DEPTH_MAX:
        raise CanonicalError(f"nesting deeper than {DEPTH_MAX}")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError("object keys must be strings")
            if not isinstance(item, _SCALARS):
                _check(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            if not isinstance(item, _SCALARS):
                _check(item, depth + 1)
    elif isinstance(value, int):
        if abs(value) > INT_ABS_MAX:
            raise CanonicalError("integer out of the signed 64-bit range")
    elif isinstance(value, float):
        raise CanonicalError("floats are not allowed; use integer minor units")
    elif not isinstance(value, _SCALARS):
        raise CanonicalError(f"type {type(value).__name__} is not canonical JSON")


def encode(value: Any, *, checked: bool = False) -> bytes:
    """Encode ``value`` canonically; raise :class:`CanonicalError` if it cannot be.

    ``checked=True`` skips the type walk for a caller that has just made the
    same checks itself (the journal's append path, which walks a body once for
    both types and card data).
    """
    if not checked:
        _check(value, 0)
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate ("\ud800") has no UTF-8 form, so no canonical one.
        raise CanonicalError("string is not valid Unicode (lone surrogate)") from None


def _no_float(text: str) -> Any:
    raise CanonicalError("floats are not allowed; use integer minor units")


def _no_constant(text: str) -> Any:
    raise CanonicalError(f"{text} is not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CanonicalError(f"duplicate key {key!r}")
        result[key] = value
    return result


def decode(data: bytes) -> Any:
    """Decode canonical JSON, refusing anything that would not re-encode identically."""
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text,
            parse_float=_no_float,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except CanonicalError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CanonicalError(f"not valid JSON: {exc.__class__.__name__}") from None
    if encode(value) != data:
        raise CanonicalError("JSON is valid but not in canonical form")
    return value

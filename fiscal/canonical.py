"""Canonical JSON (RFC 8785) of journal values and their SHA-256.

The journal's values are JSON objects with ASCII keys, strings free of lone surrogates, booleans,
null and integers within ±2^53 — never floats. For that domain, orjson with sorted keys emits
exactly the RFC 8785 bytes (property-tested against the reference ``rfc8785`` package in
``tests/fiscal/test_canonical.py``) about fifty times faster, which matters on the sale path.
Anything outside the domain is refused rather than silently serialised differently.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

MAX_SAFE_INTEGER = 2**53 - 1


class NotCanonicalisable(ValueError):
    """The value holds a float, a huge integer or a non-ASCII key."""


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise NotCanonicalisable(f"integer out of range at {path}")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise NotCanonicalisable(f"non-ASCII or non-string key at {path}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, orjson.Fragment):
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise NotCanonicalisable(f"{type(value).__name__} at {path} is not allowed in the journal")


def check_domain(value: Any) -> None:
    """Raise ``NotCanonicalisable`` unless ``value`` is in the journal's JSON domain."""
    _check(value, "$")


def canonical_json(value: Any, *, checked: bool = False) -> bytes:
    """Return the RFC 8785 canonical JSON bytes of ``value`` (journal domain only).

    ``checked=True`` skips the domain walk for values already known to be in the domain
    (records are strict models; free-form event details are checked when the event is built).
    ``orjson.Fragment`` values embed bytes that are already canonical.
    """
    if not checked:
        _check(value, "$")
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as error:
        raise NotCanonicalisable(str(error)) from error


def sha256_hex(data: bytes) -> str:
    """Return the lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()

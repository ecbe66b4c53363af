"""The verifier's own content hash: SHA-256 of the canonical JSON of an entry's sealed content.

Independent of the signer on purpose. The sealed content is the record plus every envelope field
that the data-to-sign does not carry itself. Canonical JSON is orjson with sorted keys, which is
RFC 8785 for the journal's domain (ASCII keys, integers within ±2^53, no floats); a value outside
that domain cannot have been hashed canonically and is reported instead of hashed.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Mapping
from typing import Any

import orjson

SEALED_FIELDS = ("alg", "at_local", "at_utc", "chain", "format_version", "key_id", "record",
                 "register_id", "seq", "store_id")
_DUMP = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_sealed_values = operator.itemgetter(*SEALED_FIELDS)


class NotCanonical(ValueError):
    """The value holds something canonical JSON of the journal cannot represent."""


def _first_offence(value: Any) -> str | None:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if not all(key.isascii() for key in item):
                return "a non-ASCII key"
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float:
            return f"the float {item!r}"
    return None


def check_record_domain(record: Mapping[str, Any], sealed: bytes) -> None:
    """Raise ``NotCanonical`` if ``record`` holds a float or a non-ASCII key.

    ``sealed`` is the sealed content's JSON as orjson writes it. Its keys are sorted and its
    values other than the record plain text or integers, so the record's JSON lies between the
    first ``"record":`` and the last ``,"register_id":``. The exact walk runs only when that
    JSON (a float always holds ``.``, ``e+`` or ``e-``) may hold a float — text can too — and
    on event details, the one free-form object of the journal, where a non-ASCII key could hide.
    """
    start, end = sealed.find(b'"record":'), sealed.rfind(b',"register_id":')
    maybe_float = (sealed.find(b".", start, end) >= 0 or sealed.find(b"e-", start, end) >= 0
                   or (sealed.find(b"+", start, end) >= 0
                       and sealed.find(b"e+", start, end) >= 0))
    details = record.get("details")
    if maybe_float or isinstance(details, dict):
        offence = _first_offence(record if maybe_float else details)
        if offence is not None:
            raise NotCanonical(f"{offence} in the record")


def content_hash(envelope: Mapping[str, Any]) -> str:
    """Return the hex SHA-256 of the canonical JSON of the sealed content of ``envelope``.

    The envelope's fields other than ``record`` are known to be text or integers.
    """
    sealed = dict(zip(SEALED_FIELDS, _sealed_values(envelope), strict=True))
    try:
        data = orjson.dumps(sealed, option=_DUMP)
    except orjson.JSONEncodeError as error:
        raise NotCanonical(str(error)) from error
    check_record_domain(envelope["record"], data)
    return hashlib.sha256(data).hexdigest()

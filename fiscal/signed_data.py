"""The data-to-sign strings: the one place that decides which bytes a signature covers.

Fields are joined by ``,``. Amounts are integer cents, ``-`` when negative. The VAT breakdown is
``rate:total_incl`` items joined by ``|``, rates in basis points on four digits, highest rate
first, ``0:0`` when empty. Date-times are ``YYYYMMDDHHMMSS`` in the store's local time. The
first flag is ``Y`` on chain sequence 1 (with an empty previous signature) and ``N`` otherwise.
Free text (operator, register, description, customer) has ``%``, ``,`` and ``|``
percent-encoded so that the string always splits back into the same fields. The last field is
the content hash: SHA-256 of the canonical JSON of the sealed content (``sealed_content``).

The verifier (``fiscal.verify``) rebuilds these strings with its own code, on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FORMAT_VERSION = 1
ALGORITHM = "ES256-det"
"""ECDSA P-256, SHA-256, RFC 6979 deterministic nonces, raw r‖s in base64url."""

OPERATION_TYPES = {"sale": "SALE", "return": "RETURN", "invoice": "INVOICE",
                   "credit_note": "CREDIT_NOTE"}


def escape(text: str) -> str:
    """Percent-encode the separators of the data-to-sign in free text."""
    return text.replace("%", "%25").replace(",", "%2C").replace("|", "%7C")


def breakdown_field(breakdown: Sequence[Mapping[str, Any]]) -> str:
    """Return the ``rate:incl|…`` field, highest rate first, ``0:0`` when empty."""
    items = sorted(breakdown, key=lambda v: -int(v["rate"]))
    return "|".join(f"{int(v['rate']):04d}:{int(v['incl'])}" for v in items) or "0:0"


def compact_date(iso_date: str) -> str:
    """Turn ``YYYY-MM-DD`` into ``YYYYMMDD``."""
    return iso_date.replace("-", "")


def sealed_content(entry_fields: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the content hash covers.

    That is the record and every envelope field not in the data-to-sign itself, so that no
    stored field is left unsigned.
    """
    keys = ("alg", "at_local", "at_utc", "chain", "format_version", "key_id", "record",
            "register_id", "seq", "store_id")
    return {key: entry_fields[key] for key in keys}


def data_to_sign(
    chain: str, record: Mapping[str, Any], *, local_time: str, register_id: str,
    chain_seq: int, prev_sig: str | None, content_hash: str,
) -> str:
    """Build the data-to-sign string of a record of ``chain``."""
    first = "Y" if chain_seq == 1 else "N"
    tail = [first, prev_sig or "", content_hash]
    register = escape(register_id)
    kind = record["type"]
    if kind in ("sale", "return"):
        head = [breakdown_field(record["breakdown"]), str(record["total"]), local_time,
                register, str(chain_seq), OPERATION_TYPES[kind]]
    elif kind in ("invoice", "credit_note"):
        head = [breakdown_field(record["breakdown"]), str(record["total"]), local_time,
                register, str(chain_seq), OPERATION_TYPES[kind],
                escape(record["customer"]["name"])]
    elif kind in ("day_closure", "month_closure", "year_closure"):
        period = compact_date(record["period_from"])
        if kind != "day_closure":
            period = f"{period}|{compact_date(record['period_to'])}"
        head = [breakdown_field(record["breakdown"]), str(record["period_total"]),
                str(record["perpetual_abs"]), local_time, period, str(chain_seq)]
    elif kind == "copy":
        original = record["original"]
        head = [register, str(chain_seq), escape(record["original_type"]),
                str(record["copy_number"]), escape(record["operator"]), local_time,
                escape(original["register_id"]), str(original["chain_seq"])]
    elif kind == "event":
        head = [str(chain_seq), str(record["code"]), escape(record["description"]), local_time,
                escape(record["operator"]), register]
    elif kind == "cash_movement":
        head = [record["kind"], str(record["amount"]), escape(record["tender"]), local_time,
                register, str(chain_seq), escape(record["operator"])]
    elif kind == "archive":
        head = [f"{compact_date(record['period_from'])}|{compact_date(record['period_to'])}",
                record["manifest_sha256"], str(record["entry_count"]), local_time, register,
                str(chain_seq)]
    else:
        raise ValueError(f"no data-to-sign format for record type {kind!r}")
    return ",".join(head + tail)


def head_data(register_id: str, chain: str, chain_seq: int, seq: int, sig: str) -> str:
    """Return the data-to-sign of a chain head: the last entry of ``chain``."""
    return ",".join(["HEAD", escape(register_id), chain, str(chain_seq), str(seq), sig])


def signature_extract(sig: str) -> str:
    """Return the printed signature extract: characters 3, 7, 13 and 19 (1-based)."""
    return "".join(sig[i - 1] for i in (3, 7, 13, 19))

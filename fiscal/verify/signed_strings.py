"""The verifier's own rebuild of the strings a signature covers (FISCAL.md "Data signed").

Written apart from the signer on purpose: if both sides agree, the format is what the
documentation says, not what one piece of code happens to do. Fields are joined by ``,``; free
text has ``%``, ``,`` and ``|`` percent-encoded; the VAT breakdown is ``rate:incl`` items (rate on
four digits, highest first) joined by ``|``, ``0:0`` when empty; date-times are the local
``YYYYMMDDHHMMSS``; the tail is the first flag, the previous signature (empty on the first
entry) and the content hash.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

Record = Mapping[str, Any]
Head = Callable[[Record, str, str, int], list[str]]
"""Builds the fields before the tail: ``(record, local_time, register, chain_seq)``."""


def escape(text: str) -> str:
    """Percent-encode the three separator characters of free text."""
    if not isinstance(text, str):
        raise TypeError("text expected")
    return text.replace("%", "%25").replace(",", "%2C").replace("|", "%7C")


def _int(value: Any) -> str:
    if type(value) is not int:
        raise TypeError("integer expected")
    return str(value)


def vat_field(breakdown: Any) -> str:
    """Return the ``rate:incl|…`` field of a breakdown, highest rate first."""
    if type(breakdown) is list and len(breakdown) == 1:  # the usual ticket: one rate
        rate, incl = breakdown[0]["rate"], breakdown[0]["incl"]
        if type(rate) is not int or type(incl) is not int or rate < 0:
            raise TypeError("breakdown rates and amounts must be integers")
        return f"{rate:04d}:{incl}"
    pairs = []
    for item in breakdown:
        rate, incl = item["rate"], item["incl"]
        if type(rate) is not int or type(incl) is not int or rate < 0:
            raise TypeError("breakdown rates and amounts must be integers")
        pairs.append((rate, incl))
    pairs.sort(reverse=True)
    return "|".join([f"{rate:04d}:{incl}" for rate, incl in pairs]) or "0:0"


def local_stamp(moment: dt.datetime) -> str:
    """Return ``YYYYMMDDHHMMSS`` of a (local) date-time."""
    return (f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
            f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}")


def _date(text: Any) -> str:
    return dt.date.fromisoformat(text).strftime("%Y%m%d")


_TICKET_KINDS = {"sale": "SALE", "return": "RETURN"}


def _ticket(r: Record, when: str, register: str, chain_seq: int) -> list[str]:
    return [vat_field(r["breakdown"]), _int(r["total"]), when, register, str(chain_seq),
            _TICKET_KINDS[r["type"]]]


def _invoice(r: Record, when: str, register: str, chain_seq: int) -> list[str]:
    kind = {"invoice": "INVOICE", "credit_note": "CREDIT_NOTE"}[r["type"]]
    return [vat_field(r["breakdown"]), _int(r["total"]), when, register, str(chain_seq),
            kind, escape(r["customer"]["name"])]


def _closure(r: Record, when: str, register: str, chain_seq: int) -> list[str]:
    period = _date(r["period_from"])
    if r["type"] != "day_closure":
        period += "|" + _date(r["period_to"])
    return [vat_field(r["breakdown"]), _int(r["period_total"]), _int(r["perpetual_abs"]),
            when, period, str(chain_seq)]


def _copy(r: Record, when: str, register: str, chain_seq: int) -> list[str]:
    original = r["original"]
    return [register, str(chain_seq), escape(r["original_type"]), _int(r["copy_number"]),
            escape(r["operator"]), when, escape(original["register_id"]),
            _int(original["chain_seq"])]


def _event(r: Record, when: str, register: str, chain_seq: int) -> list[str]:
    return [str(chain_seq), _int(r["code"]), escape(r["description"]), when,
            escape(r["operator"]), register]


def _cash(r: Record, when: str, register: str, chain_seq: int) -> list[str]:
    return [escape(r["kind"]), _int(r["amount"]), escape(r["tender"]), when, register,
            str(chain_seq), escape(r["operator"])]


def _archive(r: Record, when: str, register: str, chain_seq: int) -> list[str]:
    period = f"{_date(r['period_from'])}|{_date(r['period_to'])}"
    return [period, escape(r["manifest_sha256"]), _int(r["entry_count"]), when, register,
            str(chain_seq)]


HEADS: dict[str, Head] = {
    "sale": _ticket, "return": _ticket, "invoice": _invoice, "credit_note": _invoice,
    "day_closure": _closure, "month_closure": _closure, "year_closure": _closure,
    "copy": _copy, "event": _event, "cash_movement": _cash, "archive": _archive,
}


def data_to_sign(record: Record, *, local_time: dt.datetime, register_id: str, chain_seq: int,
                 prev_sig: str | None, content_hash: str) -> str:
    """Rebuild an entry's data-to-sign from its own fields.

    Raises ``KeyError`` if the type is unknown, ``KeyError``/``TypeError``/``ValueError`` if the
    record lacks what the format needs.
    """
    return signed_text(record, local_stamp(local_time), escape(register_id), chain_seq,
                       prev_sig, content_hash)


def signed_text(record: Record, when: str, register: str, chain_seq: int, prev_sig: str | None,
                content_hash: str) -> str:
    """``data_to_sign`` from the local time already stamped and the register already escaped."""
    head = HEADS[record["type"]](record, when, register, chain_seq)
    return ",".join([*head, "Y" if chain_seq == 1 else "N", prev_sig or "", content_hash])


def head_data(register_id: str, chain: str, chain_seq: int, seq: int, sig: str) -> bytes:
    """Return the bytes a chain head's signature covers."""
    return f"HEAD,{escape(register_id)},{chain},{chain_seq},{seq},{sig}".encode()

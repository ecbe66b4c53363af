"""What the cloud stores of an entry: its body exactly as received plus columns for reporting.

``entry_row`` reads a verified body (the verifier has checked its shape) and extracts the
columns HQ queries by: type, business date, operator, totals, the VAT breakdown, the tender
amounts (cash net of change, as the closures fold them) and the closure's perpetual totals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from cloud.ingest.wire import SCHEMA, BatchError

CLOSURES = frozenset({"day_closure", "month_closure", "year_closure"})
TICKETS = frozenset({"sale", "return", "invoice", "credit_note"})


class EntryRow(NamedTuple):
    """One entry's row of the ``entries`` table (box and epoch come with the batch).

    The first ``len(COLUMNS)`` fields are the table's columns in the order of ``COLUMNS``, so
    that ``row[:len(COLUMNS)]`` is what is stored.
    """

    seq: int
    chain: str
    chain_seq: int
    record_type: str
    event_code: int | None
    business_date: str | None
    at_utc: str
    store_id: str
    register_id: str
    operator: str | None
    training: bool
    ref_seq: int | None
    total: int | None
    total_excl: int | None
    total_vat: int | None
    vat: str | None
    tenders: str | None
    period_from: str | None
    period_to: str | None
    perpetual_total: int | None
    perpetual_abs: int | None
    sig: str
    body: str
    prev_sig: str | None
    key_event: Mapping[str, Any] | None
    """The details of an initialisation (260) or key rotation (1080) event."""


COLUMNS = EntryRow._fields[:EntryRow._fields.index("prev_sig")]
"""The columns of ``entries`` an ``EntryRow`` fills, in its order."""


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _ref_seq(record: Mapping[str, Any]) -> int | None:
    for name in ("original", "source"):
        ref = record.get(name)
        if isinstance(ref, Mapping):
            return _int_or_none(ref.get("seq"))
    return None


def _tenders(record: Mapping[str, Any]) -> str | None:
    if record.get("type") in CLOSURES:
        return _json(record.get("tenders"))
    payments = record.get("payments")
    if not isinstance(payments, Sequence):
        return None
    sums: dict[str, int] = {}
    for payment in payments:
        sums[payment["tender"]] = sums.get(payment["tender"], 0) + int(payment["amount"])
    if record.get("change"):
        sums["cash"] = sums.get("cash", 0) - int(record["change"])
    return orjson.dumps([{"tender": t, "amount": a} for t, a in sorted(sums.items())]).decode()


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _total(record: Mapping[str, Any]) -> int | None:
    kind = record.get("type")
    if kind in CLOSURES:
        return _int_or_none(record.get("period_total"))
    if kind == "cash_movement":
        return _int_or_none(record.get("amount"))
    return _int_or_none(record.get("total"))


def _key_event(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    details = record.get("details")
    if record.get("type") == "event" and record.get("code") in (260, 1080) and isinstance(
            details, Mapping):
        return details
    return None


def entry_row(body: str) -> EntryRow:
    """Extract the row of a verified entry body."""
    try:
        envelope = orjson.loads(body)
        record = envelope["record"]
        return EntryRow(
            seq=envelope["seq"], chain=envelope["chain"], chain_seq=envelope["chain_seq"],
            record_type=record["type"],
            event_code=_int_or_none(record.get("code")) if record["type"] == "event" else None,
            business_date=_str_or_none(record.get("business_date")),
            at_utc=envelope["at_utc"], store_id=envelope["store_id"],
            register_id=envelope["register_id"], operator=_str_or_none(record.get("operator")),
            training=record.get("training") is True, ref_seq=_ref_seq(record),
            total=_total(record), total_excl=_int_or_none(record.get("total_excl")),
            total_vat=_int_or_none(record.get("total_vat")), vat=_json(record.get("breakdown")),
            tenders=_tenders(record), period_from=_str_or_none(record.get("period_from")),
            period_to=_str_or_none(record.get("period_to")),
            perpetual_total=_int_or_none(record.get("perpetual_total")),
            perpetual_abs=_int_or_none(record.get("perpetual_abs")),
            sig=envelope["sig"], prev_sig=envelope["prev_sig"], body=body,
            key_event=_key_event(record))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise BatchError(SCHEMA, f"unreadable entry: {error!r}") from None

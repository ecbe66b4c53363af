"""Exports for the accountant and the auditor: FEC, a sales CSV and a box's journal (JSONL).

* **FEC** (*fichier des écritures comptables*, the 18 columns of the French tax code, article
  A47 A-1, ``|``-separated, amounts with a decimal comma): one entry (*écriture*) per day closure
  (Z) of each box — debit each tender, credit sales excluding VAT and VAT collected per rate.
  The account numbers are defaults of the French chart of accounts (``TENDER_ACCOUNTS``,
  ``707…``, ``44571…``) that the accountant maps to theirs.
* **sales CSV** (``;``-separated, decimal comma, UTF-8): per business day, box and VAT rate,
  the sales and returns' amounts excluding VAT, VAT, including VAT, and the ticket count.
* **journal**: the bodies of a box's entries exactly as signed, one per line, in seq order —
  ``tillbox cloud verify-export`` re-verifies such a file offline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from psycopg import sql

from cloud.hq.queries import Connection, Scope

FEC_COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum",
               "CompteLib", "CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib",
               "Debit", "Credit", "EcritureLet", "DateLet", "ValidDate", "Montantdevise",
               "Idevise")
JOURNAL = ("VT", "Ventes caisse")
TENDER_ACCOUNTS: dict[str, tuple[str, str]] = {
    "cash": ("530000", "Caisse"),
    "card": ("511500", "Cartes bancaires à encaisser"),
    "cheque": ("511200", "Chèques à encaisser"),
    "meal_voucher": ("511300", "Titres-restaurant à encaisser"),
    "gift_voucher": ("419100", "Bons d'achat"),
    "store_credit": ("419700", "Avoirs clients"),
}
OTHER_TENDER = ("471000", "Compte d'attente")
CSV_COLUMNS = ("date", "tenant", "store", "register", "box", "vat_rate", "total_excl",
               "total_vat", "total_incl", "tickets")
PAGE = 1000


def decimal_comma(cents: int) -> str:
    """Cents as a French decimal: ``-1234`` → ``-12,34``."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d}"


def _clean(text: Any) -> str:
    return " ".join(str(text or "").replace("|", "/").replace(";", ",").split())


def _rate_label(rate: int) -> str:
    return f"{rate // 100},{rate % 100:02d} %".replace(",00 %", " %")


def _accounts(closure: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """``(account, label, debit − credit)`` lines of a closure, balanced."""
    lines = []
    for tender in closure["tenders"] or []:
        account, label = TENDER_ACCOUNTS.get(tender["tender"], OTHER_TENDER)
        if account == OTHER_TENDER[0]:
            label = f"{label} ({tender['tender']})"
        lines.append((account, label, int(tender["amount"])))
    for line in closure["vat"] or []:
        rate = int(line["rate"])
        lines.append((f"707{rate:04d}", f"Ventes TVA {_rate_label(rate)}", -int(line["excl"])))
        lines.append((f"44571{rate:04d}", f"TVA collectée {_rate_label(rate)}",
                      -int(line["vat"])))
    return [line for line in lines if line[2]]


def fec_lines(closures: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    """The FEC file's lines (header first) for day closures in export order."""
    yield "|".join(FEC_COLUMNS)
    for number, closure in enumerate(closures, 1):
        day = closure["period_to"].strftime("%Y%m%d")
        piece = _clean(f"{closure['register_id']}-Z{closure['number']}")
        label = _clean(f"Z{closure['number']} {closure['store_id']} {closure['register_id']} "
                       f"{closure['period_to'].isoformat()}")
        valid = closure["at_utc"].astimezone(dt.UTC).strftime("%Y%m%d")
        for account, account_label, amount in _accounts(closure):
            debit, credit = (amount, 0) if amount > 0 else (0, -amount)
            yield "|".join((*JOURNAL, str(number), day, account, _clean(account_label), "", "",
                            piece, day, label, decimal_comma(debit), decimal_comma(credit), "",
                            "", valid, "", ""))


_DAY_CLOSURES = """
SELECT e.box_id, e.store_id, e.register_id, e.chain_seq AS number, e.at_utc, e.period_to,
    e.vat, e.tenders
FROM entries e JOIN boxes b ON b.box_id = e.box_id
WHERE e.record_type = 'day_closure' {scope}
ORDER BY e.period_to, e.store_id, e.box_id, e.seq
"""


async def fec(conn: Connection, scope: Scope) -> str:
    """The FEC of the day closures whose day is within the scope."""
    condition, params = scope.where("e.period_to")
    cursor = await conn.execute(sql.SQL(_DAY_CLOSURES).format(scope=condition), params)
    names = [column.name for column in cursor.description or ()]
    rows = [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]
    return "\r\n".join(fec_lines(rows)) + "\r\n"


_SALES_BY_RATE = """
SELECT e.business_date, b.tenant_id, e.store_id, e.register_id, e.box_id,
    (v ->> 'rate')::int AS rate, sum((v ->> 'excl')::bigint)::bigint,
    sum((v ->> 'vat')::bigint)::bigint, sum((v ->> 'incl')::bigint)::bigint, count(*)
FROM entries e JOIN boxes b ON b.box_id = e.box_id, jsonb_array_elements(e.vat) AS v
WHERE e.record_type IN ('sale', 'return') AND NOT e.training {scope}
GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6 DESC
"""


def csv_line(row: Sequence[Any]) -> str:
    """One CSV line of a sales-by-rate row."""
    day, tenant, store, register, box, rate, excl, vat, incl, count = row
    return ";".join((day.isoformat(), _clean(tenant), _clean(store), _clean(register),
                     _clean(box), decimal_comma(rate), decimal_comma(excl), decimal_comma(vat),
                     decimal_comma(incl), str(count)))


async def sales_csv(conn: Connection, scope: Scope) -> str:
    """Sales and returns per business day, box and VAT rate, as CSV."""
    condition, params = scope.where("e.business_date")
    cursor = await conn.execute(sql.SQL(_SALES_BY_RATE).format(scope=condition), params)
    lines = [";".join(CSV_COLUMNS), *(csv_line(row) for row in await cursor.fetchall())]
    return "\r\n".join(lines) + "\r\n"


async def journal_lines(conn: Connection, box_id: str, epoch: str, from_seq: int,
                        to_seq: int) -> AsyncIterator[bytes]:
    """A box's stored bodies from ``from_seq`` to ``to_seq``, one per line, page by page."""
    start = from_seq
    while start <= to_seq:
        rows = await (await conn.execute(
            "SELECT seq, body FROM entries WHERE box_id = %s AND epoch = %s AND seq >= %s "
            "AND seq <= %s ORDER BY seq LIMIT %s",
            (box_id, epoch, start, to_seq, PAGE))).fetchall()
        if not rows:
            return
        yield "".join(f"{body}\n" for _, body in rows).encode("utf-8")
        start = int(rows[-1][0]) + 1

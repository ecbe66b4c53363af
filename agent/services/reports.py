"""Reports over journal entries: X (running totals), Z (a stored closure), statistics, counts.

Pure functions: they read the entries they are given (``fiscal.chain.Entry``) and never the
journal, so the HTTP and the local MQTT APIs compute the same documents from the same entries.

- ``x_report``: what a day closure would fold now — per VAT rate, sales and returns, per tender,
  cash movements and the cash expected in the drawer. It folds with ``fiscal.closing.fold_day``,
  the very function the Z uses, so an X taken just before the Z equals it.
- ``closure_report``: a stored day, month or year closure, as a document.
- ``count_variances``: counted amounts against the expected ones, per tender.
- ``statistics``: revenue, tickets, average basket, top items, per cashier, tender and hour.

Only the ``ticket`` chain counts: training tickets (their own chain) are never in a report.
The expected cash is ``float + cash taken − change − cash refunds + cash in − cash out − safe
drops`` (``fold_day`` already signs cash out and safe drops negative).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from fiscal.chain import Entry
from fiscal.closing import fold_day
from fiscal.money import round_div, vat_from_excl

TICKET_TYPES = frozenset({"sale", "return"})
CLOSURE_TYPES = frozenset({"day_closure", "month_closure", "year_closure"})
HOURS = 24


class VatLine(BaseModel):
    """One VAT rate's amounts (cents): excluding VAT, VAT, including VAT."""

    rate: int
    excl: int
    vat: int
    incl: int


class TenderAmount(BaseModel):
    """The net amount taken in one tender (cents; refunds and change deducted)."""

    tender: str
    amount: int


class CashAmount(BaseModel):
    """The net amount of one kind of cash movement (cents; out and drops negative)."""

    kind: str
    amount: int


class Totals(BaseModel):
    """The totals a closure seals and an X report shows."""

    breakdown: list[VatLine]
    total_excl: int
    total_vat: int
    total: int
    sales_total: int
    sales_count: int
    returns_total: int
    returns_count: int
    ticket_count: int
    tenders: list[TenderAmount]
    cash: list[CashAmount]
    expected_cash: int


class XReport(Totals):
    """Running totals, without closing: of a business day, or since a cash session opened."""

    business_date: str
    from_seq: int | None
    through_seq: int


class ClosureReport(Totals):
    """A stored closure (Z for a day closure) with its place in the journal."""

    seq: int
    kind: str
    at_utc: str
    at_local: str
    signature_extract: str
    operator: str
    period_from: str
    period_to: str
    perpetual_total: int
    perpetual_abs: int
    first_ticket_seq: int | None
    last_ticket_seq: int | None
    automatic: bool


class TenderCount(BaseModel):
    """Expected against counted in one tender; ``variance = counted − expected``."""

    tender: str
    expected: int
    counted: int | None
    variance: int | None


class ItemStat(BaseModel):
    """An article over a period: net quantity (thousandths) and net revenue including VAT."""

    key: str
    label: str
    sku: str | None
    quantity_milli: int
    revenue: int


class OperatorStat(BaseModel):
    """A cashier over a period."""

    operator: str
    revenue: int
    sales_count: int
    returns_count: int
    returns_total: int


class HourStat(BaseModel):
    """One hour of the day (local time) over a period."""

    hour: int
    revenue: int
    sales_count: int


class Statistics(BaseModel):
    """Sales statistics over business dates ``date_from`` … ``date_to`` (inclusive)."""

    date_from: str
    date_to: str
    revenue_incl: int
    revenue_excl: int
    revenue_vat: int
    sales_total: int
    sales_count: int
    returns_total: int
    returns_count: int
    ticket_count: int
    average_basket: int
    top_by_revenue: list[ItemStat]
    top_by_quantity: list[ItemStat]
    by_operator: list[OperatorStat]
    by_tender: list[TenderAmount]
    by_hour: list[HourStat]


# -- X and Z ----------------------------------------------------------------------------------


def is_ticket(entry: Entry) -> bool:
    """A sale or return of the ``ticket`` chain (training excluded)."""
    return entry.chain == "ticket" and entry.record["type"] in TICKET_TYPES


def _expected_cash(tenders: Iterable[Mapping[str, Any]],
                   cash: Iterable[Mapping[str, Any]]) -> int:
    taken = sum(int(t["amount"]) for t in tenders if t["tender"] == "cash")
    return taken + sum(int(c["amount"]) for c in cash)


def totals_of(closure: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Totals`` fields of a closure record (folded or stored)."""
    breakdown = [VatLine(**{k: int(v[k]) for k in ("rate", "excl", "vat", "incl")})
                 for v in closure["breakdown"]]
    return {
        "breakdown": breakdown, "total_excl": sum(v.excl for v in breakdown),
        "total_vat": sum(v.vat for v in breakdown), "total": int(closure["period_total"]),
        "sales_total": int(closure["sales_total"]), "sales_count": int(closure["sale_count"]),
        "returns_total": int(closure["returns_total"]),
        "returns_count": int(closure["return_count"]),
        "ticket_count": int(closure["ticket_count"]),
        "tenders": [TenderAmount(tender=t["tender"], amount=int(t["amount"]))
                    for t in closure["tenders"]],
        "cash": [CashAmount(kind=c["kind"], amount=int(c["amount"])) for c in closure["cash"]],
        "expected_cash": _expected_cash(closure["tenders"], closure["cash"]),
    }


def x_report(entries: Iterable[Entry], *, business_date: dt.date, through_seq: int,
             from_seq: int | None = None) -> XReport:
    """Fold ``entries`` (tickets and cash movements; others ignored) as a Z would, unsigned."""
    tickets: list[tuple[int, Mapping[str, Any]]] = []
    cash: list[Mapping[str, Any]] = []
    for entry in entries:
        if is_ticket(entry):
            tickets.append((entry.chain_seq, entry.record))
        elif entry.record["type"] == "cash_movement":
            cash.append(entry.record)
    folded = fold_day(business_date, tickets, cash, None, operator="x-report")
    return XReport(business_date=business_date.isoformat(), from_seq=from_seq,
                   through_seq=through_seq, **totals_of(folded.model_dump(mode="json")))


def closure_report(entry: Entry) -> ClosureReport:
    """A stored closure entry as a document (``ValueError`` if it is not a closure)."""
    record = entry.record
    if record["type"] not in CLOSURE_TYPES:
        raise ValueError(f"entry {entry.seq} is not a closure")
    return ClosureReport(
        seq=entry.seq, kind=record["type"], at_utc=entry.at_utc, at_local=entry.at_local,
        signature_extract=entry.extract, operator=record["operator"],
        period_from=record["period_from"], period_to=record["period_to"],
        perpetual_total=int(record["perpetual_total"]),
        perpetual_abs=int(record["perpetual_abs"]),
        first_ticket_seq=record.get("first_ticket_seq"),
        last_ticket_seq=record.get("last_ticket_seq"),
        automatic=bool(record.get("automatic", False)), **totals_of(record))


def count_variances(expected: Totals, counted: Mapping[str, int]) -> list[TenderCount]:
    """Per tender: expected (cash: the expected cash) against counted, sorted by tender.

    Lists cash, every tender counted and every tender with a non-zero expected amount; a tender
    not counted has ``counted`` and ``variance`` null.
    """
    amounts = {t.tender: t.amount for t in expected.tenders if t.amount}
    amounts["cash"] = expected.expected_cash
    rows = []
    for tender in sorted(set(amounts) | set(counted)):
        want, got = amounts.get(tender, 0), counted.get(tender)
        rows.append(TenderCount(tender=tender, expected=want, counted=got,
                                variance=None if got is None else got - want))
    return rows


# -- statistics -------------------------------------------------------------------------------


def _line_incl(line: Mapping[str, Any], price_mode: str) -> int:
    """A line's net amount including VAT (computed on the line when prices exclude VAT)."""
    net = int(line["net"])
    return net if price_mode == "incl" else net + vat_from_excl(net, int(line["vat_rate"]))


class _Accumulator:
    """Running sums of the statistics while entries stream by."""

    def __init__(self) -> None:
        self.excl = self.incl = self.sales = self.returns = 0
        self.sales_count = self.returns_count = 0
        self.items: dict[str, list[Any]] = {}
        self.operators: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self.tenders: dict[str, int] = defaultdict(int)
        self.hours = [[0, 0] for _ in range(HOURS)]

    def add(self, entry: Entry) -> None:
        """Fold one ticket entry."""
        record = entry.record
        total, is_sale = int(record["total"]), record["type"] == "sale"
        self.incl += total
        self.excl += int(record["total_excl"])
        operator = self.operators[str(record["operator"])]
        operator[0] += total
        hour = self.hours[int(entry.at_local[11:13])]
        hour[0] += total
        if is_sale:
            self.sales, self.sales_count = self.sales + total, self.sales_count + 1
            operator[1] += 1
            hour[1] += 1
        else:
            self.returns, self.returns_count = self.returns + total, self.returns_count + 1
            operator[2] += 1
            operator[3] += total
        self._add_payments(record)
        self._add_lines(record)

    def _add_payments(self, record: Mapping[str, Any]) -> None:
        for payment in record["payments"]:
            self.tenders[str(payment["tender"])] += int(payment["amount"])
        if record.get("change"):
            self.tenders["cash"] -= int(record["change"])

    def _add_lines(self, record: Mapping[str, Any]) -> None:
        for line in record["lines"]:
            sku = line.get("sku")
            key = str(sku) if sku else f"label:{line['label']}"
            item = self.items.setdefault(key, [line["label"], sku, 0, 0])
            item[0] = line["label"]
            item[2] += int(line["quantity_milli"])
            item[3] += _line_incl(line, str(record["price_mode"]))


def _top(items: Mapping[str, list[Any]], top: int, index: int) -> list[ItemStat]:
    ranked = sorted(items.items(), key=lambda kv: (-int(kv[1][index]), kv[0]))[:top]
    return [ItemStat(key=key, label=v[0], sku=v[1], quantity_milli=v[2], revenue=v[3])
            for key, v in ranked]


def statistics(entries: Iterable[Entry], *, date_from: dt.date, date_to: dt.date,
               top: int = 10) -> Statistics:
    """Statistics of the ticket entries among ``entries`` (others, training, are skipped)."""
    acc = _Accumulator()
    for entry in entries:
        if is_ticket(entry):
            acc.add(entry)
    return Statistics(
        date_from=date_from.isoformat(), date_to=date_to.isoformat(),
        revenue_incl=acc.incl, revenue_excl=acc.excl, revenue_vat=acc.incl - acc.excl,
        sales_total=acc.sales, sales_count=acc.sales_count, returns_total=acc.returns,
        returns_count=acc.returns_count, ticket_count=acc.sales_count + acc.returns_count,
        average_basket=round_div(acc.sales, acc.sales_count) if acc.sales_count else 0,
        top_by_revenue=_top(acc.items, top, 3), top_by_quantity=_top(acc.items, top, 2),
        by_operator=[OperatorStat(operator=name, revenue=v[0], sales_count=v[1],
                                  returns_count=v[2], returns_total=v[3])
                     for name, v in sorted(acc.operators.items())],
        by_tender=[TenderAmount(tender=t, amount=a) for t, a in sorted(acc.tenders.items())],
        by_hour=[HourStat(hour=h, revenue=v[0], sales_count=v[1])
                 for h, v in enumerate(acc.hours)],
    )

"""Closures: business dates, and folding a period's records into a signed closure record.

A day closure folds the ``ticket`` chain records (sales and returns, never training) and the
cash movements of one business date; a month closure folds the day closures of its month; a
year closure folds the month closures of its fiscal year. Perpetual totals continue from the
previous closure of the same kind: ``perpetual_total`` adds the period total (sales minus
returns) and ``perpetual_abs`` adds sales plus the absolute value of returns, so it never
decreases.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fiscal.records import CashTotal, Closure, TenderTotal, VatTotal

ClosureKind = Literal["day_closure", "month_closure", "year_closure"]


def business_date(moment: dt.datetime, timezone: str, day_starts_at_hour: int) -> dt.date:
    """Return the business date of an instant: local date, shifted by the day's start hour."""
    local = moment.astimezone(ZoneInfo(timezone))
    return (local - dt.timedelta(hours=day_starts_at_hour)).date()


def day_end(day: dt.date, timezone: str, day_starts_at_hour: int) -> dt.datetime:
    """Return the instant a business date ends (the next one starts)."""
    start = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(day_starts_at_hour),
                                ZoneInfo(timezone))
    return start.astimezone(dt.UTC)


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    """Return the first and last dates of ``day``'s month."""
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def fiscal_year_bounds(day: dt.date, start_month: int) -> tuple[dt.date, dt.date]:
    """Return the first and last dates of the fiscal year containing ``day``."""
    year = day.year if day.month >= start_month else day.year - 1
    first = dt.date(year, start_month, 1)
    return first, dt.date(year + 1, start_month, 1) - dt.timedelta(days=1)


def _sum_breakdowns(breakdowns: Iterable[Iterable[Mapping[str, Any]]]) -> tuple[VatTotal, ...]:
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for breakdown in breakdowns:
        for item in breakdown:
            acc = sums[int(item["rate"])]
            acc[0] += int(item["excl"])
            acc[1] += int(item["vat"])
            acc[2] += int(item["incl"])
    return tuple(VatTotal(rate=rate, excl=v[0], vat=v[1], incl=v[2])
                 for rate, v in sorted(sums.items(), reverse=True))


def _tender_totals(tickets: Iterable[Mapping[str, Any]]) -> tuple[TenderTotal, ...]:
    sums: dict[str, int] = defaultdict(int)
    for ticket in tickets:
        for payment in ticket["payments"]:
            sums[payment["tender"]] += int(payment["amount"])
        if ticket.get("change"):
            sums["cash"] -= int(ticket["change"])
    return tuple(TenderTotal(tender=t, amount=a) for t, a in sorted(sums.items()))


def _cash_totals(movements: Iterable[Mapping[str, Any]]) -> tuple[CashTotal, ...]:
    sums: dict[str, int] = defaultdict(int)
    for movement in movements:
        sign = -1 if movement["kind"] in ("cash_out", "safe_drop") else 1
        sums[movement["kind"]] += sign * int(movement["amount"])
    return tuple(CashTotal(kind=k, amount=a) for k, a in sorted(sums.items()))


def fold_day(
    day: dt.date, tickets: list[tuple[int, Mapping[str, Any]]],
    cash: list[Mapping[str, Any]], previous: Mapping[str, Any] | None, *,
    operator: str, automatic: bool = False,
) -> Closure:
    """Fold one business date's tickets ``(chain_seq, record)`` and cash movements."""
    records = [record for _, record in tickets]
    sales = sum(int(r["total"]) for r in records if r["type"] == "sale")
    returns = sum(int(r["total"]) for r in records if r["type"] == "return")
    seqs = [chain_seq for chain_seq, _ in tickets]
    return Closure(
        type="day_closure", operator=operator, period_from=day.isoformat(),
        period_to=day.isoformat(), breakdown=_sum_breakdowns(r["breakdown"] for r in records),
        sales_total=sales, returns_total=returns, period_total=sales + returns,
        perpetual_total=int(previous["perpetual_total"] if previous else 0) + sales + returns,
        perpetual_abs=int(previous["perpetual_abs"] if previous else 0) + sales - returns,
        ticket_count=len(records), sale_count=sum(r["type"] == "sale" for r in records),
        return_count=sum(r["type"] == "return" for r in records),
        first_ticket_seq=min(seqs, default=None), last_ticket_seq=max(seqs, default=None),
        folded_count=len(records), tenders=_tender_totals(records), cash=_cash_totals(cash),
        automatic=automatic,
    )


def _merge_named(items: Iterable[Iterable[Mapping[str, Any]]], key: str) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for group in items:
        for item in group:
            sums[str(item[key])] += int(item["amount"])
    return dict(sorted(sums.items()))


def fold_period(
    kind: ClosureKind, period: tuple[dt.date, dt.date], children: list[Mapping[str, Any]],
    previous: Mapping[str, Any] | None, *, operator: str, automatic: bool = False,
) -> Closure:
    """Fold the child closures (days of a month, months of a year) of ``period``."""
    sales = sum(int(c["sales_total"]) for c in children)
    returns = sum(int(c["returns_total"]) for c in children)
    firsts = [c["first_ticket_seq"] for c in children if c["first_ticket_seq"] is not None]
    lasts = [c["last_ticket_seq"] for c in children if c["last_ticket_seq"] is not None]
    return Closure(
        type=kind, operator=operator, period_from=period[0].isoformat(),
        period_to=period[1].isoformat(),
        breakdown=_sum_breakdowns(c["breakdown"] for c in children),
        sales_total=sales, returns_total=returns, period_total=sales + returns,
        perpetual_total=int(previous["perpetual_total"] if previous else 0) + sales + returns,
        perpetual_abs=int(previous["perpetual_abs"] if previous else 0) + sales - returns,
        ticket_count=sum(int(c["ticket_count"]) for c in children),
        sale_count=sum(int(c["sale_count"]) for c in children),
        return_count=sum(int(c["return_count"]) for c in children),
        first_ticket_seq=min(firsts, default=None), last_ticket_seq=max(lasts, default=None),
        folded_count=len(children),
        tenders=tuple(TenderTotal(tender=t, amount=a) for t, a in
                      _merge_named((c["tenders"] for c in children), "tender").items()),
        cash=tuple(CashTotal(kind=k, amount=a) for k, a in
                   _merge_named((c["cash"] for c in children), "kind").items()),
        automatic=automatic,
    )

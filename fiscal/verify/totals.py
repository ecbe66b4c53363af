"""Closures against the verifier's own folds, and the perpetual totals (main process).

A day closure must equal the fold of the ``ticket`` chain records and cash movements of its
business date read before it; a month closure the fold of its days' closures; a year closure the
fold of its months' closures. ``perpetual_total`` and ``perpetual_abs`` continue from the previous
closure of the same kind (``abs`` adds sales and the absolute value of returns, so it never
decreases). Nothing may be dated in a period after the closure that sealed it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fiscal.verify import findings as f
from fiscal.verify.findings import Finding, Where
from fiscal.verify.folds import DayFold, Segment

Totals = dict[str, Any]
"""A closure's comparable amounts, normalised (zero entries dropped from the sub-totals)."""

COUNTED = ("sales_total", "returns_total", "period_total", "ticket_count", "sale_count",
           "return_count", "folded_count")
CHILD = {"month_closure": "day_closure", "year_closure": "month_closure"}


def _nonzero(pairs: Iterable[tuple[Any, int]]) -> dict[Any, int]:
    return {name: amount for name, amount in pairs if amount}


def fold_totals(fold: DayFold) -> Totals:
    """Return the totals a day closure of ``fold`` must state."""
    return {
        "breakdown": {r: tuple(v) for r, v in fold.rates.items() if any(v)},
        "sales_total": fold.sales, "returns_total": fold.returns,
        "period_total": fold.sales + fold.returns,
        "ticket_count": fold.sale_count + fold.return_count, "sale_count": fold.sale_count,
        "return_count": fold.return_count, "folded_count": fold.sale_count + fold.return_count,
        "first_ticket_seq": fold.first_ticket, "last_ticket_seq": fold.last_ticket,
        "tenders": _nonzero(fold.tenders.items()), "cash": _nonzero(fold.cash.items()),
    }


def stated_totals(record: Mapping[str, Any]) -> Totals:
    """Return the totals a closure record states, normalised like ``fold_totals``."""
    breakdown = {}
    for item in record["breakdown"]:
        amounts = (int(item["excl"]), int(item["vat"]), int(item["incl"]))
        if any(amounts):
            breakdown[int(item["rate"])] = amounts
    totals: Totals = {name: _count(record[name]) for name in COUNTED}
    totals.update(
        breakdown=breakdown, first_ticket_seq=record["first_ticket_seq"],
        last_ticket_seq=record["last_ticket_seq"],
        tenders=_nonzero((t["tender"], int(t["amount"])) for t in record["tenders"]),
        cash=_nonzero((c["kind"], int(c["amount"])) for c in record["cash"]))
    return totals


def _count(value: Any) -> int:
    if type(value) is not int:
        raise TypeError("integer expected")
    return value


def _sum_maps(maps: Iterable[Mapping[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for one in maps:
        for key, value in one.items():
            if isinstance(value, tuple):
                acc = out.get(key, (0, 0, 0))
                out[key] = tuple(a + b for a, b in zip(acc, value, strict=True))
            else:
                out[key] = out.get(key, 0) + value
    return {k: v for k, v in out.items() if (any(v) if isinstance(v, tuple) else v)}


def period_totals(children: list[Totals]) -> Totals:
    """Return the totals a month (year) closure of these day (month) closures must state."""
    firsts = [c["first_ticket_seq"] for c in children if c["first_ticket_seq"] is not None]
    lasts = [c["last_ticket_seq"] for c in children if c["last_ticket_seq"] is not None]
    totals: Totals = {name: sum(c[name] for c in children) for name in COUNTED}
    totals.update(
        folded_count=len(children), breakdown=_sum_maps(c["breakdown"] for c in children),
        first_ticket_seq=min(firsts, default=None), last_ticket_seq=max(lasts, default=None),
        tenders=_sum_maps(c["tenders"] for c in children),
        cash=_sum_maps(c["cash"] for c in children))
    return totals


def _differences(expected: Totals, stated: Totals) -> list[str]:
    return [f"{name} {stated[name]!r} (fold: {want!r})" for name, want in expected.items()
            if stated[name] != want]


def period_problem(record: Mapping[str, Any]) -> str | None:
    """Return why a closure's period is not a day, a calendar month or a twelve-month year."""
    start = dt.date.fromisoformat(record["period_from"])
    end = dt.date.fromisoformat(record["period_to"])
    kind = record["type"]
    if kind == "day_closure":
        expected = start
    else:
        months = 1 if kind == "month_closure" else 12
        following = dt.date(start.year + (start.month - 1 + months) // 12,
                            (start.month - 1 + months) % 12 + 1, 1)
        expected = following - dt.timedelta(days=1)
    if end != expected or (kind != "day_closure" and start.day != 1):
        return f"period {start}..{end} is not one {kind.split('_')[0]}"
    return None


class Closures:
    """Checks the closures and folds of a journal read in order."""

    def __init__(self, complete: Callable[[str], bool], *, partial: bool) -> None:
        self.complete = complete
        """Whether every record dated on a business date was read (partial reads)."""
        self.partial = partial
        self.findings: list[Finding] = []
        self.pending: dict[str, DayFold] = {}
        self.children: dict[str, list[tuple[str, Totals]]] = {
            "day_closure": [], "month_closure": []}
        self.previous: dict[str, Mapping[str, Any]] = {}
        self.closed_through = ""

    def segment(self, segment: Segment) -> None:
        """Take the next segment of folds or the next closure."""
        kind, value = segment
        if kind == "fold":
            self._fold(value)
        else:
            where, record = value
            try:
                self._closure(where, record)
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                self.findings.append(f.found(f.BAD_RECORD, f"malformed closure: {error!r}",
                                             where))

    def seed(self, closures: Mapping[str, Mapping[str, Any]]) -> None:
        """Continue a replaced box's last closures: their periods are closed, their totals go on."""
        for kind, closure in closures.items():
            self.previous[kind] = closure
            self.closed_through = max(self.closed_through, str(closure.get("period_to", "")))

    def _fold(self, folds: Mapping[str, DayFold]) -> None:
        for date, fold in folds.items():
            if date <= self.closed_through:
                self.findings += [f.found(f.AFTER_CLOSURE, f"dated {date}, after the closure "
                                          f"through {self.closed_through}", w)
                                  for w in fold.locations()]
            elif date in self.pending:
                self.pending[date].merge(fold)
            else:
                self.pending[date] = fold

    def _closure(self, where: Where, record: Mapping[str, Any]) -> None:
        kind, start = record["type"], record["period_from"]
        if problem := period_problem(record):
            self.findings.append(f.found(f.CLOSURE_MISMATCH, problem, where))
        previous = self.previous.get(kind)
        if previous is not None and start <= previous.get("period_to", ""):
            self.findings.append(f.found(f.AFTER_CLOSURE, f"{start} is already closed", where))
        stated = stated_totals(record)
        expected = self._expected(kind, record)
        if self.complete(start) and (differences := _differences(expected, stated)):
            self.findings.append(f.found(f.CLOSURE_MISMATCH, "; ".join(differences), where))
        self._perpetual(where, record, previous)
        self.previous[kind] = record
        if kind in self.children:
            self.children[kind].append((start, stated))
        self.closed_through = max(self.closed_through, record["period_to"])

    def _expected(self, kind: str, record: Mapping[str, Any]) -> Totals:
        start, end = record["period_from"], record["period_to"]
        if kind == "day_closure":
            return fold_totals(self.pending.pop(start, DayFold()))
        pool = self.children[CHILD[kind]]
        inside = [totals for date, totals in pool if start <= date <= end]
        pool[:] = [(date, totals) for date, totals in pool if not start <= date <= end]
        return period_totals(inside)

    def _perpetual(self, where: Where, record: Mapping[str, Any],
                   previous: Mapping[str, Any] | None) -> None:
        if previous is None and self.partial:
            return  # a partial read starts its perpetual totals at its first closure
        base_total = int(previous["perpetual_total"]) if previous else 0
        base_abs = int(previous["perpetual_abs"]) if previous else 0
        sales, returns = int(record["sales_total"]), int(record["returns_total"])
        want = (base_total + sales + returns, base_abs + sales - returns)
        got = (int(record["perpetual_total"]), int(record["perpetual_abs"]))
        if got != want or got[1] < base_abs or sales < 0 or returns > 0:
            self.findings.append(f.found(f.PERPETUAL_BREAK, f"perpetual totals {got} do not "
                                         f"continue the previous closure's: {want}", where))

"""What a chunk of entries contributes to the journal-wide totals (built in worker processes).

Tickets and cash movements are folded per business date into ``DayFold``s — the verifier's own
fold, to be compared with the day closures. A chunk's folds are cut into segments at each closure
so that the main process sees them in journal order. Entries other records may refer to (tickets
and invoices) go into a compact ``RefTable``; closures, copies, returns and invoices are passed on
with their records for the main process's checks. Everything per entry is kept in flat integer
arrays, which cross process boundaries at almost no cost.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fiscal.verify.findings import Where

CLOSURE_TYPES = frozenset({"day_closure", "month_closure", "year_closure"})
REFERRING_TYPES = frozenset({"copy", "return", "invoice", "credit_note"})
REF_CHAINS = ("ticket", "training", "invoice")
REF_TYPES = ("sale", "return", "invoice", "credit_note")
NEGATIVE_CASH = frozenset({"cash_out", "safe_drop"})


class Ref(NamedTuple):
    """An entry other records may reference, with what their checks need of it."""

    chain: str
    chain_seq: int
    type: str
    training: bool
    total: int
    lines: dict[int, tuple[int, int]]
    """For sales: line_no → (quantity_milli, net)."""


class RefTable:
    """The referable entries of a chunk, in flat integer arrays.

    Per entry: chain, chain_seq, type, training, total, line count, then (line_no,
    quantity_milli, net) per line of a sale; ``seqs`` and ``offsets`` index it.
    """

    def __init__(self) -> None:
        self.data = array("q")
        self.seqs = array("q")
        self.offsets = array("q")

    def add(self, seq: int, chain: str, chain_seq: int, record: Mapping[str, Any]) -> None:
        """Remember one entry (skipped when its fields are not plain integers)."""
        kind = record["type"]
        lines = record.get("lines") if kind == "sale" else None
        try:
            values = [REF_CHAINS.index(chain), chain_seq, REF_TYPES.index(kind),
                      record.get("training") is True, record["total"], len(lines or ())]
            for line in lines or ():
                values += (line["line_no"], line["quantity_milli"], line["net"])
            packed = array("q", values)
        except (ValueError, TypeError, KeyError, OverflowError):
            return  # a malformed record, reported by the entry checks
        self.offsets.append(len(self.data))
        self.seqs.append(seq)
        self.data += packed

    def find(self, seq: int) -> Ref | None:
        """Return the entry ``seq`` if this table holds it."""
        at = bisect.bisect_left(self.seqs, seq)
        if at == len(self.seqs) or self.seqs[at] != seq:
            if seq not in self.seqs:  # seqs out of order: a tampered journal
                return None
            at = self.seqs.index(seq)
        start = self.offsets[at]
        chain, chain_seq, kind, training, total, count = self.data[start:start + 6]
        body = self.data[start + 6:start + 6 + 3 * count]
        lines = {body[i]: (body[i + 1], body[i + 2]) for i in range(0, len(body), 3)}
        return Ref(REF_CHAINS[chain], chain_seq, REF_TYPES[kind], bool(training), total, lines)


@dataclass(slots=True)
class DayFold:
    """The verifier's fold of one business date's tickets and cash movements."""

    rates: dict[int, list[int]] = field(default_factory=dict)
    sales: int = 0
    returns: int = 0
    sale_count: int = 0
    return_count: int = 0
    first_ticket: int | None = None
    last_ticket: int | None = None
    tenders: dict[str, int] = field(default_factory=dict)
    cash: dict[str, int] = field(default_factory=dict)
    folded: array[int] = field(default_factory=lambda: array("q"))
    """(seq, chain_seq, 1 for cash) of every record folded, to report late ones."""

    def add_ticket(self, record: Mapping[str, Any], seq: int, chain_seq: int) -> None:
        """Fold a sale or return of the ``ticket`` chain."""
        rates, tenders = self.rates, self.tenders
        for item in record["breakdown"]:
            acc = rates.get(item["rate"])
            if acc is None:
                acc = rates[item["rate"]] = [0, 0, 0]
            acc[0] += item["excl"]
            acc[1] += item["vat"]
            acc[2] += item["incl"]
        if record["type"] == "sale":
            self.sales += record["total"]
            self.sale_count += 1
        else:
            self.returns += record["total"]
            self.return_count += 1
        for payment in record["payments"]:
            tenders[payment["tender"]] = tenders.get(payment["tender"], 0) + payment["amount"]
        tenders["cash"] = tenders.get("cash", 0) - record["change"]
        if self.first_ticket is None or chain_seq < self.first_ticket:
            self.first_ticket = chain_seq
        if self.last_ticket is None or chain_seq > self.last_ticket:
            self.last_ticket = chain_seq
        self.folded.extend((seq, chain_seq, 0))

    def add_cash(self, record: Mapping[str, Any], seq: int, chain_seq: int) -> None:
        """Fold a cash movement (cash out and safe drops count negative)."""
        kind = record["kind"]
        sign = -1 if kind in NEGATIVE_CASH else 1
        self.cash[kind] = self.cash.get(kind, 0) + sign * record["amount"]
        self.folded.extend((seq, chain_seq, 1))

    def merge(self, other: DayFold) -> None:
        """Add another fold of the same date (read later in the journal)."""
        for rate, sums in other.rates.items():
            acc = self.rates.setdefault(rate, [0, 0, 0])
            for i in range(3):
                acc[i] += sums[i]
        self.sales += other.sales
        self.returns += other.returns
        self.sale_count += other.sale_count
        self.return_count += other.return_count
        self.first_ticket = _pick(min, self.first_ticket, other.first_ticket)
        self.last_ticket = _pick(max, self.last_ticket, other.last_ticket)
        for name, amount in other.tenders.items():
            self.tenders[name] = self.tenders.get(name, 0) + amount
        for name, amount in other.cash.items():
            self.cash[name] = self.cash.get(name, 0) + amount
        self.folded += other.folded

    def locations(self) -> list[Where]:
        """Where each folded record sits."""
        data = self.folded
        return [(data[i], "cash" if data[i + 2] else "ticket", data[i + 1])
                for i in range(0, len(data), 3)]


def _pick(choose: Any, a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return a if b is None else b
    return int(choose(a, b))


Segment = tuple[str, Any]
"""``("fold", {date: DayFold})`` or ``("closure", (where, record))``, in journal order."""


@dataclass
class Contribution:
    """Everything a chunk contributes to the journal-wide checks."""

    segments: list[Segment] = field(default_factory=list)
    refs: RefTable = field(default_factory=RefTable)
    referring: list[tuple[Where, dict[str, Any]]] = field(default_factory=list)
    _days: dict[str, DayFold] = field(default_factory=dict)

    def add(self, where: Where, record: dict[str, Any]) -> None:
        """Take one readable entry's record into account."""
        seq, chain, chain_seq = where
        kind = record.get("type")
        if type(kind) is not str or seq is None or chain is None or chain_seq is None:
            return
        if chain == "ticket" or chain == "cash":
            self._fold(seq, chain, chain_seq, kind, record)
        elif kind in CLOSURE_TYPES:
            self._flush()
            self.segments.append(("closure", (where, record)))
        if kind in REF_TYPES:
            self.refs.add(seq, chain, chain_seq, record)
        if kind in REFERRING_TYPES:
            self.referring.append((where, record))

    def _fold(self, seq: int, chain: str, chain_seq: int, kind: str,
              record: Mapping[str, Any]) -> None:
        date = record.get("business_date")
        if type(date) is not str:
            return
        day = self._days.get(date)
        if day is None:
            day = self._days[date] = DayFold()
        try:
            if chain == "cash" and kind == "cash_movement":
                day.add_cash(record, seq, chain_seq)
            elif chain == "ticket" and (kind == "sale" or kind == "return"):
                day.add_ticket(record, seq, chain_seq)
        except (KeyError, TypeError, ValueError, OverflowError):
            return  # reported as a malformed record by the entry checks

    def _flush(self) -> None:
        if self._days:
            self.segments.append(("fold", self._days))
            self._days = {}

    def close(self) -> Contribution:
        """Finish the chunk: flush the last fold segment."""
        self._flush()
        return self

"""Records that refer to earlier ones: copies, returns, invoices and credit notes (main process).

Copies of an original are numbered 1, 2, … in journal order. A return refers to an earlier sale
(not a training one) and, line by line, never takes back more quantity or amount than was sold,
counting earlier returns. An invoice is issued once, for an earlier sale (a credit note for a
return), with the same total. A reference names the original by seq, chain and chain_seq; all
three must agree. In a partial read, originals before the first entry read are taken as given.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

from fiscal.verify import findings as f
from fiscal.verify.findings import Finding, Where
from fiscal.verify.folds import Ref, RefTable

COPYABLE = frozenset({"sale", "return", "invoice", "credit_note"})
INVOICED = {"invoice": "sale", "credit_note": "return"}


class References:
    """Checks referring records against what was read before them."""

    def __init__(self, *, partial: bool) -> None:
        self.partial = partial
        self.first_seq: int | None = None
        self.findings: list[Finding] = []
        self.tables: list[RefTable] = []
        self.firsts: list[int] = []
        self.copies: dict[int, int] = {}
        self.returned: dict[tuple[int, Any], list[int]] = {}
        self.invoiced: set[int] = set()

    def add_refs(self, table: RefTable) -> None:
        """Remember the referable entries of the next chunk."""
        if table.seqs:
            self.tables.append(table)
            self.firsts.append(table.seqs[0])

    def _find(self, seq: int) -> Ref | None:
        at = bisect.bisect_right(self.firsts, seq) - 1
        return self.tables[at].find(seq) if at >= 0 else None

    def check(self, where: Where, record: Mapping[str, Any]) -> None:
        """Check one copy, return, invoice or credit note."""
        kind = record["type"]
        try:
            if kind == "copy":
                self._copy(where, record)
            elif kind == "return":
                self._return(where, record)
            else:
                self._invoice(where, record)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            self._report(f.BAD_RECORD, f"malformed reference in a {kind}: {error!r}", where)

    def _report(self, code: str, message: str, where: Where) -> None:
        self.findings.append(f.found(code, message, where))

    def _original(self, where: Where, reference: Mapping[str, Any], types: frozenset[str], *,
                  training: bool = False) -> tuple[int, Ref | None] | None:
        """Return ``(seq, ref)`` of a valid original, or ``None`` after reporting why not.

        ``ref`` is ``None`` for an original before the first entry of a partial read.
        """
        seq = reference["seq"]
        if type(seq) is not int:
            raise TypeError("reference seq is not an integer")
        ref = self._find(seq)
        if ref is None and self.partial and self.first_seq is not None and seq < self.first_seq:
            return seq, None
        problem = _reference_problem(where, seq, reference, ref, types, training)
        if problem is not None:
            self._report(f.BAD_REFERENCE, problem, where)
            return None
        return seq, ref

    def _copy(self, where: Where, record: Mapping[str, Any]) -> None:
        found = self._original(where, record["original"], COPYABLE, training=True)
        if found is None:
            return
        seq, ref = found
        if ref is not None and record["original_type"] != ref.type.upper():
            self._report(f.BAD_REFERENCE, f"original_type {record['original_type']!r} is not "
                                          f"the original's {ref.type}", where)
        number = record["copy_number"]
        expected = self.copies.get(seq, 0) + 1
        if number != expected and (ref is not None or seq in self.copies):
            self._report(f.COPY_NUMBER, f"copy number {number}, expected {expected}", where)
        self.copies[seq] = int(number)

    def _return(self, where: Where, record: Mapping[str, Any]) -> None:
        found = self._original(where, record["original"], frozenset({"sale"}))
        if found is None:
            return
        seq, ref = found
        if ref is None:
            return
        for line in record["lines"]:
            number = line["original_line_no"]
            if number not in ref.lines:
                self._report(f.BAD_REFERENCE, f"the original has no line {number}", where)
                continue
            quantity, net = ref.lines[number]
            done = self.returned.setdefault((seq, number), [0, 0])
            done[0] -= int(line["quantity_milli"])
            done[1] -= int(line["net"])
            if done[0] > quantity or abs(done[1]) > abs(net):
                self._report(f.OVER_RETURN, f"line {number}: {done[0]} thousandths ({done[1]} "
                                            f"cents) returned of {quantity} ({net}) sold", where)

    def _invoice(self, where: Where, record: Mapping[str, Any]) -> None:
        kind = record["type"]
        found = self._original(where, record["source"], frozenset({INVOICED[kind]}))
        if found is None:
            return
        seq, ref = found
        if seq in self.invoiced:
            self._report(f.BAD_REFERENCE, f"entry {seq} was already invoiced", where)
        self.invoiced.add(seq)
        if ref is not None and ref.total != record["total"]:
            self._report(f.INVOICE_MISMATCH, f"total {record['total']} is not the source's "
                                             f"{ref.total}", where)


def _reference_problem(where: Where, seq: int, reference: Mapping[str, Any], ref: Ref | None,
                       types: frozenset[str], training: bool) -> str | None:
    if ref is None:
        return f"no earlier entry with seq {seq}"
    if where[0] is not None and seq >= where[0]:
        return f"refers to entry {seq}, which is not earlier"
    if (reference["chain"], reference["chain_seq"]) != (ref.chain, ref.chain_seq):
        return (f"refers to {reference['chain']} {reference['chain_seq']}, but entry {seq} is "
                f"{ref.chain} {ref.chain_seq}")
    if ref.type not in types or (ref.training and not training):
        return f"entry {seq} is a {'training ' if ref.training else ''}{ref.type}"
    return None

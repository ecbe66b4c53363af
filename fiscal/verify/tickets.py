"""Arithmetic of a ticket or an invoice, re-done independently: lines, VAT, totals, payments.

The rule (FISCAL.md, ``fiscal.money``): a line's net is its gross less its discounts; nets are
summed per VAT rate and the VAT of each rate is computed once from that sum, rounding halves away
from zero — from the amount including VAT when prices include it, from the amount excluding it
otherwise. The totals are the sums of the rates; payments less change settle the total.

This runs on every ticket of a journal, so it is written for speed: one pass over the lines,
one over the rates, and the messages are built only when something is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fiscal.verify import findings as f

Problem = tuple[str, str]
"""A finding code and its message, located later by the caller."""

TICKET_TYPES = frozenset({"sale", "return"})
_PRICE_MODES = {"incl": True, "excl": False}
"""Whether amounts include VAT, by price mode."""
AMOUNT_TYPES = frozenset({"sale", "return", "invoice", "credit_note"})
_BASIS = 10_000


class Malformed(TypeError):
    """A field the arithmetic needs is missing or not an integer."""


def round_half_away(numerator: int, denominator: int) -> int:
    """Divide, rounding to the nearest integer with halves away from zero."""
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def line_nets(lines: Any) -> dict[int, int]:
    """Return the sum of the lines' nets per VAT rate.

    Raises ``Malformed`` unless the amounts are integers, ``ArithmeticError`` unless each line's
    net is its gross less its discounts.
    """
    per_rate: dict[int, int] = {}
    for line in lines:
        rate, net, gross = line["vat_rate"], line["net"], line["gross"]
        off = line["line_discount"] + line["ticket_discount"]
        if type(rate) is not int or type(net) is not int or type(off) is not int or (
                type(gross) is not int):
            raise Malformed(f"line {line.get('line_no')} has non-integer amounts")
        if net != gross - off:
            raise ArithmeticError(f"line {line.get('line_no')}: net is not gross less discounts")
        per_rate[rate] = per_rate.get(rate, 0) + net
    return per_rate


def vat_of(base: int, rate: int, incl_mode: bool) -> int:
    """The VAT of a rate's summed amount (including VAT in ``incl_mode``, else excluding)."""
    if incl_mode:
        return round_half_away(base * rate, _BASIS + rate)
    return round_half_away(base * rate, _BASIS)


def breakdown_problem(breakdown: Any, per_rate: dict[int, int], incl_mode: bool) -> str | None:
    """Return why a breakdown is not the fold of its lines' nets, or ``None``."""
    seen: set[int] = set()
    for item in breakdown:
        rate, excl, vat, incl = item["rate"], item["excl"], item["vat"], item["incl"]
        if type(excl) is not int or type(vat) is not int or type(incl) is not int:
            raise Malformed(f"rate {rate} has non-integer amounts")
        net = per_rate.get(rate)
        if net is None or rate in seen:
            return f"rate {rate} has no line or appears twice"
        if (incl if incl_mode else excl) != net or incl != excl + vat or (
                vat != vat_of(net, rate, incl_mode)):
            return f"rate {rate}: excl {excl}, VAT {vat}, incl {incl} for lines totalling {net}"
        seen.add(rate)
    if len(seen) != len(per_rate):
        return "rates of the lines are missing from the breakdown"
    return None


def _sums(breakdown: Any) -> tuple[int, int, int]:
    excl = vat = incl = 0
    for item in breakdown:
        excl += item["excl"]
        vat += item["vat"]
        incl += item["incl"]
    return excl, vat, incl


def _totals_problems(record: Mapping[str, Any], out: list[Problem]) -> None:
    stated = (record["total_excl"], record["total_vat"], record["total"])
    sums = _sums(record["breakdown"])
    if stated != sums:
        out.append((f.TOTAL_MISMATCH, f"totals (excl, VAT, incl) {stated} are not the sum of "
                                      f"the breakdown {sums}"))
    total = record["total"]
    if type(total) is not int or (total < 0 if record["type"] in ("sale", "invoice")
                                  else total > 0):
        out.append((f.TOTAL_MISMATCH, f"a {record['type']} cannot total {total!r}"))


def _ticket_problems(record: Mapping[str, Any], out: list[Problem]) -> None:
    lines = record["lines"]
    if record["line_count"] != len(lines):
        out.append((f.TOTAL_MISMATCH, "line_count is not the number of lines"))
    paid = 0
    for payment in record["payments"]:
        amount = payment["amount"]
        if type(amount) is not int or type(payment["tender"]) is not str:
            raise Malformed("payment with a non-integer amount or non-text tender")
        paid += amount
    change = record["change"]
    settled = paid - change if record["type"] == "sale" else paid if change == 0 else None
    if type(change) is not int or change < 0 or settled != record["total"]:
        out.append((f.PAYMENT_MISMATCH, f"payments {paid} less change {change!r} do not "
                                        f"settle the total {record['total']!r}"))


def check_amounts(record: Mapping[str, Any]) -> list[Problem]:
    """Check a sale, return, invoice or credit note's arithmetic; other records pass."""
    kind = record.get("type")
    if type(kind) is not str or kind not in AMOUNT_TYPES:
        return []
    out: list[Problem] = []
    try:
        incl_mode = _PRICE_MODES[record["price_mode"]]
        problem = breakdown_problem(record["breakdown"], line_nets(record["lines"]), incl_mode)
        if problem:
            out.append((f.BREAKDOWN_MISMATCH, problem))
        _totals_problems(record, out)
        if record["type"] in TICKET_TYPES:
            _ticket_problems(record, out)
    except ArithmeticError as error:
        out.append((f.BREAKDOWN_MISMATCH, str(error)))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        out.append((f.BAD_RECORD, f"malformed {record.get('type')}: {error!r}"))
    return out

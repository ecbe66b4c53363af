"""Pricing of a ticket: line amounts, discounts, per-rate VAT breakdown, payments and change.

Pure functions from validated requests to the amounts a ``Ticket`` record carries. The rounding
rule is ``fiscal.money``'s; this module only decides where it is applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fiscal.errors import InvalidInput
from fiscal.money import (
    MAX_QUANTITY_MILLI,
    allocate,
    check_amount,
    check_rate,
    check_text,
    line_gross,
    percent_of,
    vat_from_excl,
    vat_from_incl,
)
from fiscal.records import Payment, TicketLine, VatTotal
from fiscal.requests import Discount, LineRequest, PaymentRequest
from fiscal.settings import JournalSettings


@dataclass(frozen=True)
class Priced:
    """The amounts of a ticket, in the store's price mode, before it becomes a record."""

    lines: tuple[TicketLine, ...]
    ticket_discount: int
    breakdown: tuple[VatTotal, ...]
    total_excl: int
    total_vat: int
    total: int


def discount_amount(discount: Discount | None, base: int, field: str) -> int:
    """Return the (positive) amount a discount takes off ``base``; refuse more than ``base``."""
    if discount is None:
        return 0
    if discount.reason is not None:
        check_text(discount.reason, f"{field}.reason")
    if discount.kind == "amount":
        amount = check_amount(discount.value, f"{field}.value")
    else:
        if not 0 <= discount.value <= 10_000:
            raise InvalidInput("percentage must be between 0 and 10000 basis points",
                               code="bad_percentage", field=f"{field}.value")
        amount = percent_of(base, discount.value)
    if amount > base:
        raise InvalidInput("discount larger than the amount it applies to",
                           code="discount_too_large", field=f"{field}.value")
    return amount


def price_line(line: LineRequest, index: int, settings: JournalSettings) -> TicketLine:
    """Validate one line request and compute its gross and line-discounted amounts."""
    field = f"lines.{index}"
    check_text(line.label, f"{field}.label", max_length=120)
    for name in ("sku", "barcode"):
        value = getattr(line, name)
        if value is not None:
            check_text(value, f"{field}.{name}", max_length=64)
    if not 0 < line.quantity_milli <= MAX_QUANTITY_MILLI:
        raise InvalidInput("quantity must be positive", code="quantity_not_positive",
                           field=f"{field}.quantity_milli")
    check_amount(line.unit_price, f"{field}.unit_price")
    check_rate(line.vat_rate, settings.vat_rates, f"{field}.vat_rate")
    gross = check_amount(line_gross(line.unit_price, line.quantity_milli), f"{field}.unit_price")
    off = discount_amount(line.discount, gross, f"{field}.discount")
    return TicketLine(
        line_no=index + 1, label=line.label, sku=line.sku, barcode=line.barcode,
        quantity_milli=line.quantity_milli, unit_price=line.unit_price, vat_rate=line.vat_rate,
        gross=gross, line_discount=off, net=gross - off,
    )


def apply_ticket_discount(lines: Sequence[TicketLine], amount: int) -> tuple[TicketLine, ...]:
    """Spread a ticket discount over the lines in proportion to their net amounts."""
    if amount == 0:
        return tuple(lines)
    shares = allocate(amount, [line.net for line in lines])
    return tuple(
        line.model_copy(update={"ticket_discount": share, "net": line.net - share})
        for line, share in zip(lines, shares, strict=True)
    )


def vat_breakdown(lines: Iterable[TicketLine], prices_include_vat: bool) -> tuple[VatTotal, ...]:
    """Sum the lines per VAT rate and compute each rate's VAT once (highest rate first)."""
    per_rate: dict[int, int] = defaultdict(int)
    for line in lines:
        per_rate[line.vat_rate] += line.net
    totals = []
    for rate in sorted(per_rate, reverse=True):
        amount = per_rate[rate]
        if prices_include_vat:
            vat = vat_from_incl(amount, rate)
            totals.append(VatTotal(rate=rate, excl=amount - vat, vat=vat, incl=amount))
        else:
            vat = vat_from_excl(amount, rate)
            totals.append(VatTotal(rate=rate, excl=amount, vat=vat, incl=amount + vat))
    return tuple(totals)


def price_ticket(
    lines: Sequence[LineRequest], discount: Discount | None, settings: JournalSettings
) -> Priced:
    """Price a sale: every line, the ticket discount, the breakdown and the totals."""
    priced = [price_line(line, i, settings) for i, line in enumerate(lines)]
    off = discount_amount(discount, sum(line.net for line in priced), "discount")
    with_discount = apply_ticket_discount(priced, off)
    return summarise(with_discount, off, settings.prices_include_vat)


def summarise(lines: tuple[TicketLine, ...], ticket_discount: int, incl: bool) -> Priced:
    """Build the totals of already-priced lines."""
    breakdown = vat_breakdown(lines, incl)
    total = sum(v.incl for v in breakdown)
    check_amount(abs(total), "total")
    return Priced(
        lines=lines, ticket_discount=ticket_discount, breakdown=breakdown,
        total_excl=sum(v.excl for v in breakdown), total_vat=sum(v.vat for v in breakdown),
        total=total,
    )


def settle(
    total: int, requests: Sequence[PaymentRequest], settings: JournalSettings, *, refund: bool
) -> tuple[tuple[Payment, ...], int]:
    """Check the payments against ``total``; return signed payments and the cash change.

    Payment amounts are positive in requests. For a sale, they must cover the total exactly,
    except that cash may exceed it by the change given back. For a refund, they must equal the
    refunded amount exactly, and are recorded negative.
    """
    if not requests and total != 0:
        raise InvalidInput("payments are required", code="payments_mismatch", field="payments")
    for i, payment in enumerate(requests):
        if payment.tender not in settings.tenders:
            raise InvalidInput(f"unknown tender {payment.tender!r}", code="unknown_tender",
                               field=f"payments.{i}.tender")
        check_amount(payment.amount, f"payments.{i}.amount")
        if payment.amount == 0:
            raise InvalidInput("payment amount must be positive", code="amount_not_positive",
                               field=f"payments.{i}.amount")
    paid = sum(p.amount for p in requests)
    due = abs(total)
    change = paid - due
    cash = sum(p.amount for p in requests if p.tender == "cash")
    if change < 0 or (change > 0 and refund):
        raise InvalidInput(f"payments ({paid}) do not match the total ({due})",
                           code="payments_mismatch", field="payments")
    if change > cash:
        raise InvalidInput("change is only given in cash", code="change_not_cash",
                           field="payments")
    sign = -1 if refund else 1
    return tuple(Payment(tender=p.tender, amount=sign * p.amount) for p in requests), change

"""Pure builders of the business records: requests (plus what they refer to) → records.

Every rule that can be checked without the store is checked here and raises ``InvalidInput``;
the journal supplies the original ticket and earlier returns, and the business date.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from fiscal.errors import InvalidInput, OverReturn
from fiscal.money import check_text, round_div
from fiscal.pricing import price_ticket, settle, summarise
from fiscal.records import Copy, Invoice, OriginalRef, Party, PriceMode, Ticket, TicketLine
from fiscal.requests import InvoiceRequest, ReturnRequest, SaleRequest
from fiscal.settings import JournalSettings


def price_mode(settings: JournalSettings) -> PriceMode:
    """Return ``incl`` or ``excl`` for the store's price entry mode."""
    return "incl" if settings.prices_include_vat else "excl"


def _check_optional(value: str | None, field: str) -> None:
    if value is not None:
        check_text(value, field)


def build_sale(request: SaleRequest, settings: JournalSettings, day: dt.date) -> Ticket:
    """Price, settle and record a sale (or a training sale)."""
    check_text(request.operator, "operator", max_length=64)
    _check_optional(request.customer_ref, "customer_ref")
    priced = price_ticket(request.lines, request.discount, settings)
    payments, change = settle(priced.total, request.payments, settings, refund=False)
    return Ticket(
        type="sale", operator=request.operator, price_mode=price_mode(settings),
        currency=settings.currency, lines=priced.lines, ticket_discount=priced.ticket_discount,
        breakdown=priced.breakdown, total_excl=priced.total_excl, total_vat=priced.total_vat,
        total=priced.total, payments=payments, change=change, line_count=len(priced.lines),
        business_date=day.isoformat(), training=request.training,
        customer_ref=request.customer_ref,
    )


def _returned_so_far(prior: Sequence[Mapping[str, Any]]) -> tuple[dict[int, int], dict[int, int]]:
    quantities: dict[int, int] = defaultdict(int)
    amounts: dict[int, int] = defaultdict(int)
    for record in prior:
        for line in record["lines"]:
            quantities[line["original_line_no"]] += -int(line["quantity_milli"])
            amounts[line["original_line_no"]] += -int(line["net"])
    return quantities, amounts


def _return_line(index: int, sold: Mapping[str, Any], quantity: int, done_qty: int,
                 done_amount: int) -> TicketLine:
    sold_qty = int(sold["quantity_milli"])
    amount = round_div(int(sold["net"]) * (done_qty + quantity), sold_qty) - done_amount
    return TicketLine(
        line_no=index + 1, label=sold["label"], sku=sold["sku"], barcode=sold["barcode"],
        quantity_milli=-quantity, unit_price=int(sold["unit_price"]),
        vat_rate=int(sold["vat_rate"]), gross=-amount, net=-amount,
        original_line_no=int(sold["line_no"]),
    )


def build_return(
    request: ReturnRequest, original: Mapping[str, Any], original_ref: OriginalRef,
    prior_returns: Sequence[Mapping[str, Any]], settings: JournalSettings, day: dt.date,
) -> Ticket:
    """Record a return of part of ``original``; refuse returning more than is left."""
    check_text(request.operator, "operator", max_length=64)
    _check_optional(request.reason, "reason")
    if original["type"] != "sale" or original.get("training"):
        raise InvalidInput("only a finalized sale can be returned", code="not_returnable",
                           field="original_seq")
    sold_lines = {int(line["line_no"]): line for line in original["lines"]}
    done_qty, done_amount = _returned_so_far(prior_returns)
    asked: dict[int, int] = defaultdict(int)
    lines = []
    for i, line in enumerate(request.lines):
        field = f"lines.{i}"
        sold = sold_lines.get(line.original_line_no)
        if sold is None:
            raise InvalidInput("no such line on the original ticket", code="unknown_line",
                               field=f"{field}.original_line_no")
        if line.quantity_milli <= 0:
            raise InvalidInput("quantity must be positive", code="quantity_not_positive",
                               field=f"{field}.quantity_milli")
        no = line.original_line_no
        left = int(sold["quantity_milli"]) - done_qty[no] - asked[no]
        if line.quantity_milli > left:
            raise OverReturn(f"only {left} thousandths left to return on line {no}",
                             field=f"{field}.quantity_milli")
        lines.append(_return_line(i, sold, line.quantity_milli, done_qty[no] + asked[no],
                                  done_amount[no]))
        done_amount[no] += -lines[-1].net
        asked[no] += line.quantity_milli
    priced = summarise(tuple(lines), 0, original["price_mode"] == "incl")
    payments, _ = settle(priced.total, request.refunds, settings, refund=True)
    return Ticket(
        type="return", operator=request.operator, price_mode=original["price_mode"],
        currency=original["currency"], lines=priced.lines, breakdown=priced.breakdown,
        total_excl=priced.total_excl, total_vat=priced.total_vat, total=priced.total,
        payments=payments, line_count=len(lines), business_date=day.isoformat(),
        original=original_ref, reason=request.reason,
    )


def _check_party(party: Party) -> None:
    check_text(party.name, "customer.name", max_length=120)
    for name in ("company", "address", "vat_number", "siret"):
        _check_optional(getattr(party, name), f"customer.{name}")


def build_invoice(
    request: InvoiceRequest, source: Mapping[str, Any], source_ref: OriginalRef,
    original_invoice: OriginalRef | None, day: dt.date,
) -> Invoice:
    """Issue an invoice for a sale, or a credit note for a return (given its sale's invoice)."""
    check_text(request.operator, "operator", max_length=64)
    _check_party(request.customer)
    if source["type"] not in ("sale", "return") or source.get("training"):
        raise InvalidInput("invoices are issued for finalized sales and returns",
                           code="not_invoiceable", field="source_seq")
    kind = "invoice" if source["type"] == "sale" else "credit_note"
    return Invoice(
        type=kind, operator=request.operator, customer=request.customer,  # type: ignore[arg-type]
        source=source_ref, original_invoice=original_invoice,
        lines=tuple(TicketLine.model_validate(line, strict=False) for line in source["lines"]),
        breakdown=tuple(source["breakdown"]), total_excl=int(source["total_excl"]),
        total_vat=int(source["total_vat"]), total=int(source["total"]),
        price_mode=source["price_mode"], currency=source["currency"],
        business_date=day.isoformat(),
    )


def build_copy(original: Mapping[str, Any], original_ref: OriginalRef, copies_so_far: int,
               operator: str, reason: str | None) -> Copy:
    """Record a reprint (DUPLICATA) of a ticket or invoice."""
    check_text(operator, "operator", max_length=64)
    _check_optional(reason, "reason")
    if original["type"] not in ("sale", "return", "invoice", "credit_note"):
        raise InvalidInput("only tickets and invoices can be reprinted", code="not_copyable",
                           field="original_seq")
    return Copy(operator=operator, original=original_ref, original_type=original["type"].upper(),
                copy_number=copies_so_far + 1, reason=reason)

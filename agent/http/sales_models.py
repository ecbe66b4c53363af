"""The request bodies and answers of the selling API, and the shapes of drafts and sales.

Every field is bounded (amounts, quantities, lengths) and free text refuses control characters,
so that no request can reach the journal or the database with what they cannot hold.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Header, Path
from pydantic import AfterValidator, BaseModel, Field

from agent.http.checkout import Delivery
from agent.http.models import Body, Cents, QuantityMilli, Rate
from agent.http.receipts_api import EmailOut, PrintJobOut, ReceiptOut
from agent.services.drafts import Draft, DraftState, TicketView
from agent.services.sales import MAX_LINES, MAX_PAYMENTS, StoredSale
from agent.services.ticket_lines import LineSpec
from fiscal.chain import Entry
from fiscal.errors import InvalidInput
from fiscal.money import MAX_AMOUNT, check_text
from fiscal.requests import Discount, PaymentRequest, ReturnLineRequest, ReturnRequest


def _printable(text: str) -> str:
    """Refuse blank text, control characters and lone surrogates (as the journal does)."""
    try:
        return check_text(text, "text", max_length=len(text))
    except InvalidInput as error:
        raise ValueError(error.message) from error


Text = AfterValidator(_printable)
Code = Annotated[str, Field(min_length=1, max_length=64), Text]
Label = Annotated[str, Field(min_length=1, max_length=120), Text]
Reason = Annotated[str, Field(min_length=1, max_length=200), Text]
Tender = Annotated[str, Field(min_length=1, max_length=32), Text]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
TicketId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The draft's id")]
ItemId = Annotated[int, Path(ge=1, le=1_000_000)]
Seq = Annotated[int, Path(ge=1, le=2**53 - 1, description="Global journal sequence")]
ApprovalHeader = Annotated[str | None, Header(max_length=64)]


# -- request bodies ------------------------------------------------------------------------------


class DiscountIn(Body):
    """A discount: an amount in cents, or a percentage in basis points (1000 = 10 %)."""

    kind: Literal["amount", "percent"]
    value: Cents
    reason: Reason | None = None

    def request(self) -> Discount:
        """As ``fiscal`` takes it."""
        return Discount(kind=self.kind, value=self.value, reason=self.reason)


class LineIn(Body):
    """A line: exactly one of ``barcode``, ``sku`` or an open price.

    An open price is ``label``, ``unit_price`` and ``vat_rate``. ``quantity_milli`` is in
    thousandths (grams for weighed goods, read from the scale when absent).
    """

    barcode: Code | None = None
    sku: Code | None = None
    label: Label | None = None
    unit_price: Cents | None = None
    vat_rate: Rate | None = None
    quantity_milli: QuantityMilli | None = None

    def spec(self) -> LineSpec:
        """As the sales service takes it."""
        return LineSpec(barcode=self.barcode, sku=self.sku, label=self.label,
                        unit_price=self.unit_price, vat_rate=self.vat_rate,
                        quantity_milli=self.quantity_milli)


class TicketIn(Body):
    """A new draft: its first lines, training (default: the frontend's mode), a customer."""

    lines: list[LineIn] = Field(default_factory=list, max_length=MAX_LINES)
    training: bool | None = None
    customer_ref: Code | None = None


class LinePatch(Body):
    """A new quantity and/or line discount (``discount: null`` removes it)."""

    quantity_milli: QuantityMilli | None = None
    discount: DiscountIn | None = None


class PaymentIn(Body):
    """An amount handed over in one of the store's tenders."""

    tender: Tender
    amount: Annotated[int, Field(ge=1, le=MAX_AMOUNT, description="Integer cents")]


class FinalizeIn(Body):
    """What to do with the receipt: print it, e-mail it (checked before the sale is journaled)."""

    print_receipt: bool = Field(default=False, alias="print")
    email: Email | None = None


class VoidIn(Body):
    """Why the ticket is voided."""

    reason: Reason


class ReturnLineIn(Body):
    """A quantity of one line of the original sale."""

    line_no: int = Field(ge=1, le=MAX_LINES)
    quantity_milli: QuantityMilli


class ReturnIn(Body):
    """A return against a sale, refunded in the given tenders (positive amounts)."""

    original_seq: int = Field(ge=1, le=2**53 - 1)
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=MAX_LINES)
    refunds: list[PaymentIn] = Field(default_factory=list, max_length=MAX_PAYMENTS)
    reason: Reason | None = None
    print_receipt: bool = Field(default=False, alias="print")


class TrainingIn(Body):
    """Training mode on or off for this frontend's new tickets."""

    on: bool


# -- answers -------------------------------------------------------------------------------------


class DiscountOut(BaseModel):
    """A discount as asked."""

    kind: Literal["amount", "percent"]
    value: int
    reason: str | None


class LineOut(BaseModel):
    """A draft line with its amounts (cents in the store's price mode)."""

    id: int
    line_no: int
    label: str
    sku: str | None
    barcode: str | None
    quantity_milli: int
    unit_price: int
    vat_rate: int
    sold_by_weight: bool
    discount: DiscountOut | None
    gross: int
    line_discount: int
    ticket_discount: int
    net: int


class VatOut(BaseModel):
    """One VAT rate's amounts."""

    rate: int
    excl: int
    vat: int
    incl: int


class PaymentOut(BaseModel):
    """A payment on a draft."""

    id: int
    tender: str
    amount: int


class TicketOut(BaseModel):
    """A draft, priced by the journal's rules: lines, totals, payments, what is left to pay."""

    id: str
    state: DraftState
    training: bool
    frontend_id: str
    operator: str
    customer_ref: str | None
    created_at: str
    updated_at: str
    lines: list[LineOut]
    line_count: int
    discount: DiscountOut | None
    ticket_discount: int
    breakdown: list[VatOut]
    total_excl: int
    total_vat: int
    total: int
    payments: list[PaymentOut]
    paid: int
    remaining: int
    change: int
    payable: bool
    seq: int | None
    void_reason: str | None


class TicketSummary(BaseModel):
    """A draft in a list."""

    id: str
    state: DraftState
    training: bool
    frontend_id: str
    operator: str
    customer_ref: str | None
    line_count: int
    total: int
    updated_at: str
    seq: int | None


class TicketsOut(BaseModel):
    """Drafts, most recently changed first."""

    tickets: list[TicketSummary]


class TenderOut(BaseModel):
    """An amount in a tender as journaled (negative for refunds)."""

    tender: str
    amount: int


class SaleOut(BaseModel):
    """The journaled sale a draft became."""

    id: str
    seq: int
    chain: str
    chain_seq: int
    at_local: str
    training: bool
    total_excl: int
    total_vat: int
    total: int
    breakdown: list[VatOut]
    line_count: int
    payments: list[TenderOut]
    change: int
    signature_extract: str
    receipt: ReceiptOut
    print_receipt: bool = Field(serialization_alias="print")
    email: str | None
    print_job: PrintJobOut | None = None
    email_job: EmailOut | None = None
    drawer_opened: bool = False


class SaleLineOut(BaseModel):
    """A line of a journaled sale and how much of it was returned already."""

    line_no: int
    label: str
    sku: str | None
    barcode: str | None
    quantity_milli: int
    unit_price: int
    vat_rate: int
    net: int
    returned_milli: int
    returnable_milli: int


class StoredSaleOut(BaseModel):
    """A sale as stored in the journal (``record``), with per-line returned quantities."""

    seq: int
    chain: str
    chain_seq: int
    at_local: str
    signature_extract: str
    record: dict[str, Any]
    lines: list[SaleLineOut]


class ReturnLineOut(BaseModel):
    """A returned line (negative quantity and amount)."""

    line_no: int
    original_line_no: int | None
    label: str
    quantity_milli: int
    net: int


class ReturnOut(BaseModel):
    """The journaled return."""

    seq: int
    chain: str
    chain_seq: int
    at_local: str
    original_seq: int
    total_excl: int
    total_vat: int
    total: int
    breakdown: list[VatOut]
    lines: list[ReturnLineOut]
    refunds: list[TenderOut]
    signature_extract: str
    approved_by: str
    receipt: ReceiptOut
    print_job: PrintJobOut | None = None
    drawer_opened: bool = False


class TrainingOut(BaseModel):
    """Whether this frontend's new tickets are training tickets."""

    on: bool


# -- shapes --------------------------------------------------------------------------------------


def _discount_out(discount: Discount | None) -> DiscountOut | None:
    if discount is None:
        return None
    return DiscountOut(kind=discount.kind, value=discount.value, reason=discount.reason)


def ticket_out(view: TicketView) -> TicketOut:
    """The JSON shape of a priced draft."""
    draft, preview = view.draft, view.preview
    priced = preview.priced
    lines = [LineOut(id=line.id, line_no=amounts.line_no, label=line.label, sku=line.sku,
                     barcode=line.barcode, quantity_milli=line.quantity_milli,
                     unit_price=line.unit_price, vat_rate=line.vat_rate,
                     sold_by_weight=line.sold_by_weight, discount=_discount_out(line.discount),
                     gross=amounts.gross, line_discount=amounts.line_discount,
                     ticket_discount=amounts.ticket_discount, net=amounts.net)
             for line, amounts in zip(draft.lines, priced.lines, strict=True)]
    return TicketOut(
        id=draft.id, state=draft.state, training=draft.training, frontend_id=draft.frontend_id,
        operator=draft.operator, customer_ref=draft.customer_ref, created_at=draft.created_at,
        updated_at=draft.updated_at, lines=lines, line_count=len(lines),
        discount=_discount_out(draft.discount), ticket_discount=priced.ticket_discount,
        breakdown=[VatOut(**v.model_dump()) for v in priced.breakdown],
        total_excl=priced.total_excl, total_vat=priced.total_vat, total=priced.total,
        payments=[PaymentOut(id=p.id, tender=p.tender, amount=p.amount) for p in draft.payments],
        paid=preview.paid, remaining=preview.remaining, change=preview.change,
        payable=preview.payable, seq=draft.seq, void_reason=draft.void_reason)


def summary_out(draft: Draft) -> TicketSummary:
    """The JSON shape of a draft in a list."""
    return TicketSummary(id=draft.id, state=draft.state, training=draft.training,
                         frontend_id=draft.frontend_id, operator=draft.operator,
                         customer_ref=draft.customer_ref, line_count=len(draft.lines),
                         total=draft.total, updated_at=draft.updated_at, seq=draft.seq)


def sale_out(draft: Draft, entry: Entry, body: FinalizeIn, delivery: Delivery) -> SaleOut:
    """The JSON shape of a finalized sale."""
    record = entry.record
    return SaleOut(
        id=draft.id, seq=entry.seq, chain=entry.chain, chain_seq=entry.chain_seq,
        at_local=entry.at_local, training=bool(record.get("training")),
        total_excl=record["total_excl"], total_vat=record["total_vat"], total=record["total"],
        breakdown=[VatOut(**v) for v in record["breakdown"]], line_count=record["line_count"],
        payments=[TenderOut(**p) for p in record["payments"]], change=record["change"],
        signature_extract=entry.extract, print_receipt=body.print_receipt, email=body.email,
        receipt=delivery.receipt, print_job=delivery.print_job, email_job=delivery.email,
        drawer_opened=delivery.drawer_opened)


def stored_sale_out(sale: StoredSale) -> StoredSaleOut:
    """The JSON shape of a journaled sale for a return screen."""
    entry = sale.entry
    lines = []
    for line in entry.record["lines"]:
        no, sold = int(line["line_no"]), int(line["quantity_milli"])
        done = sale.returned.get(no, 0)
        lines.append(SaleLineOut(
            line_no=no, label=line["label"], sku=line["sku"], barcode=line["barcode"],
            quantity_milli=sold, unit_price=line["unit_price"], vat_rate=line["vat_rate"],
            net=line["net"], returned_milli=done, returnable_milli=max(sold - done, 0)))
    return StoredSaleOut(seq=entry.seq, chain=entry.chain, chain_seq=entry.chain_seq,
                         at_local=entry.at_local, signature_extract=entry.extract,
                         record=dict(entry.record), lines=lines)


def return_out(entry: Entry, original_seq: int, approved_by: str,
               delivery: Delivery) -> ReturnOut:
    """The JSON shape of a journaled return."""
    record = entry.record
    return ReturnOut(
        seq=entry.seq, chain=entry.chain, chain_seq=entry.chain_seq, at_local=entry.at_local,
        original_seq=original_seq, total_excl=record["total_excl"],
        total_vat=record["total_vat"], total=record["total"],
        breakdown=[VatOut(**v) for v in record["breakdown"]],
        lines=[ReturnLineOut(line_no=x["line_no"], original_line_no=x["original_line_no"],
                             label=x["label"], quantity_milli=x["quantity_milli"], net=x["net"])
               for x in record["lines"]],
        refunds=[TenderOut(**p) for p in record["payments"]], signature_extract=entry.extract,
        approved_by=approved_by, receipt=delivery.receipt, print_job=delivery.print_job,
        drawer_opened=delivery.drawer_opened)


def return_request(body: ReturnIn, operator: str) -> ReturnRequest:
    """The return as ``fiscal`` takes it."""
    return ReturnRequest(
        operator=operator, original_seq=body.original_seq,
        lines=tuple(ReturnLineRequest(original_line_no=x.line_no,
                                      quantity_milli=x.quantity_milli) for x in body.lines),
        refunds=tuple(PaymentRequest(tender=p.tender, amount=p.amount) for p in body.refunds),
        reason=body.reason)

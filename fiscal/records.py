"""The business records of the journal: immutable, JSON-serialisable, no floats.

A record is what a chain entry seals (``Entry.record``). Records are built by ``fiscal``'s
pure functions from validated input; corrections are new records, never edits.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fiscal.canonical import NotCanonicalisable, check_domain

RecordType = Literal[
    "sale", "return", "invoice", "credit_note", "copy", "day_closure", "month_closure",
    "year_closure", "archive", "event", "cash_movement",
]
CashKind = Literal["float", "cash_in", "cash_out", "safe_drop"]
PriceMode = Literal["incl", "excl"]


class Frozen(BaseModel):
    """Base of every record: immutable, strict types, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class VatTotal(Frozen):
    """One VAT rate's amounts: base excluding VAT, VAT, total including VAT (cents)."""

    rate: int
    excl: int
    vat: int
    incl: int


class TicketLine(Frozen):
    """A priced line: inputs and the amounts computed from them (in the ticket's price mode)."""

    line_no: int
    label: str
    sku: str | None = None
    barcode: str | None = None
    quantity_milli: int
    unit_price: int
    vat_rate: int
    gross: int
    line_discount: int = 0
    ticket_discount: int = 0
    net: int
    original_line_no: int | None = None


class Payment(Frozen):
    """A tender and the amount handed over in it (negative for refunds)."""

    tender: str
    amount: int


class OriginalRef(Frozen):
    """Reference to an earlier entry of this journal (by global and chain sequence)."""

    seq: int
    chain: str
    chain_seq: int
    register_id: str


class Ticket(Frozen):
    """A sale or a return: the ``ticket`` chain, or ``training`` when in training mode."""

    type: Literal["sale", "return"]
    operator: str
    price_mode: PriceMode
    currency: str = "EUR"
    lines: tuple[TicketLine, ...]
    ticket_discount: int = 0
    breakdown: tuple[VatTotal, ...]
    total_excl: int
    total_vat: int
    total: int
    payments: tuple[Payment, ...]
    change: int = 0
    line_count: int
    business_date: str
    training: bool = False
    original: OriginalRef | None = None
    reason: str | None = None
    customer_ref: str | None = None


class Party(Frozen):
    """The customer named on an invoice or credit note."""

    name: str
    company: str | None = None
    address: str | None = None
    vat_number: str | None = None
    siret: str | None = None


class Invoice(Frozen):
    """An invoice (or credit note) issued from a ticket (or return) of this journal."""

    type: Literal["invoice", "credit_note"]
    operator: str
    customer: Party
    source: OriginalRef
    original_invoice: OriginalRef | None = None
    lines: tuple[TicketLine, ...]
    breakdown: tuple[VatTotal, ...]
    total_excl: int
    total_vat: int
    total: int
    price_mode: PriceMode
    currency: str = "EUR"
    business_date: str


class Copy(Frozen):
    """A reprint (DUPLICATA) of a ticket or invoice."""

    type: Literal["copy"] = "copy"
    operator: str
    original: OriginalRef
    original_type: str
    copy_number: int
    reason: str | None = None


class TenderTotal(Frozen):
    """The net amount taken in one tender over a period (cents)."""

    tender: str
    amount: int


class CashTotal(Frozen):
    """The net amount of one kind of cash movement over a period (cents)."""

    kind: str
    amount: int


class Closure(Frozen):
    """A day, month or fiscal-year closure sealing its period's totals."""

    type: Literal["day_closure", "month_closure", "year_closure"]
    operator: str
    period_from: str
    period_to: str
    breakdown: tuple[VatTotal, ...]
    sales_total: int
    returns_total: int
    period_total: int
    perpetual_total: int
    perpetual_abs: int
    ticket_count: int
    sale_count: int
    return_count: int
    first_ticket_seq: int | None = None
    last_ticket_seq: int | None = None
    folded_count: int = 0
    tenders: tuple[TenderTotal, ...] = ()
    cash: tuple[CashTotal, ...] = ()
    automatic: bool = False


class ArchiveRecord(Frozen):
    """The signed record of a period archive having been produced."""

    type: Literal["archive"] = "archive"
    operator: str
    period_from: str
    period_to: str
    manifest_sha256: str
    entry_count: int
    last_seq: int
    file_name: str


class Event(Frozen):
    """A technical event (JET): code from the code table, description, free details."""

    type: Literal["event"] = "event"
    code: int
    operator: str
    description: str
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("details")
    @classmethod
    def _journal_domain(cls, details: dict[str, Any]) -> dict[str, Any]:
        """Free-form details must serialise canonically: no floats, ASCII keys."""
        try:
            check_domain(details)
        except NotCanonicalisable as error:
            raise ValueError(str(error)) from error
        return details


class CashMovement(Frozen):
    """Money in or out of the drawer that is not a sale: float, cash in/out, safe drop."""

    type: Literal["cash_movement"] = "cash_movement"
    kind: CashKind
    operator: str
    tender: str = "cash"
    amount: int
    reason: str | None = None
    business_date: str


AnyRecord = Ticket | Invoice | Copy | Closure | ArchiveRecord | Event | CashMovement

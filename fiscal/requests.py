"""What callers ask the journal to record: validated inputs, before totals and signatures."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fiscal.errors import InvalidInput
from fiscal.records import CashKind, Party


class Request(BaseModel):
    """Base of every request: immutable, strict types, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Discount(Request):
    """A discount: an amount in cents or a percentage in basis points."""

    kind: Literal["amount", "percent"]
    value: int
    reason: str | None = None


class LineRequest(Request):
    """A line to sell: label, quantity in thousandths, unit price in the store's price mode."""

    label: str
    quantity_milli: int = 1000
    unit_price: int
    vat_rate: int
    sku: str | None = None
    barcode: str | None = None
    discount: Discount | None = None


class PaymentRequest(Request):
    """An amount handed over in a tender (cents, positive)."""

    tender: str
    amount: int


class SaleRequest(Request):
    """A sale to finalize: lines, optional ticket discount, payments."""

    operator: str
    lines: tuple[LineRequest, ...] = Field(min_length=1, strict=False)
    discount: Discount | None = None
    payments: tuple[PaymentRequest, ...] = Field(strict=False)
    training: bool = False
    customer_ref: str | None = None


class ReturnLineRequest(Request):
    """A quantity of one line of the original ticket to take back."""

    original_line_no: int
    quantity_milli: int


class ReturnRequest(Request):
    """A return against an original sale, with the refund tenders (positive amounts)."""

    operator: str
    original_seq: int
    lines: tuple[ReturnLineRequest, ...] = Field(min_length=1, strict=False)
    refunds: tuple[PaymentRequest, ...] = Field(strict=False)
    reason: str | None = None


class InvoiceRequest(Request):
    """An invoice for a finalized sale, or a credit note for a finalized return."""

    operator: str
    source_seq: int
    customer: Party


class CashMovementRequest(Request):
    """A float, cash in, cash out or safe drop (positive amount)."""

    kind: CashKind
    operator: str
    amount: int
    tender: str = "cash"
    reason: str | None = None


class EventRequest(Request):
    """A technical event to journal."""

    code: int
    operator: str
    description: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


def parse_request(model: type[Request], data: Any) -> Request:
    """Validate untyped ``data`` as ``model``, mapping the first error to ``InvalidInput``."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidInput(first["msg"], code="schema", field=field) from error

"""Ticket drafts: what a till builds before it becomes a sale, kept in ``box.sqlite``.

A draft is one JSON document (lines, payments, ticket discount, state) in ``ticket_drafts``, with
its state, owning frontend and last change as columns for listing. Drafts survive a restart of
the box. States::

    open ──park──▶ parked ──resume──▶ open ──finalize──▶ finalized
      └──────────────void (open or parked)──────────────▶ voided

``preview`` prices a draft with ``fiscal``'s own pricing (lines, discounts, per-rate VAT,
totals; payments and change through ``settle``): the box never computes VAT itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agent.boxdb import BoxDb
from fiscal.errors import InvalidInput
from fiscal.pricing import Priced, price_ticket, settle
from fiscal.requests import Discount, LineRequest, PaymentRequest, SaleRequest
from fiscal.settings import JournalSettings

DraftState = Literal["open", "parked", "finalized", "voided"]
STATES: tuple[DraftState, ...] = ("open", "parked", "finalized", "voided")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ticket_drafts (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('open', 'parked', 'finalized', 'voided')),
    frontend_id TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ticket_drafts_by_state ON ticket_drafts (state, updated_at);
CREATE TABLE IF NOT EXISTS training_frontends (
    frontend_id TEXT PRIMARY KEY,
    since TEXT NOT NULL
);
"""


class Stored(BaseModel):
    """Base of what is stored: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DraftLine(Stored):
    """A line of a draft: what was scanned or typed, before pricing."""

    id: int
    label: str
    sku: str | None = None
    barcode: str | None = None
    quantity_milli: int = 1000
    unit_price: int
    vat_rate: int
    sold_by_weight: bool = False
    discount: Discount | None = None

    def request(self) -> LineRequest:
        """The line as ``fiscal`` prices it."""
        return LineRequest(label=self.label, quantity_milli=self.quantity_milli,
                           unit_price=self.unit_price, vat_rate=self.vat_rate, sku=self.sku,
                           barcode=self.barcode, discount=self.discount)


class DraftPayment(Stored):
    """An amount handed over in a tender (cents, positive)."""

    id: int
    tender: str
    amount: int


class Draft(Stored):
    """A ticket being built, parked, or what became of it (finalized as ``seq``, voided)."""

    id: str
    state: DraftState = "open"
    frontend_id: str
    operator: str
    training: bool = False
    customer_ref: str | None = None
    created_at: str
    updated_at: str
    lines: tuple[DraftLine, ...] = ()
    payments: tuple[DraftPayment, ...] = ()
    discount: Discount | None = None
    next_id: int = 1
    total: int = 0
    seq: int | None = None
    void_reason: str | None = None

    def line(self, line_id: int) -> DraftLine | None:
        """The line with this id, if the draft has it."""
        return next((line for line in self.lines if line.id == line_id), None)

    def payment_requests(self) -> tuple[PaymentRequest, ...]:
        """The payments as ``fiscal`` settles them."""
        return tuple(PaymentRequest(tender=p.tender, amount=p.amount) for p in self.payments)

    def sale_request(self, operator: str) -> SaleRequest:
        """The sale ``fiscal`` journals when this draft is finalized by ``operator``."""
        return SaleRequest(operator=operator, lines=tuple(line.request() for line in self.lines),
                           discount=self.discount, payments=self.payment_requests(),
                           training=self.training, customer_ref=self.customer_ref)


@dataclass(frozen=True)
class Preview:
    """What a draft amounts to now: priced lines and totals, paid, remaining, change."""

    priced: Priced
    paid: int
    remaining: int
    change: int
    payable: bool
    """Whether the payments settle the total (finalizing would be accepted)."""


@dataclass(frozen=True)
class TicketView:
    """A draft and its preview, as services hand them to the API."""

    draft: Draft
    preview: Preview


def preview(draft: Draft, settings: JournalSettings) -> Preview:
    """Price ``draft`` with ``fiscal`` (``InvalidInput`` if it cannot be priced)."""
    priced = price_ticket([line.request() for line in draft.lines], draft.discount, settings)
    paid = sum(payment.amount for payment in draft.payments)
    change, payable = 0, False
    if draft.lines and paid >= priced.total:
        try:
            _, change = settle(priced.total, draft.payment_requests(), settings, refund=False)
            payable = True
        except InvalidInput:  # e.g. paid beyond the total by card: not payable as it stands
            change = 0
    return Preview(priced=priced, paid=paid, remaining=max(priced.total - paid, 0),
                   change=change, payable=payable)


class DraftStore:
    """The drafts table and the per-frontend training default."""

    def __init__(self, db: BoxDb) -> None:
        self.db = db

    @classmethod
    async def open(cls, db: BoxDb) -> DraftStore:
        """Create the tables if needed."""
        await db.create(SCHEMA)
        return cls(db)

    async def put(self, draft: Draft) -> None:
        """Insert or replace a draft."""
        await self.db.execute(
            "INSERT INTO ticket_drafts (id, state, frontend_id, updated_at, body) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
            "frontend_id = excluded.frontend_id, updated_at = excluded.updated_at, "
            "body = excluded.body",
            (draft.id, draft.state, draft.frontend_id, draft.updated_at,
             draft.model_dump_json()))

    async def get(self, draft_id: str) -> Draft | None:
        """A draft by id."""
        row = await self.db.fetch_one("SELECT body FROM ticket_drafts WHERE id = ?",
                                      (draft_id,))
        return None if row is None else Draft.model_validate_json(row[0])

    async def listed(self, states: tuple[DraftState, ...], frontend_id: str | None,
                     limit: int) -> list[Draft]:
        """Drafts in ``states`` (only ``frontend_id``'s open ones), most recent first."""
        marks = ", ".join("?" for _ in states)
        rows = await self.db.fetch_all(
            f"SELECT body FROM ticket_drafts WHERE state IN ({marks}) AND (state != 'open' "
            "OR ? IS NULL OR frontend_id = ?) ORDER BY updated_at DESC, id LIMIT ?",
            (*states, frontend_id, frontend_id, limit))
        return [Draft.model_validate_json(row[0]) for row in rows]

    async def purge(self, before: str) -> int:
        """Forget finalized and voided drafts last changed before ``before``."""
        return await self.db.execute(
            "DELETE FROM ticket_drafts WHERE state IN ('finalized', 'voided') "
            "AND updated_at < ?", (before,))

    async def training(self, frontend_id: str) -> bool:
        """Whether new drafts of ``frontend_id`` are training drafts by default."""
        row = await self.db.fetch_one("SELECT 1 FROM training_frontends WHERE frontend_id = ?",
                                      (frontend_id,))
        return row is not None

    async def set_training(self, frontend_id: str, on: bool, since: str) -> None:
        """Make training the default of ``frontend_id`` (or not)."""
        if on:
            await self.db.execute("INSERT OR IGNORE INTO training_frontends (frontend_id, since) "
                                  "VALUES (?, ?)", (frontend_id, since))
        else:
            await self.db.execute("DELETE FROM training_frontends WHERE frontend_id = ?",
                                  (frontend_id,))

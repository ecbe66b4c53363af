"""Selling: ticket drafts, lines, discounts, payments, finalize; park/resume; voids; returns.

The use cases behind ``/v1/tickets``, ``/v1/sales``, ``/v1/returns`` and ``/v1/training``
(docs/api/tickets.md). Every change of a draft is priced by ``fiscal`` before it is stored (a
change that cannot be priced is refused, nothing is kept), then announced: bus event
``ticket.updated`` and the customer display. The one fiscal write of a sale is ``journal.sell``
at finalize. Voids before finalization are JET events (1030 line, 1031 ticket) naming the
approving manager; a return is ``journal.refund`` followed by a manager-override event (1020).

Journal idempotency keys come from the domain where there is one (a draft is sold once, a line
voided once: ``ticket:{id}``, ``line-void:{id}:{line}``, ``ticket-void:{id}``), so a retry after
a crash, whatever its ``Idempotency-Key``, finds the entry already written; returns and training
toggles use the request's key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.boxdb import BoxDb
from agent.devices import Devices
from agent.errors import ProblemError, conflict, invalid, not_found
from agent.events import EventBus
from agent.keyed_locks import KeyedLocks
from agent.observability import Health
from agent.services.access import Approval, Principal
from agent.services.cash import CashDesk
from agent.services.catalog import Catalog
from agent.services.drafts import (
    Draft,
    DraftLine,
    DraftPayment,
    DraftState,
    DraftStore,
    Preview,
    TicketView,
    preview,
)
from agent.services.guard import ensure_fiscal_writes
from agent.services.ticket_lines import LineResolver, LineSpec, check_line, moved
from drivers.receipt.texts import money, texts
from fiscal.chain import Entry, utc_text
from fiscal.errors import InvalidInput
from fiscal.journal import Journal
from fiscal.money import check_text
from fiscal.pricing import settle
from fiscal.records import TicketLine
from fiscal.requests import Discount, EventRequest, ReturnRequest
from fiscal.settings import JournalSettings

MANAGER_OVERRIDE, LINE_VOID, TICKET_VOID, TRAINING_ON, TRAINING_OFF = 1020, 1030, 1031, 1110, 1111
MAX_LINES, MAX_PAYMENTS = 500, 20
RETENTION = dt.timedelta(days=7)
"""How long finalized and voided drafts are kept in the working database (the journal keeps
the sales for good)."""


@dataclass(frozen=True)
class StoredSale:
    """A finalized sale as journaled, and the quantity already returned per line number."""

    entry: Entry
    returned: Mapping[int, int]


class Sales:
    """Ticket drafts and their finalization into the journal."""

    def __init__(self, db: BoxDb, journal: Journal, catalog: Catalog, health: Health,
                 bus: EventBus, devices: Devices | None, cash: CashDesk | None = None) -> None:
        self.db, self.journal, self.catalog = db, journal, catalog
        self.health, self.bus, self.devices = health, bus, devices
        self.cash = cash
        self.store = DraftStore(db)
        self.lines = LineResolver(catalog, journal.settings, devices, journal.now)
        self._changes = KeyedLocks()
        """One change of a draft at a time (read, check, write); other drafts go on meanwhile:
        a finalize waits for the journal's durable commit, the other tills need not wait."""
        self._training_lock = asyncio.Lock()

    @classmethod
    async def open(cls, db: BoxDb, journal: Journal, catalog: Catalog, health: Health,
                   bus: EventBus, devices: Devices | None, cash: CashDesk | None = None) -> Sales:
        """Create the tables if needed; forget drafts finalized or voided long ago.

        With ``cash``, real (not training) sales and returns need its open cash session.
        """
        sales = cls(db, journal, catalog, health, bus, devices, cash)
        sales.store = await DraftStore.open(db)
        await sales.store.purge(utc_text(journal.now() - RETENTION))
        return sales

    @property
    def settings(self) -> JournalSettings:
        """The journal's settings (VAT rates, tenders, price mode)."""
        return self.journal.settings

    def view(self, draft: Draft) -> TicketView:
        """A draft with its preview (``InvalidInput`` if it cannot be priced)."""
        return TicketView(draft, preview(draft, self.settings))

    # -- reading ---------------------------------------------------------------------------------

    async def get(self, draft_id: str) -> TicketView:
        """A draft by id, priced."""
        return self.view(await self._draft(draft_id))

    async def listed(self, principal: Principal, state: DraftState | None,
                     limit: int) -> list[Draft]:
        """Drafts in ``state`` (default open and parked); open ones of this frontend only."""
        states: tuple[DraftState, ...] = (state,) if state else ("open", "parked")
        return await self.store.listed(states, principal.frontend.id, limit)

    async def sale(self, seq: int) -> StoredSale:
        """A finalized sale of the journal and what was returned of each line."""
        entry = await self.journal.get(seq)
        if entry is None or entry.record.get("type") != "sale":
            raise not_found("sale", seq, "seq")
        returned: dict[int, int] = defaultdict(int)
        for other in await self.journal.store.referencing(seq):
            if other.record.get("type") == "return":
                for line in other.record["lines"]:
                    returned[int(line["original_line_no"])] -= int(line["quantity_milli"])
        return StoredSale(entry, dict(returned))

    async def training(self, frontend_id: str) -> bool:
        """Whether new drafts of this frontend are training drafts by default."""
        return await self.store.training(frontend_id)

    # -- building a draft ------------------------------------------------------------------------

    async def create(self, principal: Principal, lines: Sequence[LineSpec],
                     training: bool | None = None, customer_ref: str | None = None
                     ) -> TicketView:
        """Open a new draft on the principal's frontend, with its first lines if given."""
        if customer_ref is not None:
            check_text(customer_ref, "customer_ref", max_length=64)
        if training is None:
            training = await self.store.training(principal.frontend.id)
        now = self.health.now_text()
        draft = Draft(id=uuid.uuid4().hex, frontend_id=principal.frontend.id,
                      operator=principal.operator, training=training,
                      customer_ref=customer_ref, created_at=now, updated_at=now)
        for index, spec in enumerate(lines):
            draft = _with_line(draft, await self.lines.resolve(spec, f"lines.{index}."))
        return await self._commit(draft)  # nobody else knows its id yet: nothing to lock

    async def add_line(self, principal: Principal, draft_id: str, spec: LineSpec) -> TicketView:
        """Add a scanned, looked-up, weighed or open-price line."""
        await self._open_draft(principal, draft_id)  # refuse early, before reading the scale
        line = await self.lines.resolve(spec)
        async with self._changes.hold(draft_id):
            draft = _with_line(await self._open_draft(principal, draft_id), line)
            return await self._commit(draft, focus=draft.lines[-1].id)

    async def update_line(self, principal: Principal, draft_id: str, line_id: int, *,
                          quantity_milli: int | None = None,
                          discount: Discount | None = None, set_discount: bool = False
                          ) -> TicketView:
        """Change a line's quantity and/or its discount (``set_discount`` with None removes)."""
        async with self._changes.hold(draft_id):
            draft = await self._open_draft(principal, draft_id)
            changes: dict[str, Any] = {}
            if quantity_milli is not None:
                changes["quantity_milli"] = quantity_milli
            if set_discount:
                changes["discount"] = discount
            line = _line_of(draft, line_id).model_copy(update=changes)
            check_line(line, self.settings, "")
            lines = tuple(line if old.id == line_id else old for old in draft.lines)
            return await self._commit(draft.model_copy(update={"lines": lines}), focus=line_id)

    async def void_line(self, principal: Principal, draft_id: str, line_id: int,
                        approval: Approval) -> TicketView:
        """Remove a line with a manager's approval; journaled as JET 1030."""
        async with self._changes.hold(draft_id):
            draft = await self._open_draft(principal, draft_id)
            line = _line_of(draft, line_id)
            rest = draft.model_copy(update={"lines": tuple(x for x in draft.lines
                                                           if x.id != line_id)})
            self.view(rest)  # what is left must still price (a ticket discount may not fit)
            priced = self.view(draft).preview.priced.lines
            details = {"ticket": draft.id, "training": draft.training,
                       "line": _line_details(line, priced[draft.lines.index(line)]),
                       **approval.details()}
            await self._event(LINE_VOID, principal, details, f"line-void:{draft.id}:{line_id}")
            return await self._commit(rest)

    async def set_discount(self, principal: Principal, draft_id: str,
                           discount: Discount | None) -> TicketView:
        """Set (or with None remove) the ticket discount."""
        async with self._changes.hold(draft_id):
            draft = await self._open_draft(principal, draft_id)
            try:
                return await self._commit(draft.model_copy(update={"discount": discount}))
            except InvalidInput as error:
                raise moved(error, "discount.", "") from error

    async def add_payment(self, principal: Principal, draft_id: str, tender: str,
                          amount: int) -> TicketView:
        """Add an amount handed over in a tender; only cash may exceed what is due."""
        if tender not in self.settings.tenders:
            raise invalid("unknown_tender", f"unknown tender {tender!r}", "tender")
        async with self._changes.hold(draft_id):
            draft = await self._open_draft(principal, draft_id)
            if len(draft.payments) >= MAX_PAYMENTS:
                raise conflict("too_many_payments", f"at most {MAX_PAYMENTS} payments")
            payment = DraftPayment(id=draft.next_id, tender=tender, amount=amount)
            paid = draft.model_copy(update={"payments": (*draft.payments, payment),
                                            "next_id": draft.next_id + 1})
            return await self._commit(paid, show=False, priced=self._check_overpayment(paid))

    async def remove_payment(self, principal: Principal, draft_id: str,
                             payment_id: int) -> TicketView:
        """Take a payment back off the draft (a declined card, a mistake)."""
        async with self._changes.hold(draft_id):
            draft = await self._open_draft(principal, draft_id)
            if not any(p.id == payment_id for p in draft.payments):
                raise not_found("payment", payment_id, "payment_id")
            payments = tuple(p for p in draft.payments if p.id != payment_id)
            return await self._commit(draft.model_copy(update={"payments": payments}),
                                      show=False)

    # -- what becomes of a draft -----------------------------------------------------------------

    async def finalize(self, principal: Principal, draft_id: str) -> tuple[Draft, Entry]:
        """Journal the draft as a sale (the one fiscal write) and close it."""
        ensure_fiscal_writes(self.health)
        async with self._changes.hold(draft_id):
            draft = await self._open_draft(principal, draft_id)
            if not draft.lines:
                raise invalid("ticket_empty", "a ticket needs at least one line", "lines")
            if not draft.training:
                await self._require_session()
            entry = await self.journal.sell(draft.sale_request(principal.operator),
                                            idempotency_key=f"ticket:{draft.id}")
            done = await self._save(draft, state="finalized", seq=entry.seq)
        record = entry.record
        self.bus.publish("ticket.finalized", {"id": done.id, "seq": entry.seq,
                                              "total": record["total"],
                                              "training": draft.training})
        self._show_settled(int(record["total"]), int(record["change"]))
        return done, entry

    async def _require_session(self) -> None:
        if self.cash is not None:
            await self.cash.require_open()

    async def park(self, principal: Principal, draft_id: str) -> TicketView:
        """Set an open draft aside; any frontend may resume it."""
        async with self._changes.hold(draft_id):
            parked = await self._save(await self._open_draft(principal, draft_id),
                                      state="parked")
        self.bus.publish("ticket.parked", {"id": parked.id, "total": parked.total,
                                           "line_count": len(parked.lines)})
        self._show("", "")
        return self.view(parked)

    async def resume(self, principal: Principal, draft_id: str) -> TicketView:
        """Take a parked draft up again on the principal's frontend (which now owns it)."""
        async with self._changes.hold(draft_id):
            draft = await self._draft(draft_id)
            if draft.state != "parked":
                raise conflict("ticket_not_parked", f"the ticket is {draft.state}, not parked")
            return await self._commit(draft.model_copy(
                update={"state": "open", "frontend_id": principal.frontend.id}))

    async def void(self, principal: Principal, draft_id: str, reason: str,
                   approval: Approval) -> TicketView:
        """Void an open or parked draft with a manager's approval; journaled as JET 1031."""
        check_text(reason, "reason")
        async with self._changes.hold(draft_id):
            draft = await self._draft(draft_id)
            if draft.state != "parked":
                draft = await self._open_draft(principal, draft_id)
            priced = self.view(draft).preview.priced
            details = {"ticket": draft.id, "training": draft.training, "total": priced.total,
                       "lines": [_line_details(line, amounts) for line, amounts
                                 in zip(draft.lines, priced.lines, strict=True)],
                       "reason": reason, **approval.details()}
            await self._event(TICKET_VOID, principal, details, f"ticket-void:{draft.id}")
            voided = await self._save(draft, state="voided", void_reason=reason)
        self.bus.publish("ticket.voided", {"id": voided.id, "total": priced.total,
                                           "reason": reason})
        self._show("", "")
        return self.view(voided)

    async def refund(self, request: ReturnRequest, approval: Approval,
                     idempotency_key: str | None) -> Entry:
        """Journal a return against a sale, then (JET 1020) the override of another manager."""
        ensure_fiscal_writes(self.health)
        await self._require_session()
        try:
            entry = await self.journal.refund(request, idempotency_key=idempotency_key)
        except InvalidInput as error:
            raise _return_field(error) from error
        if approval.approver.id == approval.requested_by:
            return entry  # a manager's own return: the record's operator says who
        details = {"return_seq": entry.seq, "original_seq": request.original_seq,
                   "total": entry.record["total"], **approval.details()}
        key = None if idempotency_key is None else f"{idempotency_key}:approval"
        await self.journal.record_event(
            EventRequest(code=MANAGER_OVERRIDE, operator=request.operator, details=details),
            idempotency_key=key)
        return entry

    async def set_training(self, principal: Principal, on: bool, approval: Approval | None,
                           idempotency_key: str | None) -> bool:
        """Make training the default of the principal's frontend (JET 1110) or not (1111)."""
        frontend = principal.frontend.id
        async with self._training_lock:
            if await self.store.training(frontend) == on:
                return on
            details: dict[str, Any] = {"frontend": frontend}
            if approval is not None:
                details.update(approval.details())
            key = None if idempotency_key is None else f"training:{idempotency_key}"
            await self._event(TRAINING_ON if on else TRAINING_OFF, principal, details, key)
            await self.store.set_training(frontend, on, self.health.now_text())
        return on

    # -- helpers ---------------------------------------------------------------------------------

    async def _draft(self, draft_id: str) -> Draft:
        draft = await self.store.get(draft_id)
        if draft is None:
            raise not_found("ticket", draft_id, "ticket_id")
        return draft

    async def _open_draft(self, principal: Principal, draft_id: str) -> Draft:
        """The draft if it is open on the principal's frontend (only such a draft changes)."""
        draft = await self._draft(draft_id)
        if draft.state != "open":
            raise conflict(f"ticket_{draft.state}",
                           f"the ticket is {draft.state}; only an open ticket changes")
        if draft.frontend_id != principal.frontend.id:
            raise conflict("ticket_elsewhere", "this ticket is open on another frontend")
        return draft

    async def _commit(self, draft: Draft, *, focus: int | None = None, show: bool = True,
                      priced: Preview | None = None) -> TicketView:
        """Price (refusing what cannot be priced; ``priced`` if done already), store, announce."""
        priced = priced or self.view(draft).preview
        stored = draft.model_copy(update={"total": priced.priced.total,
                                          "updated_at": self.health.now_text()})
        await self.store.put(stored)
        self.bus.publish("ticket.updated", {"id": stored.id, "total": stored.total,
                                            "line_count": len(stored.lines)})
        view = TicketView(stored, priced)
        if show:
            self._show_line(view, focus)
        return view

    async def _save(self, draft: Draft, **changes: Any) -> Draft:
        saved = draft.model_copy(update={**changes, "updated_at": self.health.now_text()})
        await self.store.put(saved)
        return saved

    async def _event(self, code: int, principal: Principal, details: dict[str, Any],
                     key: str | None) -> None:
        await self.journal.record_event(
            EventRequest(code=code, operator=principal.operator, details=details),
            idempotency_key=key)

    def _check_overpayment(self, draft: Draft) -> Preview:
        """Refuse a payment that takes the paid amount beyond what cash change allows.

        Return the draft's preview (the payment is accepted).
        """
        view = self.view(draft).preview
        if view.paid <= view.priced.total:
            return view
        try:
            settle(view.priced.total, draft.payment_requests(), self.settings, refund=False)
        except InvalidInput as error:
            raise ProblemError(422, error.code, error.message, "amount") from error
        return view

    # -- customer display (written in the background: a request never waits for it) ------------

    def _show_line(self, view: TicketView, focus: int | None) -> None:
        lines, priced = view.draft.lines, view.preview.priced.lines
        if not lines:
            self._show("", self._spread("TOTAL", 0))
            return
        index = next((i for i, line in enumerate(lines) if line.id == focus), len(lines) - 1)
        amount = priced[index].gross - priced[index].line_discount
        self._show(self._spread(lines[index].label, amount),
                   self._spread("TOTAL", view.preview.priced.total))

    def _show_settled(self, total: int, change: int) -> None:
        second = self._spread(texts("fr").change, change) if change else "Merci !"
        self._show(self._spread("TOTAL", total), second)

    def _spread(self, label: str, cents: int) -> str:
        """``label`` left, the French amount right, on one display line."""
        width = self.devices.display.profile.columns if self.devices and self.devices.display \
            else 20
        amount = money(cents, texts("fr"))
        room = width - len(amount) - 1
        return f"{label[:room]:<{room}} {amount}" if room > 0 else amount[:width]

    def _show(self, line1: str, line2: str) -> None:
        if self.devices is not None:
            self.devices.screen.show((line1, line2))


def _with_line(draft: Draft, line: DraftLine) -> Draft:
    if len(draft.lines) >= MAX_LINES:
        raise conflict("too_many_lines", f"a ticket has at most {MAX_LINES} lines")
    added = line.model_copy(update={"id": draft.next_id})
    return draft.model_copy(update={"lines": (*draft.lines, added),
                                    "next_id": draft.next_id + 1})


def _line_of(draft: Draft, line_id: int) -> DraftLine:
    line = draft.line(line_id)
    if line is None:
        raise not_found("line", line_id, "line_id")
    return line


def _return_field(error: InvalidInput) -> ProblemError:
    """Name a return's refused field as the API body does (``refunds``, ``line_no``)."""
    field = (error.field or "").replace("original_line_no", "line_no")
    if field.startswith("payments"):
        field = "refunds" + field[len("payments"):]
    return ProblemError(422, error.code, error.message, field or None)


def _line_details(line: DraftLine, amounts: TicketLine) -> dict[str, Any]:
    """A line as journaled in a void event."""
    return {"line_id": line.id, "label": line.label, "sku": line.sku, "barcode": line.barcode,
            "quantity_milli": line.quantity_milli, "unit_price": line.unit_price,
            "vat_rate": line.vat_rate, "amount": amounts.gross - amounts.line_discount}

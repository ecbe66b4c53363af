"""Selling over HTTP: drafts, lines, payments, finalize, park/resume, voids, returns, training.

Rules in ``agent.services.sales``; the user reference is docs/api/tickets.md.

Routes (every one needs a signed-in cashier; approvals by a manager, signed in or through
``X-Manager-Approval: <user id>:<pin>``)::

    POST   /v1/tickets                          new draft {lines?, training?, customer_ref?}
    GET    /v1/tickets?state=&limit=            open (this frontend's) and parked drafts
    GET    /v1/tickets/{id}                     a draft, priced
    POST   /v1/tickets/{id}/lines               {barcode | sku | label+unit_price+vat_rate,
                                                 quantity_milli?} (weighed: the scale)
    PATCH  /v1/tickets/{id}/lines/{line_id}     {quantity_milli?, discount?}
    DELETE /v1/tickets/{id}/lines/{line_id}     line void            approval line_void (1030)
    PUT    /v1/tickets/{id}/discount            ticket discount {kind, value, reason?}
    DELETE /v1/tickets/{id}/discount
    POST   /v1/tickets/{id}/payments            {tender, amount}
    DELETE /v1/tickets/{id}/payments/{pay_id}
    POST   /v1/tickets/{id}/finalize            {print?, email?} → the journaled sale
    POST   /v1/tickets/{id}/park | /resume
    POST   /v1/tickets/{id}/void                {reason}             approval ticket_void (1031)
    GET    /v1/sales/{seq}                      a sale as journaled, returned quantities
    POST   /v1/returns                          {original_seq, lines, refunds, reason?}
                                                                     approval return (1020)
    GET    /v1/training   POST /v1/training {on}                     on: approval training
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from agent.http.auth import CashierDep, access_of, approval
from agent.http.checkout import check_delivery, deliver
from agent.http.idempotency import current_key
from agent.http.sales_models import (
    ApprovalHeader,
    DiscountIn,
    FinalizeIn,
    ItemId,
    LineIn,
    LinePatch,
    PaymentIn,
    ReturnIn,
    ReturnOut,
    SaleOut,
    Seq,
    StoredSaleOut,
    TicketId,
    TicketIn,
    TicketOut,
    TicketsOut,
    TrainingIn,
    TrainingOut,
    VoidIn,
    return_out,
    return_request,
    sale_out,
    stored_sale_out,
    summary_out,
    ticket_out,
)
from agent.services.access import Approval
from agent.services.drafts import DraftState
from agent.services.sales import Sales

if TYPE_CHECKING:
    from agent.http.context import AppServices


LineVoidApproval = Annotated[Approval, Depends(approval("line_void"))]
TicketVoidApproval = Annotated[Approval, Depends(approval("ticket_void"))]
ReturnApproval = Annotated[Approval, Depends(approval("return"))]


def install_sales_api(app: FastAPI, services: AppServices) -> None:
    """Add the sales routes."""
    router = APIRouter(prefix="/v1", tags=["sales"])
    sales = services.sales
    _draft_routes(router, sales)
    _line_routes(router, sales)
    _payment_routes(router, sales)
    _ending_routes(router, services)
    _return_routes(router, services)
    _training_routes(router, sales)
    app.include_router(router)


def _draft_routes(router: APIRouter, sales: Sales) -> None:
    @router.post("/tickets", status_code=201, summary="Open a ticket draft")
    async def create(who: CashierDep, body: TicketIn | None = None) -> TicketOut:
        body = body or TicketIn()
        return ticket_out(await sales.create(who, [line.spec() for line in body.lines],
                                             body.training, body.customer_ref))

    @router.get("/tickets", summary="Open (this frontend's) and parked drafts")
    async def listed(who: CashierDep, state: Annotated[DraftState | None, Query()] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100) -> TicketsOut:
        drafts = await sales.listed(who, state, limit)
        return TicketsOut(tickets=[summary_out(draft) for draft in drafts])

    @router.get("/tickets/{ticket_id}", summary="A draft, priced")
    async def get(_: CashierDep, ticket_id: TicketId) -> TicketOut:
        return ticket_out(await sales.get(ticket_id))


def _line_routes(router: APIRouter, sales: Sales) -> None:
    @router.post("/tickets/{ticket_id}/lines", status_code=201, summary="Add a line")
    async def add(who: CashierDep, ticket_id: TicketId, body: LineIn) -> TicketOut:
        return ticket_out(await sales.add_line(who, ticket_id, body.spec()))

    @router.patch("/tickets/{ticket_id}/lines/{line_id}", summary="Change quantity or discount")
    async def patch(who: CashierDep, ticket_id: TicketId, line_id: ItemId,
                    body: LinePatch) -> TicketOut:
        set_discount = "discount" in body.model_fields_set
        discount = body.discount.request() if body.discount else None
        return ticket_out(await sales.update_line(
            who, ticket_id, line_id, quantity_milli=body.quantity_milli, discount=discount,
            set_discount=set_discount))

    @router.delete("/tickets/{ticket_id}/lines/{line_id}", summary="Void a line (manager)")
    async def void_line(who: CashierDep, consent: LineVoidApproval, ticket_id: TicketId,
                        line_id: ItemId) -> TicketOut:
        return ticket_out(await sales.void_line(who, ticket_id, line_id, consent))

    @router.put("/tickets/{ticket_id}/discount", summary="Set the ticket discount")
    async def set_discount(who: CashierDep, ticket_id: TicketId,
                           body: DiscountIn) -> TicketOut:
        return ticket_out(await sales.set_discount(who, ticket_id, body.request()))

    @router.delete("/tickets/{ticket_id}/discount", summary="Remove the ticket discount")
    async def remove_discount(who: CashierDep, ticket_id: TicketId) -> TicketOut:
        return ticket_out(await sales.set_discount(who, ticket_id, None))


def _payment_routes(router: APIRouter, sales: Sales) -> None:
    @router.post("/tickets/{ticket_id}/payments", status_code=201, summary="Add a payment")
    async def pay(who: CashierDep, ticket_id: TicketId, body: PaymentIn) -> TicketOut:
        return ticket_out(await sales.add_payment(who, ticket_id, body.tender, body.amount))

    @router.delete("/tickets/{ticket_id}/payments/{payment_id}", summary="Remove a payment")
    async def unpay(who: CashierDep, ticket_id: TicketId, payment_id: ItemId) -> TicketOut:
        return ticket_out(await sales.remove_payment(who, ticket_id, payment_id))


def _ending_routes(router: APIRouter, services: AppServices) -> None:
    sales = services.sales

    @router.post("/tickets/{ticket_id}/finalize", summary="Finalize: journal the sale")
    async def finalize(who: CashierDep, ticket_id: TicketId,
                       body: FinalizeIn | None = None) -> SaleOut:
        wishes = body or FinalizeIn()
        check_delivery(services.receipts, wishes.print_receipt, wishes.email)
        draft, entry = await sales.finalize(who, ticket_id)
        delivery = await deliver(services.receipts, services.devices, entry,
                                 print_receipt=wishes.print_receipt, email=wishes.email)
        return sale_out(draft, entry, wishes, delivery)

    @router.post("/tickets/{ticket_id}/park", summary="Park a draft")
    async def park(who: CashierDep, ticket_id: TicketId) -> TicketOut:
        return ticket_out(await sales.park(who, ticket_id))

    @router.post("/tickets/{ticket_id}/resume", summary="Resume a parked draft here")
    async def resume(who: CashierDep, ticket_id: TicketId) -> TicketOut:
        return ticket_out(await sales.resume(who, ticket_id))

    @router.post("/tickets/{ticket_id}/void", summary="Void a draft (manager)")
    async def void(who: CashierDep, consent: TicketVoidApproval, ticket_id: TicketId,
                   body: VoidIn) -> TicketOut:
        return ticket_out(await sales.void(who, ticket_id, body.reason, consent))


def _return_routes(router: APIRouter, services: AppServices) -> None:
    sales = services.sales

    @router.get("/sales/{seq}", summary="A journaled sale and its returned quantities")
    async def sale(_: CashierDep, seq: Seq) -> StoredSaleOut:
        return stored_sale_out(await sales.sale(seq))

    @router.post("/returns", status_code=201, summary="Return goods of a sale (manager)")
    async def refund(who: CashierDep, consent: ReturnApproval, body: ReturnIn) -> ReturnOut:
        check_delivery(services.receipts, body.print_receipt, None)
        entry = await sales.refund(return_request(body, who.operator), consent, current_key())
        delivery = await deliver(services.receipts, services.devices, entry,
                                 print_receipt=body.print_receipt)
        return return_out(entry, body.original_seq, consent.approver.id, delivery)


def _training_routes(router: APIRouter, sales: Sales) -> None:
    @router.get("/training", summary="Whether this frontend is in training mode")
    async def training(who: CashierDep) -> TrainingOut:
        return TrainingOut(on=await sales.training(who.frontend.id))

    @router.post("/training", summary="Training mode on (manager) or off for this frontend")
    async def set_training(request: Request, who: CashierDep, body: TrainingIn,
                           x_manager_approval: ApprovalHeader = None) -> TrainingOut:
        consent = None
        if body.on:
            consent = await access_of(request).approve(who, "training", x_manager_approval)
        on = await sales.set_training(who, body.on, consent, current_key())
        return TrainingOut(on=on)


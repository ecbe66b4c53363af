"""Cash sessions and the drawer opened without a sale, over HTTP (rules in ``agent.services.cash``).

Routes::

    POST /v1/cash-sessions                     cashier   {float} → the session (201)
    GET  /v1/cash-sessions/current             cashier   state, expected cash, Z due?
    POST /v1/cash-sessions/current/movements   cashier   {kind, amount, reason?} (201);
                                               cash_out and safe_drop need a manager's approval
    GET  /v1/cash-sessions/current/x           cashier   the session's X report
    POST /v1/cash-sessions/current/close       manager   {counted: {tender: cents}} → counts + Z
    POST /v1/drawer/open                       approval  {reason} → JET 1040, drawer kicked

See ``docs/api/cash-and-reports.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from pydantic import BaseModel, Field

from agent.devices import DRAWER_PIN, DRAWER_PULSE_MS, Devices
from agent.errors import ProblemError
from agent.http.auth import CashierDep, ManagerDep, access_of, approval
from agent.http.devices_api import DEVICE_RESPONSES, DeviceProblem
from agent.http.idempotency import current_key
from agent.http.models import Body, Cents, Reason
from agent.services.access import Approval
from agent.services.cash import NEEDS_APPROVAL, CashDesk, CashSession, MovementKind
from agent.services.reports import ClosureReport, TenderCount, XReport
from drivers.errors import DeviceError
from fiscal.money import MAX_AMOUNT

if TYPE_CHECKING:
    from agent.http.context import AppServices

PositiveCents = Annotated[int, Field(ge=1, le=MAX_AMOUNT, description="Integer cents, > 0")]
Tender = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]


class OpenIn(Body):
    """The float put in the drawer (cents; 0 for an empty drawer)."""

    float: Cents


class CashSessionOut(BaseModel):
    """A cash session."""

    id: int
    state: Literal["open", "closed"]
    business_date: str
    opened_by: str
    opened_at: str
    float: int
    from_seq: int
    float_seq: int | None
    closed_by: str | None
    closed_at: str | None
    count_seq: int | None
    closure_seq: int | None


class CurrentOut(BaseModel):
    """The open session (``state: none`` when there is none) and what the till should know."""

    state: Literal["open", "none"]
    business_date: str
    expected_cash: int | None
    day_closure_due: bool
    session: CashSessionOut | None


class MovementIn(Body):
    """Cash put in, taken out, or dropped in the safe."""

    kind: MovementKind
    amount: PositiveCents
    reason: Reason | None = None


class MovementOut(BaseModel):
    """The journaled movement and the cash expected in the drawer after it."""

    seq: int
    kind: MovementKind
    amount: int
    reason: str | None
    operator: str
    approved_by: str | None
    expected_cash: int


class CloseIn(Body):
    """The amounts counted per tender (cents): the drawer's cash, the card terminal's total…"""

    counted: dict[Tender, Cents] = Field(min_length=1, max_length=32)


class CloseOut(BaseModel):
    """The closed session, expected against counted per tender, and the Z."""

    session: CashSessionOut
    count_seq: int
    counts: list[TenderCount]
    z: ClosureReport | None


class DrawerIn(Body):
    """Why the drawer is opened without a sale."""

    reason: Reason


class DrawerOut(BaseModel):
    """The journaled event (JET 1040) of the drawer opened without a sale."""

    seq: int
    device: str = "drawer"
    requested_by: str
    approved_by: str


def session_out(session: CashSession) -> CashSessionOut:
    """The JSON shape of a session."""
    return CashSessionOut(
        id=session.id, state=session.state, business_date=session.business_date,
        opened_by=session.opened_by, opened_at=session.opened_at, float=session.float_amount,
        from_seq=session.from_seq, float_seq=session.float_seq, closed_by=session.closed_by,
        closed_at=session.closed_at, count_seq=session.count_seq,
        closure_seq=session.closure_seq)


def drawer_kick(devices: Devices | None) -> Callable[[], Awaitable[None]]:
    """Send the drawer pulse through the printer; a device problem answers 503/409."""

    async def kick() -> None:
        if devices is None:
            raise ProblemError(503, "device_unavailable", "this box has no devices", "drawer")
        try:
            await devices.require("drawer").kick_drawer(DRAWER_PIN, DRAWER_PULSE_MS,
                                                        DRAWER_PULSE_MS)
        except DeviceError as error:
            raise DeviceProblem("drawer", error) from error

    return kick


def install_cash_api(app: FastAPI, services: AppServices) -> None:
    """Add the cash routes (and make the cash desk reachable as ``app.state.cash``)."""
    app.state.cash = services.cash
    router = APIRouter(prefix="/v1", tags=["cash"])
    _session_routes(router, services.cash)
    _closing_routes(router, services.cash, services.devices)
    app.include_router(router)


def _session_routes(router: APIRouter, desk: CashDesk) -> None:
    @router.post("/cash-sessions", status_code=201, summary="Open a cash session with a float")
    async def open_session(principal: CashierDep, body: OpenIn) -> CashSessionOut:
        return session_out(await desk.open_session(principal.operator, body.float,
                                                   current_key()))

    @router.get("/cash-sessions/current", summary="The open cash session")
    async def current(_: CashierDep) -> CurrentOut:
        status = await desk.status()
        session = status.session
        return CurrentOut(state="open" if session else "none",
                          business_date=status.business_date,
                          expected_cash=status.expected_cash,
                          day_closure_due=status.day_closure_due,
                          session=session_out(session) if session else None)

    @router.post("/cash-sessions/current/movements", status_code=201,
                 summary="Cash in, cash out (approval) or safe drop (approval)")
    async def move(request: Request, principal: CashierDep, body: MovementIn,
                   x_manager_approval: Annotated[str | None, Header(max_length=64)] = None,
                   ) -> MovementOut:
        consent = None
        if body.kind in NEEDS_APPROVAL:
            consent = await access_of(request).approve(principal, body.kind, x_manager_approval)
        moved = await desk.move(principal.operator, body.kind, body.amount, body.reason,
                                consent, current_key())
        return MovementOut(seq=moved.entry.seq, kind=body.kind, amount=body.amount,
                           reason=body.reason, operator=principal.operator,
                           approved_by=moved.approved_by, expected_cash=moved.expected_cash)

    @router.get("/cash-sessions/current/x", summary="The X report of the open session")
    async def x_report(_: CashierDep) -> XReport:
        return await desk.x_report(await desk.require_open())


def _closing_routes(router: APIRouter, desk: CashDesk, devices: Devices | None) -> None:
    @router.post("/cash-sessions/current/close",
                 summary="Count the drawer, close the business day (Z), end the session")
    async def close(principal: ManagerDep, body: CloseIn) -> CloseOut:
        closing = await desk.close_session(principal.operator, dict(body.counted),
                                           current_key())
        return CloseOut(session=session_out(closing.session), count_seq=closing.count_seq,
                        counts=closing.counts, z=closing.z)

    @router.post("/drawer/open", responses=DEVICE_RESPONSES,
                 summary="Open the drawer without a sale (manager approval; JET 1040)")
    async def open_drawer(consent: Annotated[Approval, Depends(approval("drawer_no_sale"))],
                          body: DrawerIn) -> DrawerOut:
        entry = await desk.open_drawer(consent, body.reason, drawer_kick(devices),
                                       current_key())
        return DrawerOut(seq=entry.seq, requested_by=consent.requested_by,
                         approved_by=consent.approver.id)

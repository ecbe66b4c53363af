"""Reports and closures over HTTP (computations in ``agent.services.reports``).

Routes::

    GET  /v1/reports/x                        cashier   X of the current business day
    GET  /v1/reports/z/{seq}                  cashier   a day closure (Z) by journal seq
    GET  /v1/reports/z?date=YYYY-MM-DD        cashier   the Z of a business date
    GET  /v1/reports/stats?from=&to=&top=     manager   statistics over ≤ 366 days
    POST /v1/closures/day|month|year          manager   {date?} → the closures written
    GET  /v1/closures?kind=&from=&to=&limit=  cashier   stored closures (as reports)
    GET  /v1/closures/{seq}                   cashier   one stored closure entry, as signed

See ``docs/api/cash-and-reports.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query
from pydantic import BaseModel

from agent.errors import invalid, not_found
from agent.http.auth import CashierDep, ManagerDep
from agent.http.idempotency import current_key
from agent.http.models import Body
from agent.services.cash import CashDesk
from agent.services.reports import (
    CLOSURE_TYPES,
    ClosureReport,
    Statistics,
    XReport,
    closure_report,
    statistics,
    x_report,
)
from fiscal.chain import Entry
from fiscal.journal import Journal

if TYPE_CHECKING:
    from agent.http.context import AppServices

MAX_STATS_DAYS = 366
MAX_SEQ = 2**62
ClosureKindParam = Literal["day", "month", "year"]
Seq = Annotated[int, Path(ge=1, le=MAX_SEQ, description="Global journal sequence")]
DateFrom = Annotated[dt.date | None, Query(alias="from", description="First business date")]
DateTo = Annotated[dt.date | None, Query(alias="to", description="Last business date")]


class ClosureIn(Body):
    """The business date whose period to close (default: today's)."""

    date: dt.date | None = None


class ClosuresOut(BaseModel):
    """Closures, in journal order."""

    closures: list[ClosureReport]


class StoredEntryOut(BaseModel):
    """A journal entry exactly as stored and signed."""

    seq: int
    chain: str
    chain_seq: int
    first: bool
    prev_sig: str | None
    data_to_sign: str
    content_hash: str
    sig: str
    alg: str
    key_id: str
    format_version: int
    at_utc: str
    at_local: str
    register_id: str
    store_id: str
    record: dict[str, Any]


async def day_x(journal: Journal) -> XReport:
    """The X report of the current business date (every ticket and cash movement of it)."""
    through = journal.state.seq
    day = journal.business_date(journal.now())
    text = day.isoformat()
    entries = await journal.store.tickets_on(text)
    entries += await journal.store.of_type_on("cash_movement", text, text)
    return x_report(entries, business_date=day, through_seq=through)


async def period_tickets(journal: Journal, date_from: dt.date, date_to: dt.date) -> list[Entry]:
    """The sales and returns (training included; reports skip them) of business dates."""
    first, last = date_from.isoformat(), date_to.isoformat()
    return (await journal.store.of_type_on("sale", first, last)
            + await journal.store.of_type_on("return", first, last))


def stats_period(date_from: dt.date | None, date_to: dt.date | None) -> tuple[dt.date, dt.date]:
    """Both dates given, ``from ≤ to``, at most 366 days apart (else 422)."""
    if date_from is None or date_to is None:
        raise invalid("period_required", "give both from and to (YYYY-MM-DD)",
                      "from" if date_from is None else "to")
    if date_to < date_from:
        raise invalid("period_reversed", "to is before from", "to")
    if (date_to - date_from).days > MAX_STATS_DAYS:
        raise invalid("period_too_long", f"at most {MAX_STATS_DAYS} days apart", "to")
    return date_from, date_to


async def closure_at(journal: Journal, seq: int, kinds: frozenset[str], what: str) -> Entry:
    """The closure entry at ``seq`` (one of ``kinds``) or 404 ``{what}_not_found``."""
    entry = await journal.get(seq)
    if entry is None or entry.record["type"] not in kinds:
        raise not_found(what, seq, "seq")
    return entry


def install_reports_api(app: FastAPI, services: AppServices) -> None:
    """Add the reports and closures routes."""
    router = APIRouter(prefix="/v1", tags=["reports"])
    _report_routes(router, services.journal)
    _closure_routes(router, services.journal, services.cash)
    app.include_router(router)


def _report_routes(router: APIRouter, journal: Journal) -> None:
    @router.get("/reports/x", summary="X report: the current business day so far")
    async def report_x(_: CashierDep) -> XReport:
        return await day_x(journal)

    @router.get("/reports/z/{seq}", summary="Z report: a day closure by journal seq")
    async def report_z_seq(_: CashierDep, seq: Seq) -> ClosureReport:
        entry = await closure_at(journal, seq, frozenset({"day_closure"}), "z_report")
        return closure_report(entry)

    @router.get("/reports/z", summary="Z report: the day closure of a business date")
    async def report_z_date(_: CashierDep, date: Annotated[dt.date, Query()]) -> ClosureReport:
        found = await journal.store.of_type_on("day_closure", date.isoformat(),
                                               date.isoformat())
        if not found:
            raise not_found("z_report", date.isoformat(), "date")
        return closure_report(found[-1])

    @router.get("/reports/stats", summary="Statistics over business dates (≤ 366 days)")
    async def report_stats(_: ManagerDep, date_from: DateFrom = None, date_to: DateTo = None,
                           top: Annotated[int, Query(ge=1, le=100)] = 10) -> Statistics:
        first, last = stats_period(date_from, date_to)
        entries = await period_tickets(journal, first, last)
        return statistics(entries, date_from=first, date_to=last, top=top)


def _closure_routes(router: APIRouter, journal: Journal, desk: CashDesk) -> None:
    @router.post("/closures/{kind}", summary="Close a day, month or fiscal year")
    async def close(principal: ManagerDep, kind: Annotated[ClosureKindParam, Path()],
                    body: ClosureIn | None = None) -> ClosuresOut:
        day = body.date if body else None
        entries = await desk.close_period(kind, principal.operator, day, current_key())
        return ClosuresOut(closures=[closure_report(e) for e in entries])

    @router.get("/closures", summary="Stored closures by kind and business dates")
    async def closures(_: CashierDep, kind: ClosureKindParam | None = None,
                       date_from: DateFrom = None, date_to: DateTo = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> ClosuresOut:
        first = date_from.isoformat() if date_from else "0000-00-00"
        last = date_to.isoformat() if date_to else "9999-99-99"
        types = [f"{kind}_closure"] if kind else sorted(CLOSURE_TYPES)
        found = [e for t in types for e in await journal.store.of_type_on(t, first, last)]
        found.sort(key=lambda entry: entry.seq)
        return ClosuresOut(closures=[closure_report(e) for e in found[:limit]])

    @router.get("/closures/{seq}", summary="One stored closure entry, as signed")
    async def closure(_: CashierDep, seq: Seq) -> StoredEntryOut:
        entry = await closure_at(journal, seq, CLOSURE_TYPES, "closure")
        return StoredEntryOut(**entry.to_json())

"""HQ routes for the owner and the accountant: sales, closures, perpetual totals, FEC and CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from cloud.hq import exports, queries
from cloud.hq.context import ConnectionDep
from cloud.hq.models import (
    Closure,
    ClosureKind,
    Dimension,
    Ident,
    PerpetualTotal,
    SalesReport,
)
from cloud.hq.problems import ProblemError
from cloud.hq.queries import Scope

router = APIRouter()

From = Annotated[dt.date | None, Query(alias="from", description="First business day")]
To = Annotated[dt.date | None, Query(alias="to", description="Last business day (inclusive)")]


def scope(date_from: dt.date | None, date_to: dt.date | None, tenant: str | None,
          store: str | None, box: str | None) -> Scope:
    """The scope of a report (422 ``invalid_range`` when ``from`` is after ``to``)."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise ProblemError(422, "invalid_range", "from is after to", "from")
    return Scope(date_from, date_to, tenant, store, box)


@router.get("/sales", summary="Sales by store, box, register, cashier and day")
async def sales(conn: ConnectionDep, date_from: From = None, date_to: To = None,
                by: Annotated[list[Dimension], Query(max_length=6)] = ["day"],  # noqa: B006
                tenant: Ident = None, store: Ident = None, box: Ident = None) -> SalesReport:
    """Sales and returns (training excluded), grouped by the ``by`` dimensions, in order."""
    dims = list(dict.fromkeys(by))
    chosen = scope(date_from, date_to, tenant, store, box)
    rows = await queries.sales(conn, dims, chosen)
    (totals,) = await queries.sales(conn, [], chosen)
    return SalesReport(by=dims, date_from=date_from, date_to=date_to, rows=rows, totals=totals)


@router.get("/closures", summary="Closures (Z) with their totals and perpetual totals")
async def closures(conn: ConnectionDep, date_from: From = None, date_to: To = None,
                   kind: Annotated[list[ClosureKind], Query(max_length=3)] = ["day"],  # noqa: B006
                   tenant: Ident = None, store: Ident = None, box: Ident = None,
                   limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[Closure]:
    """Closures whose period ends between ``from`` and ``to``, by period end, box and seq."""
    return await queries.closures(conn, kind, scope(date_from, date_to, tenant, store, box),
                                  limit)


@router.get("/perpetual-totals", summary="Each box's perpetual totals")
async def perpetual_totals(conn: ConnectionDep, tenant: Ident = None, store: Ident = None,
                           box: Ident = None) -> list[PerpetualTotal]:
    """The perpetual totals at each box's latest day, month and year closure."""
    return await queries.perpetual_totals(conn, Scope(tenant=tenant, store=store, box=box))


def _text(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {media_type: {"schema": {"type": "string"}}}}}


@router.get("/exports/fec", summary="FEC of the day closures (for the accountant)",
            response_class=Response, responses=_text("text/plain"))
async def fec(conn: ConnectionDep, date_from: From = None, date_to: To = None,
              tenant: Ident = None, store: Ident = None, box: Ident = None) -> Response:
    """The *fichier des écritures comptables* of the day closures between ``from`` and ``to``."""
    text = await exports.fec(conn, scope(date_from, date_to, tenant, store, box))
    name = f"FEC{(date_to or dt.date.today()).strftime('%Y%m%d')}.txt"
    return Response(text.encode("utf-8"), media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/exports/sales.csv", summary="Sales per day, box and VAT rate (CSV, ';')",
            response_class=Response, responses=_text("text/csv"))
async def sales_csv(conn: ConnectionDep, date_from: From = None, date_to: To = None,
                    tenant: Ident = None, store: Ident = None, box: Ident = None) -> Response:
    """Sales and returns per business day, box and VAT rate, as ``;``-separated CSV."""
    text = await exports.sales_csv(conn, scope(date_from, date_to, tenant, store, box))
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="sales.csv"'})

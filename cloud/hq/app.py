"""The HQ API (FastAPI): reports for the owner and the accountant, the fleet's replication state.

``create_app(pool, token=…)`` builds the application around a psycopg connection pool working
in the cloud's schema. Routes under ``/v1`` need the bearer token when one is set; ``/health``
is open. Every error is a problem (``cloud.hq.problems``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.db.migrate import require_current
from cloud.hq import boxes_api, reports_api
from cloud.hq.context import ConnectionDep, authorised
from cloud.hq.models import Health
from cloud.hq.problems import PROBLEM_RESPONSES, install_error_handlers

VERSION = "1"


def create_app(pool: AsyncConnectionPool[Any], *, token: str | None = None,
               own_pool: bool = False) -> FastAPI:
    """The HQ application on ``pool`` (opened and closed with the app when ``own_pool``)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if own_pool:
            await pool.open(wait=True)
            async with pool.connection() as conn:
                await require_current(conn)
        try:
            yield
        finally:
            if own_pool:
                await pool.close()

    app = FastAPI(title="tillbox HQ", version=VERSION, lifespan=lifespan,
                  responses=PROBLEM_RESPONSES,
                  description="Sales, closures, perpetual totals and exports of every box's "
                              "certified journal, as replicated and re-verified by the cloud.")
    app.state.pool, app.state.token = pool, token
    install_error_handlers(app)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorised)])
    v1.include_router(reports_api.router, tags=["reports"])
    v1.include_router(boxes_api.router, tags=["boxes"])
    app.include_router(v1)
    app.add_api_route("/health", health, methods=["GET"], summary="The service and its database")
    return app


async def health(conn: ConnectionDep) -> Health:
    """``ok`` with the number of boxes and of acknowledged entries."""
    row = await (await conn.execute(
        "SELECT count(*), coalesce(sum(acked_through), 0) FROM boxes")).fetchone()
    boxes, acked = row if row is not None else (0, 0)
    return Health(status="ok", boxes=int(boxes), acked_entries=int(acked))

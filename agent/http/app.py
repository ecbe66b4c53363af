"""The local HTTP API (FastAPI): the status page, health, system identity, journal verification.

``create_app(services)`` builds the application around the box's services, passed by
construction (no module globals). Every error answers ``application/problem+json`` (RFC 9457)
with a stable ``code`` and, when one input is at fault, its ``field``::

    ProblemError (ours)             → its status and code
    fiscal.errors.FiscalError       → 422 / 404 / 409 / 500 by class, the error's code
    RequestValidationError          → 422 invalid_input, field = the offending parameter
    HTTPException (404, 405, …)     → its status, code from the status phrase
    anything else                   → 500 internal_error (logged)
"""

from __future__ import annotations

import re
import socket
from http import HTTPStatus
from typing import Annotated, Any, Literal

import structlog
from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from agent.errors import ProblemError
from agent.http.access_api import install_access_api
from agent.http.cash_api import install_cash_api
from agent.http.catalog_api import install_catalog_api
from agent.http.context import AppServices
from agent.http.devices_api import DeviceOut, device_list, install_devices_api
from agent.http.events_api import install_events_api
from agent.http.idempotency import IdempotencyMiddleware
from agent.http.receipts_api import install_receipts_api
from agent.http.reports_api import install_reports_api
from agent.http.sales_api import install_sales_api
from agent.http.status_page import ChainRow, StatusView, render
from agent.i18n import pick_language
from agent.observability import (
    INTEGRITY_FAILURE,
    INTEGRITY_PASSED,
    VerificationSummary,
    write_event,
)
from agent.replication.metrics import install_metrics_api
from agent.replication.state import ReplicationOut
from fiscal.errors import (
    DayNotClosed,
    FiscalError,
    InvalidInput,
    JournalCorrupt,
    KeyFileError,
    NotFound,
    PeriodClosed,
)
from fiscal.journal import Journal

PROBLEM_JSON = "application/problem+json"

FISCAL_STATUS: tuple[tuple[type[FiscalError], int], ...] = (
    (InvalidInput, 422), (NotFound, 404), (PeriodClosed, 409), (DayNotClosed, 409),
    (JournalCorrupt, 500), (KeyFileError, 500),
)


# -- response models --------------------------------------------------------------------------


class Problem(BaseModel):
    """An error (RFC 9457) with a stable machine ``code``."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    field: str | None = None


class HeadOut(BaseModel):
    """A chain's signed head."""

    chain_seq: int
    seq: int


class JournalHealth(BaseModel):
    """The journal's last global sequence and each chain's head."""

    seq: int
    heads: dict[str, HeadOut]


class AlarmOut(BaseModel):
    """A raised alarm."""

    code: str
    message: str
    chain: str | None
    raised_at: str


class HealthOut(BaseModel):
    """``ok`` or ``alarm``, with the journal's position and the alarms."""

    status: Literal["starting", "ok", "alarm"]
    version: str
    journal: JournalHealth
    alarms: list[AlarmOut]
    devices: list[DeviceOut] = []
    replication: ReplicationOut | None = None


class StoreOut(BaseModel):
    """The merchant identity."""

    name: str
    address: list[str]
    siret: str
    naf: str
    vat_number: str


class SystemOut(BaseModel):
    """The box's identity and software version."""

    software: str
    version: str
    store_id: str
    register_id: str
    box_key_id: str
    epoch: str
    timezone: str
    currency: str
    started_at: str
    store: StoreOut


class VerificationOut(BaseModel):
    """The outcome of a full journal verification."""

    clean: bool
    checked_at: str
    findings: list[dict[str, Any]]


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {"model": Problem, "description": "A problem (RFC 9457)",
                "content": {PROBLEM_JSON: {}}},
}


# -- errors -----------------------------------------------------------------------------------


def problem(status: int, code: str, detail: str | None = None,
            field: str | None = None) -> JSONResponse:
    """Return a ``application/problem+json`` response."""
    body = Problem(title=HTTPStatus(status).phrase, status=status, code=code, detail=detail,
                   field=field)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status,
                        media_type=PROBLEM_JSON)


def fiscal_status(error: FiscalError) -> int:
    """The HTTP status of a journal error."""
    return next((status for kind, status in FISCAL_STATUS if isinstance(error, kind)), 500)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        return problem(error.status, error.code, error.detail, error.field)

    async def on_fiscal(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, FiscalError)
        return problem(fiscal_status(error), error.code, error.message, error.field)

    async def on_validation(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
        return problem(422, "invalid_input", str(first.get("msg", "invalid request")), where)

    async def on_http(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        code = HTTPStatus(error.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
        return problem(error.status_code, code, str(error.detail))

    async def on_crash(request: Request, error: Exception) -> JSONResponse:
        structlog.get_logger(__name__).exception("request_failed", path=request.url.path)
        return problem(500, "internal_error", "an unexpected error occurred")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(FiscalError, on_fiscal)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)


# -- views ------------------------------------------------------------------------------------


async def status_view(services: AppServices) -> StatusView:
    """Gather what the status page shows, now."""
    journal, health, settings = services.journal, services.health, services.settings
    closure = journal.periods.last.get("day_closure") if journal.periods else None
    return StatusView(
        status=health.status, store=settings.store, store_id=journal.settings.store_id,
        register_id=journal.settings.register_id, box_key_id=journal.key.key_id,
        version=services.version, started_at=services.started_at,
        devices=services.devices.statuses() if services.devices else health.devices,
        global_seq=journal.state.seq, chains=_chain_rows(journal),
        last_day_closure=closure.get("period_to") if closure else None,
        heads_checked_at=health.heads_checked_at, last_verification=health.last_verification,
        alarms=tuple(health.alarms),
        hostname=socket.gethostname(), listen=f"{settings.http.host}:{settings.http.port}",
        addresses=tuple(services.addresses()), pairing_code=services.access.pairing_code,
        paired_frontends=len(await services.access.frontends()),
        initial_admin_pin=await services.access.initial_admin_pin(),
        replication=await services.replicator.snapshot() if services.replicator else None,
    )


def _chain_rows(journal: Journal) -> tuple[ChainRow, ...]:
    heads = journal.heads()
    return tuple(ChainRow(chain, heads[chain].chain_seq, heads[chain].seq)
                 for chain in sorted(heads, key=lambda name: heads[name].seq))


def health_out(services: AppServices) -> HealthOut:
    """The ``/health`` document."""
    journal, health = services.journal, services.health
    heads = {chain: HeadOut(chain_seq=head.chain_seq, seq=head.seq)
             for chain, head in journal.heads().items()}
    alarms = [AlarmOut(code=a.code, message=a.message, chain=a.chain, raised_at=a.raised_at)
              for a in health.alarms]
    devices = device_list(services.devices).devices if services.devices else []
    return HealthOut(status=health.status, version=services.version,
                     journal=JournalHealth(seq=journal.state.seq, heads=heads), alarms=alarms,
                     devices=devices)


async def system_out(services: AppServices) -> SystemOut:
    """The ``/v1/system`` document."""
    journal, store = services.journal, services.settings.store
    return SystemOut(
        software="tillbox", version=services.version, store_id=journal.settings.store_id,
        register_id=journal.settings.register_id, box_key_id=journal.key.key_id,
        epoch=await journal.epoch(), timezone=journal.settings.timezone,
        currency=journal.settings.currency, started_at=services.started_at,
        store=StoreOut(name=store.name, address=list(store.address), siret=store.siret,
                       naf=store.naf, vat_number=store.vat_number))


async def run_verification(services: AppServices) -> VerificationOut:
    """Verify the whole journal, remember the outcome, journal it (event 1120 or 90)."""
    if services.verifier is None:
        raise ProblemError(501, "verifier_unavailable",
                           "this build has no journal verifier (fiscal.verify)")
    health = services.health
    clean, findings = await services.verifier(services.journal.data_dir)
    checked_at = health.now_text()
    health.last_verification = VerificationSummary(checked_at, clean, len(findings))
    if clean:
        await write_event(services.journal, health, INTEGRITY_PASSED, {"scope": "full"})
    else:
        health.raise_alarm("verification_failed", f"{len(findings)} finding(s)", blocking=True)
        await write_event(services.journal, health, INTEGRITY_FAILURE,
                          {"scope": "full", "findings": len(findings)})
    return VerificationOut(clean=clean, checked_at=checked_at, findings=findings)


# -- the application --------------------------------------------------------------------------


def operation_id(route: APIRoute) -> str:
    """Method and path in snake case (``post_v1_tickets_ticket_id_lines``), also MQTT's name."""
    words = re.findall(r"[a-z0-9]+", route.path_format.lower()) or [route.name]
    return "_".join([min(route.methods or {"get"}).lower(), *words])


def create_app(services: AppServices) -> FastAPI:
    """Build the HTTP application around ``services``."""
    app = FastAPI(title="tillbox box API", version=services.version,
                  openapi_url="/openapi.json", responses=PROBLEM_RESPONSES,
                  generate_unique_id_function=operation_id)
    _install_error_handlers(app)

    @app.get("/", response_class=HTMLResponse, tags=["status"], summary="The status page")
    async def status_page(
        lang: Annotated[str | None, Query(max_length=8)] = None,
        accept_language: Annotated[str | None, Header(max_length=512)] = None,
    ) -> HTMLResponse:
        language = pick_language(accept_language, lang)
        return HTMLResponse(render(await status_view(services), language),
                            headers={"Content-Language": language, "Cache-Control": "no-store"})

    @app.get("/health", tags=["status"], summary="Liveness and journal health",
             responses={503: {"model": HealthOut, "description": "The box is still starting"}})
    async def health(response: Response) -> HealthOut:
        if not services.health.serving:
            response.status_code = 503
        out = health_out(services)
        if services.replicator is not None:
            out.replication = ReplicationOut.of(await services.replicator.snapshot())
        return out

    @app.get("/v1/system", tags=["system"], summary="Identity and version of the box")
    async def system() -> SystemOut:
        return await system_out(services)

    @app.post("/v1/journal/verify", tags=["journal"], summary="Verify the whole journal")
    async def verify() -> VerificationOut:
        return await run_verification(services)

    if services.devices is not None:
        install_devices_api(app, services.devices, services.settings.store)
    _install_services(app, services)
    return app


def _install_services(app: FastAPI, services: AppServices) -> None:
    app.state.access = services.access
    app.add_middleware(IdempotencyMiddleware, db=services.db)
    install_sales_api(app, services)  # first: routes are matched in order, selling is hot
    install_access_api(app, services.journal, services.health)
    install_events_api(app, services.bus)
    install_catalog_api(app, services)
    install_cash_api(app, services)
    install_reports_api(app, services)
    install_receipts_api(app, services)
    install_metrics_api(app, services)

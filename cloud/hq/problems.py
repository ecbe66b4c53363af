"""HQ API errors: every refusal is ``application/problem+json`` (RFC 9457).

Each problem has a stable ``code`` and, when one input is at fault, its ``field``::

    ProblemError                    → its status, code and field
    RequestValidationError          → 422 invalid_input, field = the offending parameter
    HTTPException (404, 405, …)     → its status, code from the status phrase
    anything else                   → 500 internal_error (logged)
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Refuse a request: status, stable machine code, human detail, offending field."""

    def __init__(self, status: int, code: str, detail: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(detail or code)
        self.status, self.code, self.detail, self.field = status, code, detail, field


class Problem(BaseModel):
    """An error (RFC 9457) with a stable machine ``code``."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    field: str | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {"model": Problem, "description": "A problem (RFC 9457)",
                "content": {PROBLEM_JSON: {}}},
}


def not_found(what: str, ident: object, field: str | None = None) -> ProblemError:
    """404 ``{what}_not_found``."""
    return ProblemError(404, f"{what}_not_found", f"no {what} {ident!r}", field)


def problem(status: int, code: str, detail: str | None = None,
            field: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """Return an ``application/problem+json`` response."""
    body = Problem(title=HTTPStatus(status).phrase, status=status, code=code, detail=detail,
                   field=field)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status,
                        media_type=PROBLEM_JSON, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as a problem."""

    async def on_problem(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return problem(error.status, error.code, error.detail, error.field, headers)

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
        structlog.get_logger(__name__).exception("hq_request_failed", path=request.url.path)
        return problem(500, "internal_error", "an unexpected error occurred")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)

"""The one error type of the box's services: an answer with an HTTP status and a stable code.

Services (sales, catalog, access, cash, receipts) raise ``ProblemError``; the HTTP layer turns
it into ``application/problem+json`` (RFC 9457) and the local MQTT API into ``{ok: false,
error: {code, detail}}``, so both speak the same codes. ``field`` names the offending input
when there is one (dotted path into the JSON body, or a header name).
"""

from __future__ import annotations


class ProblemError(Exception):
    """Refuse a request: status, stable machine code, human detail, offending field."""

    def __init__(self, status: int, code: str, detail: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(detail or code)
        self.status, self.code, self.detail, self.field = status, code, detail, field


def not_found(what: str, ident: object, field: str | None = None) -> ProblemError:
    """404 ``{what}_not_found``."""
    return ProblemError(404, f"{what}_not_found", f"no {what} {ident!r}", field)


def conflict(code: str, detail: str, field: str | None = None) -> ProblemError:
    """409: the request is valid but the state of the box does not allow it."""
    return ProblemError(409, code, detail, field)


def invalid(code: str, detail: str, field: str | None = None) -> ProblemError:
    """422: the request names something impossible."""
    return ProblemError(422, code, detail, field)

"""The JSON shapes of the local MQTT API: a request's payload and the reply sent back.

Request payload (every key optional)::

    {"path": {"ticket_id": "T-1"}, "query": {"limit": 10}, "body": {...},
     "headers": {"Idempotency-Key": "k-1", "X-Manager-Approval": "..."}}

Replies: ``{"ok": true, "status": 201, "result": {...}}`` or ``{"ok": false, "status": 422,
"error": {<the problem document: type, title, status, code, detail, field>}}``; a replayed
idempotent answer adds ``"replayed": true``; a non-JSON answer adds ``"content_type"`` and gives
text as a string, other bytes in base64 with ``"encoding": "base64"``.
"""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

MAX_REQUEST_BYTES = 6 * 1024 * 1024
"""A request payload's size limit (the catalog's CSV import takes up to 5 MiB)."""
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})

Name = Annotated[str, Field(min_length=1, max_length=64)]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]
Scalar = StrictStr | StrictInt | StrictFloat | StrictBool
PathValue = Annotated[StrictStr, Field(max_length=512)] | StrictInt
QueryValue = Scalar | Annotated[list[Scalar], Field(max_length=64)]
Reply = dict[str, Any]


class RequestError(Exception):
    """A request the MQTT layer itself refuses (before the HTTP application sees it)."""

    def __init__(self, status: int, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field = status, code, detail, field

    def reply(self) -> Reply:
        """The error reply."""
        return error_reply(self.status, problem_document(self.status, self.code, self.detail,
                                                         self.field))


class CommandIn(BaseModel):
    """A request's payload: the HTTP operation's path and query parameters, body, headers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: dict[Name, PathValue] = Field(default_factory=dict, max_length=16)
    query: dict[Name, QueryValue] = Field(default_factory=dict, max_length=32)
    body: JsonValue = None
    headers: dict[HeaderName, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=16)

    @property
    def has_body(self) -> bool:
        """Whether the payload carried a ``body`` key (``null`` included)."""
        return "body" in self.model_fields_set


def parse_command(payload: bytes) -> CommandIn:
    """The request in ``payload`` (empty means ``{}``), or ``RequestError`` 400/413."""
    if len(payload) > MAX_REQUEST_BYTES:
        raise RequestError(413, "payload_too_large",
                           f"a request payload is at most {MAX_REQUEST_BYTES} bytes")
    try:
        command = CommandIn.model_validate_json(payload or b"{}")
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        raise RequestError(400, "invalid_request", first["msg"], where) from None
    forbidden = sorted(FORBIDDEN_HEADERS & {name.lower() for name in command.headers})
    if forbidden:
        raise RequestError(400, "invalid_request", "this header is set by the box",
                           f"headers.{forbidden[0]}")
    return command


def problem_document(status: int, code: str, detail: str | None,
                     field: str | None = None) -> dict[str, Any]:
    """A problem document like the HTTP API's (RFC 9457, with ``code`` and ``field``)."""
    document: dict[str, Any] = {"type": "about:blank", "title": _phrase(status),
                                "status": status, "code": code}
    if detail is not None:
        document["detail"] = detail
    if field is not None:
        document["field"] = field
    return document


def error_reply(status: int, problem: dict[str, Any]) -> Reply:
    """``{ok: false, status, error}``."""
    return {"ok": False, "status": status, "error": problem}


def answer_reply(status: int, content_type: str, content: bytes, *, replayed: bool) -> Reply:
    """The reply for an HTTP answer: its JSON (or text, or base64 bytes) as result or error."""
    reply: Reply = {"ok": status < 400, "status": status}
    if replayed:
        reply["replayed"] = True
    value = _decoded(content_type, content, reply)
    if status < 400:
        reply["result"] = value
    else:
        reply["error"] = value if isinstance(value, dict) else problem_document(
            status, _code(status), str(value) if value is not None else None)
    return reply


def encode(reply: Reply) -> bytes:
    """A reply as UTF-8 JSON."""
    return json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode()


def _decoded(content_type: str, content: bytes, reply: Reply) -> Any:
    if not content:
        return None
    media = content_type.split(";")[0].strip().lower()
    if media in ("application/json", "application/problem+json"):
        try:
            return json.loads(content)
        except ValueError:
            pass
    reply["content_type"] = content_type
    return _text_or_base64(media, content, reply)


def _text_or_base64(media: str, content: bytes, reply: Reply) -> str:
    if media.startswith("text/") or media.endswith(("+json", "+xml", "/csv")):
        try:
            return content.decode()
        except UnicodeDecodeError:
            pass
    reply["encoding"] = "base64"
    return base64.b64encode(content).decode("ascii")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _code(status: int) -> str:
    return _phrase(status).lower().replace(" ", "_").replace("-", "_")

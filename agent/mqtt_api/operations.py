"""The operations a request may name: the HTTP API's, by OpenAPI ``operationId``.

The list is read from the application's own OpenAPI document, so every route the HTTP API has
is an MQTT operation too, with the same id a generated client uses (``post_v1_tickets``,
``get_v1_tickets_ticket_id``; see ``agent.http.app.operation_id``). Streaming routes (the
server-sent events of ``GET /v1/events``) are left out: MQTT has ``event/#`` for that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI

from agent.mqtt_api.envelope import PathValue, RequestError

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
STREAMING = "text/event-stream"
PARAMETER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Operation:
    """One HTTP operation: its id, method and path template."""

    id: str
    method: str
    path: str

    @property
    def parameters(self) -> tuple[str, ...]:
        """The names of the path's parameters, in order."""
        return tuple(PARAMETER.findall(self.path))

    def url(self, values: dict[str, PathValue]) -> str:
        """The path with ``values`` filled in (each one percent-encoded)."""
        unknown = sorted(set(values) - set(self.parameters))
        if unknown:
            raise RequestError(422, "invalid_input", f"{self.path} has no such parameter",
                               unknown[0])
        for name in self.parameters:
            if name not in values or values[name] == "":
                raise RequestError(422, "invalid_input", "Field required", name)
        return PARAMETER.sub(lambda match: quote(str(values[match[1]]), safe=""), self.path)


def operations_of(app: FastAPI) -> dict[str, Operation]:
    """Every non-streaming operation of ``app``, by operation id."""
    found: dict[str, Operation] = {}
    for path, item in app.openapi().get("paths", {}).items():
        for method, spec in item.items():
            if method in HTTP_METHODS and "operationId" in spec and not _streams(spec):
                found[spec["operationId"]] = Operation(spec["operationId"], method.upper(),
                                                       path)
    return found


def _streams(spec: dict[str, Any]) -> bool:
    return any(STREAMING in answer.get("content", {})
               for answer in spec.get("responses", {}).values())

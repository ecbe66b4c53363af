"""A request received over MQTT, served by the very HTTP application, in process.

``Dispatcher(app).serve(operation, payload, authorization)`` turns the request into an HTTP
request on the FastAPI application (through httpx's ASGI transport: no socket) and its answer
into a reply. Operations, validation, authentication, idempotency and error codes are therefore
those of the HTTP API by construction. The bearer token comes from the MQTT 5 user property
``authorization`` (``Bearer <token>`` or the bare token) or from the payload's ``headers``.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Self

import httpx
from fastapi import FastAPI

from agent.mqtt_api.envelope import (
    CommandIn,
    Reply,
    RequestError,
    answer_reply,
    parse_command,
)
from agent.mqtt_api.operations import Operation, operations_of

BASE_URL = "http://box.mqtt"
USER_AGENT = "tillbox-mqtt-api"


class Dispatcher:
    """Serve MQTT requests with the HTTP application (``async with`` owns the client)."""

    def __init__(self, app: FastAPI) -> None:
        self.operations = operations_of(app)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False,
                                        client=("mqtt", 0))
        self._client = httpx.AsyncClient(transport=transport, base_url=BASE_URL,
                                         timeout=None, follow_redirects=False)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self._client.aclose()

    async def serve(self, operation_id: str, payload: bytes,
                    authorization: str | None = None) -> Reply:
        """The reply to one request (never raises for a bad request: it answers a problem)."""
        try:
            operation = self._operation(operation_id)
            command = parse_command(payload)
            request = self._request(operation, command, authorization)
        except RequestError as error:
            return error.reply()
        answer = await self._client.send(request)
        return answer_reply(answer.status_code, answer.headers.get("content-type", ""),
                            answer.content,
                            replayed=answer.headers.get("idempotent-replayed") == "true")

    def _operation(self, operation_id: str) -> Operation:
        operation = self.operations.get(operation_id)
        if operation is None:
            raise RequestError(404, "unknown_operation",
                               f"no operation {operation_id!r} (see /openapi.json; live events "
                               "are on event/#)")
        return operation

    def _request(self, operation: Operation, command: CommandIn,
                 authorization: str | None) -> httpx.Request:
        headers = {"user-agent": USER_AGENT, **command.headers}
        if authorization:
            _drop(headers, "authorization")
            headers["Authorization"] = _bearer(authorization)
        content: bytes | None = None
        if command.has_body:
            content = _body(command, headers)
        return self._client.build_request(operation.method, operation.url(command.path),
                                          params=command.query, headers=headers,
                                          content=content)


def _body(command: CommandIn, headers: dict[str, str]) -> bytes:
    content_type = next((value for name, value in headers.items()
                         if name.lower() == "content-type"), None)
    if content_type is None or "json" in content_type.lower():
        if content_type is None:
            headers["Content-Type"] = "application/json"
        return json.dumps(command.body, ensure_ascii=False).encode()
    if not isinstance(command.body, str):
        raise RequestError(400, "invalid_request",
                           f"a {content_type} body must be given as a string", "body")
    return command.body.encode()


def _bearer(authorization: str) -> str:
    value = authorization.strip()
    return value if value.lower().startswith("bearer ") else f"Bearer {value}"


def _drop(headers: dict[str, str], name: str) -> None:
    for key in [key for key in headers if key.lower() == name]:
        del headers[key]

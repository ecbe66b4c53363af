"""``Idempotency-Key`` on every mutating request: a retry gets the first answer, byte for byte.

An ASGI middleware in front of the API. For ``POST``/``PUT``/``PATCH``/``DELETE`` carrying the
header, the answer (status, content type, body) is stored in the working database under the
key, scoped by the caller's bearer token, the method and the path; a retry with the same key and
the same body is answered from there (header ``Idempotent-Replayed: true``) without running the
operation again, even after a restart. The same key with a different body is refused (422
``idempotency_key_reused``). Concurrent requests with one key run one after the other, so the
second one is a replay. Answers of 5xx are not stored: the caller may retry them.

The key is also exposed to the operation (``current_key()``), which passes it down to the
journal: should the box stop between the journal's commit and the storing of the answer, the
retry finds the journal entry by the same key and answers as the first time.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.boxdb import BoxDb
from agent.keyed_locks import KeyedLocks

HEADER = "idempotency-key"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotent_answers (
    scope TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    stored_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
"""

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("idempotency_key",
                                                                     default=None)


def current_key() -> str | None:
    """The ``Idempotency-Key`` of the request being served, if it carried one."""
    return _current.get()


class IdempotencyMiddleware:
    """Store and replay the answers of mutating requests that carry an ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp, db: BoxDb) -> None:
        self.app = app
        self.db = db
        self._locks = KeyedLocks()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            await _send_problem(send, 400, "invalid_idempotency_key",
                                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable "
                                "characters")
            return
        body = await _read_body(receive)
        token = hashlib.sha256(headers.get("authorization", "").encode()).hexdigest()[:16]
        store_key = f"{token} {scope['method']} {scope['path']} {key}"
        request_hash = hashlib.sha256(body).hexdigest()
        async with self._locks.hold(store_key):
            await self._serve_once(scope, body, send, (store_key, request_hash, key))

    async def _serve_once(self, scope: Scope, body: bytes, send: Send,
                          ids: tuple[str, str, str]) -> None:
        store_key, request_hash, key = ids
        stored = await self.db.fetch_one(
            "SELECT request_hash, status, content_type, body FROM idempotent_answers "
            "WHERE scope = ?", (store_key,))
        if stored is not None:
            if stored[0] != request_hash:
                await _send_problem(send, 422, "idempotency_key_reused",
                                    "this Idempotency-Key was used for a different request")
                return
            await _send_answer(send, stored[1], stored[2], bytes(stored[3]), replayed=True)
            return
        status, content_type, answer = await self._run(scope, body, key)
        if status < 500:
            await self.db.execute(
                "INSERT OR IGNORE INTO idempotent_answers "
                "(scope, request_hash, status, content_type, body) VALUES (?, ?, ?, ?, ?)",
                (store_key, request_hash, status, content_type, answer))
        await _send_answer(send, status, content_type, answer, replayed=False)

    async def _run(self, scope: Scope, body: bytes, key: str) -> tuple[int, str, bytes]:
        sent = False
        start: MutableMapping[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # the request has no more body: wait to be cancelled
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        token = _current.set(key)
        try:
            await self.app(scope, receive, capture)
        finally:
            _current.reset(token)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in start.get("headers", [])}
        return int(start["status"]), headers.get("content-type", "application/json"), \
            b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]}


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_answer(send: Send, status: int, content_type: str, body: bytes, *,
                       replayed: bool) -> None:
    headers = [(b"content-type", content_type.encode("latin-1")),
               (b"content-length", str(len(body)).encode())]
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_problem(send: Send, status: int, code: str, detail: str) -> None:
    titles = {400: "Bad Request", 422: "Unprocessable Content"}
    body = json.dumps({"type": "about:blank", "title": titles[status], "status": status,
                       "code": code, "detail": detail, "field": "Idempotency-Key"}).encode()
    await _send_answer(send, status, "application/problem+json", body, replayed=False)

"""``GET /v1/events``: the box's event bus as server-sent events (text/event-stream).

Each event is ``id: <n>``, ``event: <kind>``, ``data: <JSON {kind, at, data}>``. A comment line
is sent every ``HEARTBEAT_SECONDS`` so proxies and frontends see the stream is alive.
``?kinds=scan,weight`` keeps only those kinds. Needs a paired frontend's token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import StreamingResponse

from agent.events import BoxEvent, EventBus
from agent.http.auth import FrontendDep

HEARTBEAT_SECONDS = 15.0


def sse_frame(event: BoxEvent) -> bytes:
    """One event in the SSE wire format."""
    data = json.dumps({"kind": event.kind, "at": event.at, "data": event.data},
                      ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()


async def stream(bus: EventBus, kinds: frozenset[str] | None,
                 heartbeat: float) -> AsyncIterator[bytes]:
    """The SSE byte stream of the bus, for as long as the client listens."""
    async with bus.subscribe(kinds) as events:
        yield b": tillbox events\n\n"
        iterator = events()
        next_event = asyncio.ensure_future(anext(iterator))
        try:
            while True:
                done, _ = await asyncio.wait({next_event}, timeout=heartbeat)
                if not done:
                    yield b": keep-alive\n\n"
                    continue
                yield sse_frame(next_event.result())
                next_event = asyncio.ensure_future(anext(iterator))
        finally:
            next_event.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await next_event


def install_events_api(app: FastAPI, bus: EventBus,
                       heartbeat: float = HEARTBEAT_SECONDS) -> None:
    """Add ``GET /v1/events``."""
    router = APIRouter(prefix="/v1", tags=["events"])

    @router.get("/events", summary="Live events (server-sent events)",
                response_class=StreamingResponse,
                responses={200: {"content": {"text/event-stream": {}},
                                 "description": "An endless SSE stream"}})
    async def events(_: FrontendDep,
                     kinds: Annotated[str | None, Query(max_length=200,
                                                        pattern=r"^[a-z.,]+$")] = None,
                     ) -> StreamingResponse:
        wanted = frozenset(kinds.split(",")) if kinds else None
        return StreamingResponse(stream(bus, wanted, heartbeat),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    app.include_router(router)

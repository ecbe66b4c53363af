"""``GET /v1/events`` over a real HTTP server: events arrive as server-sent events, filtered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import uvicorn
from boxkit import pair, running_box
from daemonkit import free_port

from agent.composition import Box
from agent.events import EventBus


@asynccontextmanager
async def served(box: Box) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(box.app, host="127.0.0.1", port=port,
                                           log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        await task


async def read_events(response: httpx.Response, count: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "event" in frame:
                events.append(frame)
                if len(events) == count:
                    return events
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            frame[name] = value
    return events


async def wait_for_subscriber(bus: EventBus) -> None:
    while bus.subscriber_count == 0:
        await asyncio.sleep(0.01)


async def test_published_events_stream_to_the_frontend(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, served(box) as url:
        token = await pair(box)
        bus = box.services.bus
        async with httpx.AsyncClient(base_url=url, timeout=5) as client, client.stream(
                "GET", "/v1/events", params={"kinds": "scan,ticket.finalized"},
                headers={"Authorization": f"Bearer {token}"}) as response:
            await wait_for_subscriber(bus)
            bus.publish("weight", {"grams": 1250})
            bus.publish("scan", {"code": "3017620422003"})
            bus.publish("ticket.finalized", {"seq": 12, "total": 1250})
            events = await asyncio.wait_for(read_events(response, 2), 5)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert [event["event"] for event in events] == ["scan", "ticket.finalized"]
    assert json.loads(events[0]["data"])["data"] == {"code": "3017620422003"}
    assert int(events[1]["id"]) > int(events[0]["id"])


async def test_events_need_a_paired_frontend(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, served(box) as url, \
            httpx.AsyncClient(base_url=url, timeout=5) as client:
        response = await client.get("/v1/events")
    assert response.status_code == 401


async def test_a_slow_subscriber_is_told_what_it_lost() -> None:
    bus = EventBus(lambda: "2026-11-20T09:00:00Z")
    async with bus.subscribe() as events:
        for n in range(300):
            bus.publish("scan", {"n": n})
        stream = events()
        first = await anext(stream)
        second = await anext(stream)
    assert (first.kind, first.data) == ("lagged", {"lost": 44})
    assert second.data == {"n": 44}

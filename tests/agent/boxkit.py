"""Test kit for the box's HTTP API: a composed box, a paired frontend, a signed-in cashier.

Tests in ``tests/agent`` import it as ``boxkit`` (pytest puts the test's directory on the path).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from agent.composition import Box, compose
from agent.settings import AccessSettings, Settings
from fiscal.testing import FakeClock

START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
ADMIN_PIN = "123456"


def box_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings on the embedded defaults, with a known admin PIN."""
    return Settings(data_dir=data_dir, access=AccessSettings(initial_admin_pin=ADMIN_PIN),
                    **overrides)


@asynccontextmanager
async def running_box(data_dir: Path, clock: FakeClock | None = None, *,
                      devices: bool = False, **overrides: Any) -> AsyncIterator[Box]:
    """A composed box (devices started when asked), closed on exit."""
    async with compose(box_settings(data_dir, **overrides),
                       clock=clock or FakeClock(START)) as box:
        if devices:
            async with box.devices:
                yield box
        else:
            yield box


def client_for(box: Box, token: str | None = None) -> httpx.AsyncClient:
    """An HTTP client on the box's application (in process), with a bearer token if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=box.app), base_url="http://box",
                             headers=headers)


async def pair(box: Box, name: str = "caisse 1") -> str:
    """Pair a frontend with the code the status page shows; return its token."""
    async with client_for(box) as client:
        response = await client.post("/v1/pairing",
                                     json={"code": box.services.access.pairing_code,
                                           "name": name})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@asynccontextmanager
async def frontend(box: Box, user: str | None = "admin", pin: str = ADMIN_PIN,
                   name: str = "caisse 1") -> AsyncIterator[httpx.AsyncClient]:
    """A paired client with ``user`` signed in (nobody when ``user`` is None)."""
    token = await pair(box, name)
    async with client_for(box, token) as client:
        if user is not None:
            response = await client.post("/v1/session", json={"user_id": user, "pin": pin})
            assert response.status_code == 200, response.text
        yield client


async def add_user(client: httpx.AsyncClient, user_id: str, role: str, pin: str) -> None:
    """Create a user through the API (the client's user must be an admin)."""
    response = await client.post("/v1/users", json={"id": user_id, "name": user_id.title(),
                                                    "role": role, "pin": pin})
    assert response.status_code == 201, response.text

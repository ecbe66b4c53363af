"""The device API on the box built by the composition root, with its simulated peripherals."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from boxkit import box_settings, frontend

from agent.composition import DEVICE_KINDS, Box, compose
from agent.settings import DevicesSettings, Settings
from fiscal.testing import FakeClock

START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
STORE = "Boutique de démonstration"


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Box]:
    settings = box_settings(tmp_path / "data")
    async with compose(settings, clock=FakeClock(START)) as composed, composed.devices:
        yield composed


async def states(client: httpx.AsyncClient) -> dict[str, dict[str, str | None]]:
    response = await client.get("/v1/devices")
    assert response.status_code == 200
    return {device["name"]: device for device in response.json()["devices"]}


async def test_every_simulated_device_is_listed_ready(box: Box) -> None:
    """All five peripherals are listed ready, with where each is connected."""
    async with frontend(box, user=None) as client:
        listed = await states(client)
        health = (await client.get("/health")).json()
        page = (await client.get("/")).text
    assert set(listed) == set(DEVICE_KINDS)
    assert {name: d["status"] for name, d in listed.items()} == dict.fromkeys(DEVICE_KINDS,
                                                                            "ready")
    assert str(listed["printer"]["connection"]).startswith("tcp://127.0.0.1:")
    assert listed["display"]["connection"] == box.devices.display_simulator.path  # type: ignore[union-attr]
    assert {d["name"]: d["status"] for d in health["devices"]} == dict.fromkeys(DEVICE_KINDS,
                                                                               "ready")
    assert page.count("simulé — prêt") == len(DEVICE_KINDS)


async def test_test_print_reaches_the_printer(box: Box) -> None:
    """A test print arrives in the printer simulator as a receipt headed with the store name."""
    async with frontend(box, user=None) as client:
        response = await client.post("/v1/devices/printer/test-print")
    assert response.status_code == 200, response.text
    receipts = box.devices.printer_simulator.receipts  # type: ignore[union-attr]
    assert len(receipts) == 1
    assert STORE in receipts[0]
    assert "TEST D'IMPRESSION" in receipts[0]


async def test_drawer_open_pulses_the_drawer(box: Box) -> None:
    """Opening the drawer (a manager is signed in) sends one pulse on pin 2 through the printer."""
    async with frontend(box) as client:
        response = await client.post("/v1/devices/drawer/open")
    assert response.status_code == 200, response.text
    kicks = box.devices.printer_simulator.kicks  # type: ignore[union-attr]
    assert [(kick.pin, kick.on_ms) for kick in kicks] == [(2, 100)]


async def test_display_shows_the_two_lines(box: Box) -> None:
    """The two lines posted appear on the display simulator's screen."""
    async with frontend(box, user=None) as client:
        response = await client.post("/v1/devices/display",
                                     json={"line1": "Bonjour", "line2": "Total 12,50 EUR"})
    assert response.status_code == 200, response.text
    simulator = box.devices.display_simulator
    assert simulator is not None
    assert await asyncio.to_thread(simulator.wait_for, ("Bonjour", "Total 12,50 EUR"), 5.0)


async def test_scale_weight_is_the_simulators(box: Box) -> None:
    """Reading the scale returns the grams on the simulated platform, stable."""
    box.devices.scale_simulator.set_weight(1255)  # type: ignore[union-attr]
    async with frontend(box, user=None) as client:
        response = await client.get("/v1/devices/scale/weight")
    assert response.status_code == 200, response.text
    assert response.json() == {"grams": 1255, "stable": True, "net": False, "flags": []}


async def test_scans_reach_the_queue_through_the_background_task(box: Box) -> None:
    """The scanner loop puts each code scanned on the simulator into the scans queue."""
    async with asyncio.TaskGroup() as tasks:
        running = [tasks.create_task(loop()) for loop in box.devices.tasks().values()]
        box.devices.scanner_simulator.scan("3017620422003")  # type: ignore[union-attr]
        async with asyncio.timeout(5):
            code = await box.devices.scans.get()
        for task in running:
            task.cancel()
    assert code == "3017620422003"


async def test_stopped_printer_is_unavailable_not_a_crash(box: Box) -> None:
    """With the printer simulator gone, test print answers 503 and the list says unavailable."""
    await box.devices.printer_simulator.stop()  # type: ignore[union-attr]
    async with frontend(box) as client:
        response = await client.post("/v1/devices/printer/test-print")
        drawer = await client.post("/v1/devices/drawer/open")
        listed = await states(client)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["device"]) == ("device_unavailable", "printer")
    assert (drawer.status_code, drawer.json()["device"]) == (503, "drawer")
    assert listed["printer"]["status"] == "unavailable"
    assert listed["printer"]["reason"] in {"unreachable", "offline"}


async def test_devices_set_to_none_are_not_configured(tmp_path: Path) -> None:
    """A kind set to ``none`` is listed unavailable (not_configured) and its routes answer 503."""
    settings = Settings(data_dir=tmp_path / "data",
                        devices=DevicesSettings(printer="none", drawer="none", display="none",
                                                scale="none", scanner="none"))
    async with (compose(settings, clock=FakeClock(START)) as box, box.devices,
                frontend(box, user=None) as client):
        listed = await states(client)
        weight = await client.get("/v1/devices/scale/weight")
    assert {d["reason"] for d in listed.values()} == {"not_configured"}
    assert (weight.status_code, weight.json()["code"]) == (503, "device_unavailable")


async def test_status_page_shows_a_lost_printer(box: Box) -> None:
    """The status page shows the printer unavailable, in words, once its simulator is gone."""
    await box.devices.printer_simulator.stop()  # type: ignore[union-attr]
    async with frontend(box, user=None) as client:
        await client.post("/v1/devices/printer/test-print")
        page = (await client.get("/?lang=en")).text
    assert 'data-device="printer" data-state="unavailable"' in page
    assert "simulated — unreachable" in page or "simulated — offline" in page
    assert page.count("simulated — ready") == len(DEVICE_KINDS) - 2

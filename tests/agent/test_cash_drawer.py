"""The drawer opened without a sale: manager approval, JET 1040 after the pulse, else nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from boxkit import add_user, frontend, running_box

from agent.composition import Box
from fiscal.testing import FakeClock

START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


async def drawer_events(box: Box) -> list[dict[str, object]]:
    return [dict(e.record["details"]) async for e in box.journal.entries()
            if e.record["type"] == "event" and e.record["code"] == 1040]


def kicks(box: Box) -> list[tuple[int, int]]:
    simulator = box.devices.printer_simulator
    assert simulator is not None
    return [(kick.pin, kick.on_ms) for kick in simulator.kicks]


async def test_a_manager_opens_the_drawer(tmp_path: Path) -> None:
    """The admin (a manager) opens it: one pulse on pin 2 and JET 1040 naming the approver."""
    async with (running_box(tmp_path / "data", FakeClock(START), devices=True) as box,
                frontend(box) as client):
        answer = await client.post("/v1/drawer/open", json={"reason": "Monnaie"})
        events = await drawer_events(box)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"seq": answer.json()["seq"], "device": "drawer",
                             "requested_by": "admin", "approved_by": "admin"}
    assert kicks(box) == [(2, 100)]
    assert events == [{"approved_by": "admin", "requested_by": "admin",
                       "action": "drawer_no_sale", "reason": "Monnaie"}]


async def test_a_cashier_needs_a_managers_pin(tmp_path: Path) -> None:
    """Without approval a cashier gets 403 (no pulse, nothing journaled); with one it opens."""
    async with (running_box(tmp_path / "data", FakeClock(START), devices=True) as box,
                frontend(box) as admin):
        await add_user(admin, "carla", "cashier", "1111")
        await add_user(admin, "mona", "manager", "2222")
        async with frontend(box, "carla", "1111", name="caisse 2") as carla:
            refused = await carla.post("/v1/drawer/open", json={"reason": "Monnaie"})
            before = (kicks(box), await drawer_events(box))
            approved = await carla.post("/v1/drawer/open", json={"reason": "Monnaie"},
                                        headers={"X-Manager-Approval": "mona:2222"})
            devices_route = await carla.post("/v1/devices/drawer/open")
        events = await drawer_events(box)
    assert (refused.status_code, refused.json()["code"]) == (403, "approval_required")
    assert before == ([], [])
    assert approved.status_code == 200, approved.text
    assert (devices_route.status_code, devices_route.json()["code"]) == (403,
                                                                         "approval_required")
    assert kicks(box) == [(2, 100)]
    assert events == [{"approved_by": "mona", "requested_by": "carla",
                       "action": "drawer_no_sale", "reason": "Monnaie"}]


async def test_the_devices_route_journals_too(tmp_path: Path) -> None:
    """``POST /v1/devices/drawer/open`` needs the same approval and journals the same event."""
    async with (running_box(tmp_path / "data", FakeClock(START), devices=True) as box,
                frontend(box) as client):
        answer = await client.post("/v1/devices/drawer/open")
        events = await drawer_events(box)
    assert answer.status_code == 200, answer.text
    assert events == [{"approved_by": "admin", "requested_by": "admin",
                       "action": "drawer_no_sale"}]


async def test_no_printer_no_pulse_no_event(tmp_path: Path) -> None:
    """With the printer gone the answer is the device problem (503) and nothing is journaled."""
    async with (running_box(tmp_path / "data", FakeClock(START), devices=True) as box,
                frontend(box) as client):
        simulator = box.devices.printer_simulator
        assert simulator is not None
        await simulator.stop()
        answer = await client.post("/v1/drawer/open", json={"reason": "Monnaie"})
        events = await drawer_events(box)
    assert answer.status_code == 503
    assert (answer.json()["code"], answer.json()["device"]) == ("device_unavailable", "drawer")
    assert events == []


async def test_a_box_without_devices(tmp_path: Path) -> None:
    """A box composed without started devices answers 503 device_unavailable, journals nothing."""
    async with running_box(tmp_path / "data", FakeClock(START)) as box, frontend(box) as client:
        answer = await client.post("/v1/drawer/open", json={"reason": "Monnaie"})
        events = await drawer_events(box)
    assert (answer.status_code, answer.json()["code"]) == (503, "device_unavailable")
    assert events == []


async def test_a_retry_does_not_open_twice(tmp_path: Path) -> None:
    """The same Idempotency-Key twice: one pulse, one event, the same answer."""
    async with (running_box(tmp_path / "data", FakeClock(START), devices=True) as box,
                frontend(box) as client):
        headers = {"Idempotency-Key": "drawer-1"}
        first = await client.post("/v1/drawer/open", json={"reason": "Monnaie"},
                                  headers=headers)
        retry = await client.post("/v1/drawer/open", json={"reason": "Monnaie"},
                                  headers=headers)
        events = await drawer_events(box)
    assert first.json() == retry.json()
    assert kicks(box) == [(2, 100)]
    assert len(events) == 1


async def test_an_unwritable_reason_opens_nothing(tmp_path: Path) -> None:
    """A reason the journal cannot hold (a lone surrogate) is refused before the pulse."""
    async with (running_box(tmp_path / "data", FakeClock(START), devices=True) as box,
                frontend(box) as client):
        answer = await client.post("/v1/drawer/open", content=b'{"reason": "\\ud800"}',
                                   headers={"Content-Type": "application/json"})
        events = await drawer_events(box)
    assert (answer.status_code, answer.json()["field"]) == (422, "reason")
    assert kicks(box) == []
    assert events == []

"""Device events on the bus: scans, weight changes and device state changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from boxkit import running_box

from agent.composition import Box
from agent.events import BoxEvent


@asynccontextmanager
async def device_loops(box: Box) -> AsyncIterator[None]:
    """Run the devices' loops (the daemon's job) for the block."""
    tasks = [asyncio.create_task(loop()) for loop in box.devices.tasks().values()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def first(events: Callable[[], AsyncIterator[BoxEvent]],
                accept: Callable[[BoxEvent], bool], timeout: float = 3.0) -> BoxEvent:
    """The first event that ``accept`` takes."""
    async with asyncio.timeout(timeout):
        async for event in events():
            if accept(event):
                return event
    raise AssertionError("the event stream ended")


async def test_a_scan_is_published_as_a_scan_event(tmp_path: Path) -> None:
    """A code scanned on the scanner simulator arrives on the bus as ``scan`` with the code."""
    async with running_box(tmp_path / "data", devices=True) as box, device_loops(box), \
            box.services.bus.subscribe(frozenset({"scan"})) as events:
        assert box.devices.scanner_simulator is not None
        box.devices.scanner_simulator.scan("3017620422003")
        event = await first(events, lambda e: True)
    assert (event.kind, dict(event.data)) == ("scan", {"code": "3017620422003"})


async def test_a_new_stable_weight_is_published(tmp_path: Path) -> None:
    """Putting 1250 g on the scale publishes ``weight`` with the grams, stable."""
    async with running_box(tmp_path / "data", devices=True) as box, device_loops(box), \
            box.services.bus.subscribe(frozenset({"weight"})) as events:
        assert box.devices.scale_simulator is not None
        box.devices.scale_simulator.set_weight(1250)
        event = await first(events, lambda e: e.data["grams"] == 1250)
    assert dict(event.data) == {"grams": 1250, "stable": True}


async def test_a_device_state_change_is_published(tmp_path: Path) -> None:
    """An unplugged printer is published as ``device`` printer unavailable, with the reason."""
    async with running_box(tmp_path / "data", devices=True) as box, device_loops(box), \
            box.services.bus.subscribe(frozenset({"device"})) as events:
        printer, simulator = box.devices.printer, box.devices.printer_simulator
        assert printer is not None
        assert simulator is not None
        await simulator.stop()
        await asyncio.gather(printer.status(), return_exceptions=True)
        event = await first(events, lambda e: e.data["kind"] == "printer")
    assert dict(event.data) == {"kind": "printer", "state": "unavailable",
                                "reason": "unreachable"}

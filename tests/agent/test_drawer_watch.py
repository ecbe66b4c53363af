"""The daemon watches the cash drawer's sensor through the printer and publishes ``drawer`` events.

The printer simulators model the sensor (``drawer_open``) and the drawer's own polarity
(``drawer_open_high``); the box reads it with ``DLE EOT 1`` through the real driver, over TCP
(the simulated printer) or USB (a USB printer on a simulated pyusb backend).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from boxkit import START, box_settings

from agent.composition import Box, compose
from agent.devices import Devices
from agent.events import BoxEvent, EventBus
from agent.settings import DevicesSettings, UsbPrinterSettings
from drivers.printer.simulator import EscPosMachine
from drivers.printer.usb_backend_sim import SimUsbBackend, UsbPrinterSimulator
from drivers.states import Status
from fiscal.testing import FakeClock

WAIT = 5.0
Events = Callable[[], AsyncIterator[BoxEvent]]


@asynccontextmanager
async def loops(devices: Devices) -> AsyncIterator[None]:
    """Run the devices' loops (the daemon's job) for the block."""
    tasks = [asyncio.create_task(loop()) for loop in devices.tasks().values()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def box_with(tmp_path: Path, **devices: Any) -> AsyncIterator[Box]:
    """A composed box whose simulated devices run with these ``[devices]`` settings."""
    settings = box_settings(tmp_path / "data", devices=DevicesSettings(**devices))
    async with compose(settings, clock=FakeClock(START)) as box, box.devices:
        yield box


async def next_event(events: Events) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        async for event in events():
            return dict(event.data)
    raise AssertionError("the event stream ended")


def printer_of(box: Box) -> EscPosMachine:
    assert box.devices.printer_simulator is not None
    return box.devices.printer_simulator


async def test_opened_left_open_once_and_closed(tmp_path: Path) -> None:
    """Open → ``opened``; still open after the delay → one ``left_open`` (not repeated); shut →
    ``closed`` with how long; opened again → ``opened`` afresh."""
    async with box_with(tmp_path, drawer_left_open_after=0.4) as box, loops(box.devices), \
            box.services.bus.subscribe(frozenset({"drawer"})) as events:
        sim = printer_of(box)
        sim.drawer_open = True
        assert await next_event(events) == {"event": "opened", "seconds": 0.0}
        left_open = await next_event(events)
        assert left_open["event"] == "left_open"
        assert 0.4 <= left_open["seconds"] < 1.5
        await asyncio.sleep(0.4)
        sim.drawer_open = False
        closed = await next_event(events)
        assert closed["event"] == "closed"
        assert closed["seconds"] >= left_open["seconds"] + 0.3
        sim.drawer_open = True
        assert await next_event(events) == {"event": "opened", "seconds": 0.0}


async def test_sensor_polarity_from_the_settings(tmp_path: Path) -> None:
    """A drawer whose pin 3 is low when open reads closed at rest with the polarity set."""
    async with box_with(tmp_path, drawer_open_when_high=False) as box, \
            box.services.bus.subscribe(frozenset({"drawer"})) as events:
        sim = printer_of(box)
        sim.drawer_open_high = False  # this drawer pulls pin 3 low when open: high at rest
        async with loops(box.devices):
            await asyncio.sleep(0.35)  # two readings at least: nothing to say while closed
            sim.drawer_open = True
            assert (await next_event(events))["event"] == "opened"


async def test_wrong_polarity_shows_an_open_drawer(tmp_path: Path) -> None:
    """With the polarity wrong for the drawer, the closed drawer reads open: what a technician
    sees when ``drawer_open_when_high`` must be flipped."""
    async with box_with(tmp_path) as box, box.services.bus.subscribe(
            frozenset({"drawer"})) as events:
        printer_of(box).drawer_open_high = False
        async with loops(box.devices):
            assert (await next_event(events))["event"] == "opened"


async def test_no_watch_without_a_drawer(tmp_path: Path) -> None:
    async with box_with(tmp_path, drawer="none") as box:
        assert "drawer" not in box.devices.tasks()
    async with box_with(tmp_path / "2", printer="none") as box:
        assert "drawer" not in box.devices.tasks()


async def test_usb_printer_in_the_daemon_with_its_drawer(tmp_path: Path) -> None:
    """``printer = "usb"`` connects the USB driver (found by ids and serial), prints on it and
    watches its drawer; unplugged it is a state, replugged it is ready again."""
    sim = UsbPrinterSimulator(vendor_id=0x04B8, product_id=0x0E15, serial="X5E7012345")
    settings = DevicesSettings(
        printer="usb", display="none", scale="none", scanner="none",
        usb_printer=UsbPrinterSettings(vendor_id="04b8", product_id=0x0E15,  # type: ignore[arg-type]
                                       serial="X5E7012345"))
    bus = EventBus(lambda: "now")
    async with Devices(settings, bus, usb_backend=SimUsbBackend(sim)) as devices, \
            loops(devices), bus.subscribe(frozenset({"drawer"})) as events:
        assert devices.states()["printer"]["status"] == "ready"
        assert devices.states()["drawer"]["connection"] == "usb:04b8:0e15:X5E7012345"
        await devices.require("drawer").kick_drawer(2, 100, 100)
        sim.drawer_open = True
        assert (await next_event(events))["event"] == "opened"
        sim.unplug()
        printer = devices.require("printer")
        await printer.wait_for_state(lambda s: s.status is Status.UNAVAILABLE, WAIT)
        sim.plug()
        await printer.wait_for_state(lambda s: s.status is Status.READY, WAIT)
    assert [kick.pin for kick in sim.kicks] == [2]

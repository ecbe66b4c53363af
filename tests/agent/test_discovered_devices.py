"""The daemon follows what is plugged in: bus events and ``/v1/devices/discovered``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from boxkit import frontend, running_box

from agent.discovered import DiscoveredDevices
from agent.events import EventBus
from agent.settings import DevicesSettings
from drivers.discovery import DeviceCandidate, Kind

PRINTER = DeviceCandidate(Kind.PRINTER, "usb-1-2-04b8:0e15-X123", "/dev/usb/lp0", "04b8:0e15",
                          "Epson TM-T20II")


async def test_plugs_and_unplugs_are_published_and_listed() -> None:
    present: dict[str, DeviceCandidate] = {}
    bus = EventBus(lambda: "2026-11-20T09:00:00Z")
    settings = DevicesSettings(printer="usb", usb_printer={"vendor_id": "04b8",
                                                           "product_id": "0e15"})
    found = DiscoveredDevices(settings, bus, lambda: dict(present), interval=0.02)
    async with bus.subscribe(frozenset({"device"})) as events:
        task = asyncio.create_task(found.discovery.run(found._changed, udev=False))
        stream = events()
        present[PRINTER.stable_id] = PRINTER
        plugged = await asyncio.wait_for(anext(stream), 2)
        bindings = [str(b) for b in found.bindings()]
        present.clear()
        unplugged = await asyncio.wait_for(anext(stream), 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert plugged.data == {"event": "plugged", "kind": "printer", "stable_id": PRINTER.stable_id,
                            "path": "/dev/usb/lp0", "reason": "Epson TM-T20II"}
    assert unplugged.data["event"] == "unplugged"
    assert len(bindings) == 1
    assert bindings[0].startswith(f"printer → /dev/usb/lp0 ({PRINTER.stable_id}): ")


async def test_the_device_api_lists_what_was_discovered(tmp_path: Path) -> None:
    async with running_box(tmp_path / "data") as box, frontend(box, user=None) as client:
        box.devices.discovered.discovery.devices = {PRINTER.stable_id: PRINTER}
        answer = await client.get("/v1/devices/discovered")
    assert answer.status_code == 200, answer.text
    assert answer.json()["devices"] == [{"kind": "printer", "stable_id": PRINTER.stable_id,
                                         "path": "/dev/usb/lp0", "vid_pid": "04b8:0e15",
                                         "reason": "Epson TM-T20II"}]
    assert answer.json()["bindings"] == [], "every peripheral is simulated by default"

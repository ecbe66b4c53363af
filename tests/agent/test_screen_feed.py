"""The customer display fed in the background: requests never wait, the latest screen wins."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from boxkit import running_box


async def test_a_stalled_display_does_not_hold_up_the_caller(tmp_path: Path) -> None:
    """While the display takes no bytes, asking for screens returns at once; the last one
    asked for appears when the display takes bytes again."""
    async with running_box(tmp_path / "data", devices=True) as box:
        simulator = box.devices.display_simulator
        assert simulator is not None
        simulator.stall()
        began = time.monotonic()
        for n in range(20):
            box.devices.screen.show((f"Article {n}", "TOTAL"))
        assert time.monotonic() - began < 0.05
        simulator.resume()
        assert await asyncio.to_thread(simulator.wait_for, ("Article 19", "TOTAL"), 10.0)


async def test_screens_asked_for_during_a_write_collapse_into_the_latest(
        tmp_path: Path) -> None:
    """Fifty screens asked for in a burst are not all written: the display gets the first
    one and then the latest one, not a queue of fifty."""
    async with running_box(tmp_path / "data", devices=True) as box:
        simulator = box.devices.display_simulator
        assert simulator is not None
        assert await asyncio.to_thread(simulator.wait_for, ("", ""), 5.0)
        start = len(simulator.received)
        for n in range(50):
            box.devices.screen.show((f"Ligne {n:02d}", f"TOTAL {n:02d}"))
        assert await asyncio.to_thread(simulator.wait_for, ("Ligne 49", "TOTAL 49"), 5.0)
        burst = len(simulator.received) - start
        box.devices.screen.show(("Ligne 00", "TOTAL 00"))
        assert await asyncio.to_thread(simulator.wait_for, ("Ligne 00", "TOTAL 00"), 5.0)
        one_screen = len(simulator.received) - start - burst
        assert burst <= 2 * one_screen


async def test_nothing_is_sent_once_the_devices_are_stopped(tmp_path: Path) -> None:
    """After the devices stopped, asking for a screen is a no-op (no write, no error)."""
    async with running_box(tmp_path / "data", devices=True) as box:
        screen = box.devices.screen
    screen.show(("Trop tard", ""))
    await asyncio.sleep(0.05)
    assert screen.display is None

"""The serial pole display driver against the display simulator, through a real pty."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from drivers.display import messages
from drivers.display.commands import CD5220_CP858, EPSON_CP858, EPSON_CP866, DisplayProfile
from drivers.display.driver import CustomerDisplay, SerialDisplay
from drivers.display.simulator import DisplaySimulator
from drivers.states import Backoff, Status

FAST = Backoff(base=0.05, cap=0.2)


@pytest.fixture
def sim() -> Iterator[DisplaySimulator]:
    with DisplaySimulator() as simulator:
        yield simulator


async def shows(sim: DisplaySimulator, lines: tuple[str, str]) -> bool:
    """Wait (off the event loop) until the simulator's screen shows these lines."""
    return await asyncio.to_thread(sim.wait_for, lines, 5.0)


@pytest.mark.parametrize("profile", [EPSON_CP858, CD5220_CP858])
async def test_shown_lines_appear_on_the_screen(sim: DisplaySimulator,
                                                profile: DisplayProfile) -> None:
    """What the driver shows is what the display's screen reads, € and accents included."""
    async with SerialDisplay(sim.path, profile) as display:
        assert display.state.status is Status.READY
        await display.show(messages.item_added("Crème brûlée", 350, 1240))
        assert await shows(sim, ("Crème brûlée  3,50 €", "Total        12,40 €"))
        assert sim.model.encoding == "cp858"
        assert b"\xd5" in sim.received


async def test_russian_on_a_cp866_display(sim: DisplaySimulator) -> None:
    """A CP866 display shows Cyrillic, and the euro as EUR."""
    async with SerialDisplay(sim.path, EPSON_CP866) as display:
        await display.show(messages.change_due(2000, 760, "ru", encoding=EPSON_CP866.encoding))
        assert await shows(sim, ("Получено   20,00 EUR", "Сдача       7,60 EUR"))


async def test_clear_blanks_the_screen(sim: DisplaySimulator) -> None:
    """Clear leaves an empty screen."""
    display: CustomerDisplay
    async with SerialDisplay(sim.path) as display:
        await display.show(messages.idle("fr"))
        assert await shows(sim, ("    Bienvenue !", " Merci, à bientôt !"))
        await display.clear()
        assert await shows(sim, ("", ""))


async def test_display_gone_then_back(sim: DisplaySimulator) -> None:
    """Unplugged: unavailable, no exception; back: re-initialised and the last screen shown."""
    async with SerialDisplay(sim.path, backoff=FAST) as display:
        sim.unplug()
        await display.show(messages.total(990, "en"))
        assert display.state.status is Status.UNAVAILABLE
        assert display.state.reason == "unplugged"
        sim.replug()
        await display.reconnect()
        assert display.state.status is Status.READY
        assert await shows(sim, ("To pay", "               €9.90"))
        assert sim.model.encoding == "cp858"


async def test_missing_display_at_start_is_a_state(tmp_path: object) -> None:
    """A display that is not there when starting is unavailable, not a crash."""
    async with SerialDisplay(f"{tmp_path}/ttyNONE") as display:
        assert display.state.status is Status.UNAVAILABLE
        await display.show(("still", "no crash"))
        assert display.state.status is Status.UNAVAILABLE


async def test_write_timeout_makes_the_display_unavailable(sim: DisplaySimulator) -> None:
    """A display that stops taking bytes times the write out: unavailable(write_timeout)."""
    async with SerialDisplay(sim.path, xonxoff=True, write_timeout=0.3, backoff=FAST) as display:
        sim.stall()
        await display.show(("Stuck", ""))
        assert display.state.status is Status.UNAVAILABLE
        assert display.state.reason == "write_timeout"
        sim.resume()
        await display.reconnect()
        assert display.state.status is Status.READY
        assert await shows(sim, ("Stuck", ""))


async def test_run_loop_reconnects_with_backoff(sim: DisplaySimulator) -> None:
    """The run() loop brings a lost display back by itself once it is plugged in again."""
    async with SerialDisplay(sim.path, backoff=FAST) as display:
        keeper = asyncio.create_task(display.run())
        try:
            sim.unplug()
            await display.show(("Back", "again"))
            assert display.state.status is Status.UNAVAILABLE
            sim.replug()
            await display.wait_for_status(Status.READY, timeout=10)
            assert await shows(sim, ("Back", "again"))
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

"""The cash drawer: sensor bytes, the left-open tracker, the drawer on the TCP simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from drivers.errors import DeviceFault
from drivers.printer.drawer import (
    CashDrawer,
    DrawerConfig,
    DrawerEvent,
    DrawerEventKind,
    DrawerTracker,
    is_open_from_realtime,
    is_open_from_transmit,
)
from drivers.printer.network import NetworkPrinter
from drivers.printer.simulator import DrawerKick, Fault, PrinterSimulator, running_simulator
from drivers.states import READY, Backoff, Status

WAIT = 10.0
OPENED, CLOSED = DrawerEventKind.OPENED, DrawerEventKind.CLOSED
LEFT_OPEN = DrawerEventKind.LEFT_OPEN


@pytest.fixture
async def sim() -> AsyncIterator[PrinterSimulator]:
    """A TCP printer simulator on a free port."""
    async with running_simulator() as simulator:
        yield simulator


@pytest.fixture
async def printer(sim: PrinterSimulator) -> AsyncIterator[NetworkPrinter]:
    """A network driver on the simulator, polling fast."""
    async with NetworkPrinter(sim.host, sim.port, timeout=2.0, poll_interval=0.05,
                              backoff=Backoff(base=0.02, cap=0.2)) as driver:
        yield driver


def test_sensor_bytes_both_polarities() -> None:
    """DLE EOT 1 bit 2 and GS r 2 bit 0 read open or closed according to the polarity."""
    assert is_open_from_realtime(0x16, open_when_high=True)
    assert not is_open_from_realtime(0x12, open_when_high=True)
    assert is_open_from_realtime(0x12, open_when_high=False)
    assert not is_open_from_realtime(0x16, open_when_high=False)
    assert is_open_from_transmit(0x01, open_when_high=True)
    assert is_open_from_transmit(0x00, open_when_high=False)
    assert not is_open_from_transmit(0x00, open_when_high=True)


def test_config_refuses_pin_3() -> None:
    """Only connector pins 2 and 5 can kick a drawer."""
    with pytest.raises(ValueError, match="pin must be 2 or 5"):
        DrawerConfig(pin=3)


def test_tracker_events() -> None:
    """Opened, one left_open after the delay, then closed with the time it stayed open."""
    tracker = DrawerTracker(left_open_after=0.2)
    assert tracker.update(False, 0.0) == []
    assert tracker.update(True, 1.0) == [DrawerEvent(OPENED, 0.0)]
    assert tracker.update(True, 1.1) == []
    assert tracker.update(True, 1.25) == [DrawerEvent(LEFT_OPEN, pytest.approx(0.25))]
    assert tracker.update(True, 2.0) == []
    assert tracker.update(False, 2.5) == [DrawerEvent(CLOSED, 1.5)]
    assert tracker.update(True, 3.0) == [DrawerEvent(OPENED, 0.0)]


@pytest.mark.parametrize(("pin", "command"), [(2, "1B 70 00 32 32"), (5, "1B 70 01 32 32")])
async def test_kick_with_configured_timing(sim: PrinterSimulator, printer: NetworkPrinter,
                                           pin: int, command: str) -> None:
    """open() sends ESC p on the configured pin with the configured 100 ms pulse."""
    await CashDrawer(printer, DrawerConfig(pin=pin, on_ms=100, off_ms=100)).open()
    assert sim.kicks == [DrawerKick(pin, 100, 100, bytes.fromhex(command))]


async def test_kick_refused_on_fault(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """A printer with its cover open refuses the kick."""
    sim.set_fault(Fault.COVER_OPEN)
    with pytest.raises(DeviceFault):
        await CashDrawer(printer).open()
    assert sim.kicks == []


@pytest.mark.parametrize("open_high", [True, False])
async def test_sensor_polarity(sim: PrinterSimulator, printer: NetworkPrinter,
                               open_high: bool) -> None:
    """The drawer reads open and closed correctly whichever level the drawer uses for open."""
    sim.drawer_open_high = open_high
    drawer = CashDrawer(printer, DrawerConfig(open_when_high=open_high))
    assert await drawer.read() is False
    sim.drawer_open = True
    assert await drawer.read() is True
    assert drawer.state == READY


async def test_watch_emits_left_open(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """A drawer open for more than 0.2 s gives opened, left_open (once), then closed."""
    drawer = CashDrawer(printer, DrawerConfig(open_when_high=False, left_open_after=0.2,
                                              poll_interval=0.02))
    sim.drawer_open_high = False
    sim.drawer_open = True
    events = drawer.watch()
    async with asyncio.timeout(WAIT):
        first = await anext(events)
        second = await anext(events)
        sim.drawer_open = False
        third = await anext(events)
    await events.aclose()
    assert (first, second.kind, third.kind) == (DrawerEvent(OPENED, 0.0), LEFT_OPEN, CLOSED)
    assert 0.2 <= second.seconds <= third.seconds


async def test_printer_unavailable(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """A stopped printer makes the drawer unavailable, the reading None, and the watcher quiet."""
    drawer = CashDrawer(printer, DrawerConfig(poll_interval=0.02))
    assert await drawer.read() is False
    await sim.stop()
    assert await drawer.read() is None
    assert drawer.state.status is Status.UNAVAILABLE
    events = drawer.watch()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await anext(events)
    await events.aclose()
    assert drawer.state.status is Status.UNAVAILABLE

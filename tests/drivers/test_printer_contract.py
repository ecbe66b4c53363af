"""The network printer driver against the ESC/POS simulator over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable

import pytest
from escpos.printer import Dummy
from PIL import Image

from drivers.errors import DeviceFault, DeviceTimeout, DeviceUnavailable
from drivers.printer.cli_sim import serve
from drivers.printer.network import NetworkPrinter
from drivers.printer.simulator import (
    DrawerKick,
    EscPosMachine,
    Fault,
    PrinterSimulator,
    running_simulator,
)
from drivers.states import Backoff, DeviceState, Status, error

WAIT = 10.0


def status_is(status: Status, reason: str | None = None) -> Callable[[DeviceState], bool]:
    """Build a state predicate for ``wait_for_state``."""
    return lambda state: state.status is status and (reason is None or state.reason == reason)


def new_printer(sim: PrinterSimulator, timeout: float = 5.0) -> NetworkPrinter:
    """A driver for the simulator, polling fast so that state changes show within a test."""
    return NetworkPrinter(sim.host, sim.port, timeout=timeout, job_timeout=WAIT,
                          poll_interval=0.05, backoff=Backoff(base=0.02, cap=0.2))


def encoder(code_page: str = "CP858") -> Dummy:
    """A python-escpos encoder reset and pinned to one code page (INIT first: it resets pages)."""
    dummy = Dummy()
    dummy.hw("INIT")
    dummy.charcode(code_page)
    return dummy


def text_job(*lines: str, code_page: str = "CP858") -> bytes:
    """Encode lines of text and a cut."""
    dummy = encoder(code_page)
    for line in lines:
        dummy.textln(line)
    dummy.cut()
    return bytes(dummy.output)


@pytest.fixture
async def sim() -> AsyncIterator[PrinterSimulator]:
    """A running simulator on a free port."""
    async with running_simulator() as simulator:
        yield simulator


@pytest.fixture
async def printer(sim: PrinterSimulator) -> AsyncIterator[NetworkPrinter]:
    """A connected driver, ready."""
    async with new_printer(sim) as driver:
        await driver.wait_for_state(status_is(Status.READY), WAIT)
        yield driver


def test_auto_code_page_pitfall() -> None:
    """python-escpos left alone prints "€" through page 15; charcode pins CP858 (ESC t 19)."""
    auto = Dummy()
    auto.text("€ é")
    assert bytes(auto.output) == bytes.fromhex("1B 74 0F A4 20 1B 74 00 82")
    assert bytes(encoder().output) == bytes.fromhex("1B 40 1B 74 13")
    pinned_first = Dummy()
    pinned_first.charcode("CP858")
    pinned_first.hw("INIT")
    pinned_first.text("€")
    assert bytes(pinned_first.output) == bytes.fromhex("1B 74 13 1B 40 D5")


async def test_prints_french_text_through_cp858(sim: PrinterSimulator,
                                                printer: NetworkPrinter) -> None:
    """A CP858 job with "€ é à ç" comes out of the simulator as the same text, one receipt."""
    job = text_job("Café crème   3,50 €", "€ é à ç")
    assert b"\x1bt\x13" in job
    assert b"\x1bt\x0f" not in job
    await printer.print_job("job-1", job)
    assert sim.receipts == ["Café crème   3,50 €\n€ é à ç\n"]
    assert sim.unknown == []
    assert printer.state.status is Status.READY


async def test_prints_cyrillic_through_cp866(sim: PrinterSimulator,
                                             printer: NetworkPrinter) -> None:
    """A CP866 job (ESC t 17) renders Cyrillic text."""
    await printer.print_job("job-ru", text_job("Итого: 12,00 руб.", code_page="CP866"))
    assert sim.receipts == ["Итого: 12,00 руб.\n"]


async def test_graphics_and_cuts(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """Styles, QR code, barcode and raster image parse to their lengths; two cuts, two receipts."""
    dummy = encoder()
    dummy.set(align="center", bold=True, double_height=True, double_width=True, underline=1)
    dummy.textln("TOTAL 9,90 €")
    dummy.set_with_default()
    dummy.qr("https://example.org/r/42", native=True)
    dummy.barcode("4006381333931", "EAN13")
    dummy.image(Image.new("1", (16, 2)))
    dummy.cut()
    dummy.textln("second")
    dummy.cut(mode="PART", feed=False)
    await printer.print_job("job-gfx", bytes(dummy.output))
    assert sim.receipts == [
        "TOTAL 9,90 €\n[QR: https://example.org/r/42]\n[barcode: 4006381333931]\n[image 16x2]\n",
        "second\n",
    ]
    assert sim.unknown == []


def test_parser_waits_for_split_commands() -> None:
    """Fed one byte at a time, the simulator parses the same receipt as fed at once."""
    dummy = encoder()
    dummy.textln("Crêpe 4,00 €")
    dummy.qr("abc", native=True)
    dummy.cut()
    machine = EscPosMachine()
    for byte in bytes(dummy.output):
        machine.feed(bytes((byte,)))
    assert machine.receipts == ["Crêpe 4,00 €\n[QR: abc]\n"]
    assert machine.unknown == []


async def test_status_and_drawer_sensor(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """The driver's status reflects the simulator's drawer sensor and paper near end."""
    status = await printer.status()
    assert (status.fault, status.drawer_high, status.paper_near_end) == (None, False, False)
    sim.drawer_open = True
    sim.set_fault(Fault.PAPER_NEAR_END)
    status = await printer.status()
    assert (status.fault, status.drawer_high, status.paper_near_end) == (None, True, True)
    assert printer.state == DeviceState(Status.READY, None, "paper_near_end")


async def test_drawer_kick_bytes(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """kick_drawer(2, 50, 50) sends ESC p 0 25 25; pin 5 uses m 1."""
    await printer.kick_drawer(2, 50, 50)
    await printer.kick_drawer(5, 100, 100)
    assert sim.kicks == [
        DrawerKick(2, 50, 50, bytes.fromhex("1B 70 00 19 19")),
        DrawerKick(5, 100, 100, bytes.fromhex("1B 70 01 32 32")),
    ]


async def test_paper_out_mid_job(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """Paper out mid-job raises DeviceFault, the rest stays unprinted; new paper brings ready."""
    sim.paper_lines_left = 3
    lines = [f"line {n}" for n in range(1, 11)]
    with pytest.raises(DeviceFault) as caught:
        await printer.print_job("job-long", text_job(*lines))
    assert caught.value.reason == "paper_out"
    assert printer.state == error("paper_out")
    assert (sim.receipts, sim.interrupted) == ([], ["line 1\nline 2\nline 3\n"])
    with pytest.raises(DeviceFault):
        await printer.print_job("job-next", text_job("refused"))
    assert sim.current_text == ""
    sim.set_fault(Fault.PAPER_OUT, active=False)
    await printer.wait_for_state(status_is(Status.READY), WAIT)
    await printer.print_job("job-long-again", text_job(*lines))
    assert sim.receipts == ["".join(f"{line}\n" for line in lines)]


async def test_cover_open(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """An open cover refuses jobs and drawer pulses with error(cover_open); closing it recovers."""
    sim.set_fault(Fault.COVER_OPEN)
    await printer.wait_for_state(status_is(Status.ERROR, "cover_open"), WAIT)
    with pytest.raises(DeviceFault) as caught:
        await printer.print_job("job-1", text_job("hello"))
    assert caught.value.reason == "cover_open"
    with pytest.raises(DeviceFault):
        await printer.kick_drawer(2)
    assert (sim.receipts, sim.interrupted, sim.kicks) == ([], [], [])
    sim.set_fault(Fault.COVER_OPEN, active=False)
    await printer.wait_for_state(status_is(Status.READY), WAIT)
    await printer.print_job("job-1", text_job("hello"))
    assert sim.receipts == ["hello\n"]


async def test_offline_without_cause(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """A printer reporting offline with no cause is error(offline) and takes no job."""
    sim.set_fault(Fault.OFFLINE)
    with pytest.raises(DeviceFault) as caught:
        await printer.print_job("job-1", text_job("hello"))
    assert caught.value.reason == "offline"
    assert printer.state == error("offline")


async def test_silent_printer_is_offline(sim: PrinterSimulator) -> None:
    """No answer within the timeout is unavailable(offline); answers again bring ready."""
    async with new_printer(sim, timeout=0.5) as printer:
        await printer.wait_for_state(status_is(Status.READY), WAIT)
        sim.set_fault(Fault.SILENT)
        with pytest.raises(DeviceTimeout) as caught:
            await printer.status()
        assert caught.value.reason == "offline"
        assert printer.state.status is Status.UNAVAILABLE
        assert printer.state.reason == "offline"
        sim.set_fault(Fault.SILENT, active=False)
        await printer.wait_for_state(status_is(Status.READY), WAIT)


async def test_unplugged_and_back(sim: PrinterSimulator, printer: NetworkPrinter) -> None:
    """A stopped simulator makes the printer unavailable; restarted, the driver reconnects."""
    port = sim.port
    await sim.stop()
    await printer.wait_for_state(status_is(Status.UNAVAILABLE, "unreachable"), WAIT)
    with pytest.raises(DeviceUnavailable):
        await printer.print_job("job-1", text_job("lost?"))
    await sim.start(port=port)
    await printer.wait_for_state(status_is(Status.READY), WAIT)
    await printer.print_job("job-1", text_job("back"))
    assert sim.receipts == ["back\n"]


async def test_unreachable_from_the_start() -> None:
    """A driver for a closed port is unavailable(unreachable), not a crash."""
    async with running_simulator() as sim:
        port = sim.port
    async with NetworkPrinter("127.0.0.1", port, timeout=2.0, poll_interval=0.05,
                              backoff=Backoff(base=0.02, cap=0.1)) as printer:
        state = await printer.wait_for_state(status_is(Status.UNAVAILABLE), WAIT)
        assert state.reason == "unreachable"


async def test_standalone_simulator_prints_receipts() -> None:
    """serve() says where to connect and shows each finished receipt as text."""
    out = io.StringIO()
    started: asyncio.Future[PrinterSimulator] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve("127.0.0.1", 0, out=out, started=started))
    try:
        sim = await asyncio.wait_for(started, WAIT)
        async with new_printer(sim) as printer:
            await printer.print_job("job-cli", text_job("Merci !"))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert f"connect to tcp://127.0.0.1:{sim.port}" in out.getvalue()
    assert "Merci !\n" in out.getvalue()
